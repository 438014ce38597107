//! The reporter: the caller's side queues (never awaits the network, never
//! fails), one background task sends batches and retries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use thiserror::Error;
use tokio::sync::Notify;

use crate::event::{Body, JobResult, Outcome, WireEvent, clamp_seconds};

/// Why a reporter could not be made. Nothing after that fails: see [`Stats`].
#[derive(Debug, Error)]
pub enum Error {
    #[error("exporter URL must be http:// or https://host[:port], got {0:?}")]
    Url(String),
    #[error("batch_size must be 1..=1000 and max_queue positive")]
    Limits,
    #[error("reading CA file {path}: {source}")]
    CaFile { path: String, source: std::io::Error },
    #[error("setting up HTTP(S): {0}")]
    Http(#[from] reqwest::Error),
    #[error("a Reporter must be made inside a tokio runtime (it spawns its sender task)")]
    NoRuntime,
}

/// Where and how to send. `Config::new(url)` has the defaults.
#[derive(Clone, Debug)]
pub struct Config {
    url: String,
    token: Option<String>,
    ca_pem: Option<Vec<u8>>,
    /// Events waiting at most; beyond it the oldest are dropped and counted.
    pub max_queue: usize,
    /// Events per request, at most (the exporter takes 1000).
    pub batch_size: usize,
    /// How long the sender waits for a burst to gather into one request.
    pub linger: Duration,
    /// Per request: connect, send, answer.
    pub timeout: Duration,
    pub initial_backoff: Duration,
    /// Longest wait between retries, and the cap on a `Retry-After`.
    pub max_backoff: Duration,
}

impl Config {
    /// `url` is the exporter's base URL: `http://127.0.0.1:9733`, or `https://...` (verified
    /// against the system's roots, or [`Config::ca_file`]).
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            token: None,
            ca_pem: None,
            max_queue: 10_000,
            batch_size: 500,
            linger: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The exporter's bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Config {
        self.token = Some(token.into());
        self
    }

    /// A PEM file with the CA (or self-signed certificate) to trust for an https URL.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|source| Error::CaFile {
            path: path.display().to_string(),
            source,
        })?;
        self.ca_pem = Some(pem);
        Ok(self)
    }
}

/// Counters since the reporter was made; `queued` is a gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted from the caller.
    pub enqueued: u64,
    /// Events the exporter acknowledged (applied, unchanged, or recognised as a retry).
    pub delivered: u64,
    /// Of `delivered`, those the exporter had applied already: a retry of a request whose answer was lost.
    pub duplicates: u64,
    /// Dropped because the queue was full (oldest first), or left undelivered by `close`.
    pub dropped: u64,
    /// Refused by the exporter for good (4xx other than 408/429); never retried.
    pub rejected: u64,
    /// Requests sent again after a connection error or a retryable status.
    pub retries: u64,
    /// Events waiting, including a batch in flight.
    pub queued: u64,
}

#[derive(Default)]
struct Counters {
    enqueued: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
}

struct Queued {
    json: Vec<u8>,
    /// `type kind/machine`, for logs.
    what: String,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Queued>,
    in_flight: usize,
    /// Per machine: last seq given and the labels its events carry.
    machines: HashMap<(String, String), (u64, BTreeMap<String, String>)>,
    next_id: u64,
    closing: bool,
    give_up_at: Option<Instant>,
    /// Events close() gave up on.
    lost: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    counts: Counters,
    /// Wakes the sender: events arrived, or close.
    wake: Notify,
    /// Wakes flush and close: a batch finished.
    done: Notify,
    /// Cuts a retry's backoff short: close.
    closed: Notify,
    prefix: String,
    max_queue: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock must not stop reporting.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends events to a Statescope exporter. Cheap to clone; the last clone
/// dropped stops the sender after a last try (5 s); [`Reporter::close`] does
/// it with a deadline you choose and says whether everything went out.
///
/// Every event carries an `id` unique to this reporter and a per-machine `seq`
/// (microseconds since the epoch, strictly increasing per machine, so a
/// restarted service's events are still newer than its last run's), so the
/// exporter applies a retried request once. Refusals naming an event (400,
/// 409, 422) drop that event alone; other 4xx drop the request; 408, 429, 5xx
/// and connection errors are retried with backoff, honouring `Retry-After`,
/// except that a 429 naming one event (a cap on machines or label values)
/// drops that event after three retries, so it does not hold up the others.
#[derive(Clone)]
pub struct Reporter {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        if !inner.closing {
            inner.closing = true;
            inner.give_up_at = Some(Instant::now() + Duration::from_secs(5));
        }
        drop(inner);
        self.shared.wake.notify_one();
        self.shared.closed.notify_one();
    }
}

impl Reporter {
    /// Starts the sender task on the current tokio runtime.
    pub fn new(config: Config) -> Result<Reporter, Error> {
        let scheme_ok = config.url.starts_with("http://") || config.url.starts_with("https://");
        if !scheme_ok || config.url.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(Error::Url(config.url));
        }
        if config.max_queue == 0 || !(1..=1000).contains(&config.batch_size) {
            return Err(Error::Limits);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent("statescope-client-rust");
        if let Some(pem) = &config.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build()?;
        let prefix: String = {
            let mut rng = rand::rng();
            (0..12)
                .map(|_| char::from_digit(rng.random_range(0..36), 36).unwrap_or('0'))
                .collect()
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            counts: Counters::default(),
            wake: Notify::new(),
            done: Notify::new(),
            closed: Notify::new(),
            prefix,
            max_queue: config.max_queue,
        });
        let sender = Sender {
            shared: shared.clone(),
            client,
            url: format!("{}/api/v1/events", config.url.trim_end_matches('/')),
            token: config.token.map(|t| format!("Bearer {t}")),
            config: SendConfig {
                batch_size: config.batch_size,
                linger: config.linger,
                initial_backoff: config.initial_backoff,
                max_backoff: config.max_backoff,
            },
            down_since: None,
        };
        let sender = runtime.spawn(sender.run());
        Ok(Reporter {
            handle: Arc::new(Handle { shared, sender }),
        })
    }

    /// A handle for one machine, to report through without repeating its kind and name.
    pub fn machine(&self, kind: &str, name: &str) -> Machine {
        Machine {
            reporter: self.clone(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// Identity labels (`provider`, `key_id`, `worker_type`, `service`) for a
    /// machine; every later event of it carries them.
    pub fn set_labels<K: Into<String>, V: Into<String>>(
        &self,
        kind: &str,
        machine: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) {
        let labels = labels.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut inner = self.handle.shared.lock();
        inner
            .machines
            .entry((kind.to_owned(), machine.to_owned()))
            .or_insert_with(|| (0, BTreeMap::new()))
            .1 = labels;
    }

    /// The machine moved to state `to` (reporting the current state again is harmless).
    pub fn transition(&self, kind: &str, machine: &str, to: &str) {
        self.enqueue(kind, machine, &Body::Transition { to: to.to_owned() });
    }

    /// A call through a breaker ended; `failure_count` is the library's own count, if it has one.
    pub fn call(&self, kind: &str, machine: &str, outcome: Outcome, failure_count: Option<u64>) {
        self.enqueue(kind, machine, &Body::Call { outcome, failure_count });
    }

    /// The machine is alive.
    pub fn heartbeat(&self, kind: &str, machine: &str) {
        self.enqueue(kind, machine, &Body::Heartbeat);
    }

    /// A worker finished a job that ran `duration` after waiting `queue_wait`.
    pub fn job(&self, kind: &str, machine: &str, result: JobResult, duration: Duration, queue_wait: Option<Duration>) {
        self.enqueue(
            kind,
            machine,
            &Body::Job {
                result,
                duration_seconds: clamp_seconds(duration.as_secs_f64()),
                queue_seconds: queue_wait.map(|q| clamp_seconds(q.as_secs_f64())),
            },
        );
    }

    fn enqueue(&self, kind: &str, machine: &str, body: &Body) {
        let shared = &self.handle.shared;
        let mut inner = shared.lock();
        if inner.closing {
            shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        inner.next_id += 1;
        let id = format!("{}-{}", shared.prefix, inner.next_id);
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let entry = inner
            .machines
            .entry((kind.to_owned(), machine.to_owned()))
            .or_insert_with(|| (0, BTreeMap::new()));
        // Newer than anything this machine sent in an earlier run of the service.
        entry.0 = (entry.0 + 1).max(now_us);
        let event = WireEvent {
            kind,
            machine,
            body,
            labels: &entry.1,
            seq: entry.0,
            id: &id,
        };
        // Serialised under the lock: the queue must hold a machine's events in seq order.
        let Ok(json) = serde_json::to_vec(&event) else {
            return; // only f64 NaN/inf could fail, and job times are clamped
        };
        let what = format!("{} {kind}/{machine}", type_name(body));
        if inner.queue.len() >= shared.max_queue {
            inner.queue.pop_front();
            shared.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
        inner.queue.push_back(Queued { json, what });
        shared.counts.enqueued.fetch_add(1, Ordering::Relaxed);
        drop(inner);
        shared.wake.notify_one();
    }

    pub fn stats(&self) -> Stats {
        let shared = &self.handle.shared;
        let queued = {
            let inner = shared.lock();
            (inner.queue.len() + inner.in_flight) as u64
        };
        let c = &shared.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            enqueued: get(&c.enqueued),
            delivered: get(&c.delivered),
            duplicates: get(&c.duplicates),
            dropped: get(&c.dropped),
            rejected: get(&c.rejected),
            retries: get(&c.retries),
            queued,
        }
    }

    /// Waits until everything queued was delivered or refused; false if `timeout` passed first.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shared = &self.handle.shared;
        loop {
            {
                let inner = shared.lock();
                if inner.queue.is_empty() && inner.in_flight == 0 {
                    return true;
                }
            }
            if self.handle.sender.is_finished() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            shared.wake.notify_one();
            // Polls too: a batch finishing between the check and this wait is not missed for long.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), shared.done.notified()).await;
        }
    }

    /// Sends what is queued for at most `timeout`, then stops; later events are
    /// dropped. True if everything queued was delivered or refused.
    pub async fn close(&self, timeout: Duration) -> bool {
        let shared = &self.handle.shared;
        {
            let mut inner = shared.lock();
            if !inner.closing {
                inner.closing = true;
                inner.give_up_at = Some(Instant::now() + timeout);
            }
        }
        shared.wake.notify_one();
        shared.closed.notify_one();
        let deadline = Instant::now() + timeout + Duration::from_millis(100);
        while !self.handle.sender.is_finished() && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(20), shared.done.notified()).await;
        }
        let mut inner = shared.lock();
        if !self.handle.sender.is_finished() {
            // A request in flight outlasts the deadline; the task finishes it alone.
            let left = inner.queue.len() as u64;
            inner.lost += left + inner.in_flight as u64;
            shared.counts.dropped.fetch_add(left, Ordering::Relaxed);
            inner.queue.clear();
        }
        inner.lost == 0
    }
}

fn type_name(body: &Body) -> &'static str {
    match body {
        Body::Transition { .. } => "transition",
        Body::Call { .. } => "call",
        Body::Heartbeat => "heartbeat",
        Body::Job { .. } => "job",
    }
}

/// One machine's reporting handle (see [`Reporter::machine`]).
#[derive(Clone)]
pub struct Machine {
    reporter: Reporter,
    kind: Arc<str>,
    name: Arc<str>,
}

impl Machine {
    /// Identity labels every later event of this machine carries.
    pub fn with_labels<K: Into<String>, V: Into<String>>(self, labels: impl IntoIterator<Item = (K, V)>) -> Machine {
        self.reporter.set_labels(&self.kind, &self.name, labels);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn transition(&self, to: &str) {
        self.reporter.transition(&self.kind, &self.name, to);
    }

    pub fn call(&self, outcome: Outcome, failure_count: Option<u64>) {
        self.reporter.call(&self.kind, &self.name, outcome, failure_count);
    }

    pub fn heartbeat(&self) {
        self.reporter.heartbeat(&self.kind, &self.name);
    }

    pub fn job(&self, result: JobResult, duration: Duration, queue_wait: Option<Duration>) {
        self.reporter.job(&self.kind, &self.name, result, duration, queue_wait);
    }
}

struct SendConfig {
    batch_size: usize,
    linger: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
}

/// The background task.
struct Sender {
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    config: SendConfig,
    down_since: Option<Instant>,
}

/// What an attempt got back.
enum Answer {
    Ok {
        duplicates: u64,
    },
    /// A 4xx naming the refused event.
    RefusedEvent {
        index: usize,
        status: StatusCode,
        error: String,
    },
    TooLarge,
    Refused {
        status: StatusCode,
        error: String,
    },
    /// `index`: a 429 naming the event that would pass a cap.
    Retry {
        why: String,
        after: Option<Duration>,
        index: Option<usize>,
    },
}

/// Retries of a 429 that names one event (a machine or label-value cap) before that event is dropped.
const CAP_RETRIES: u32 = 3;

impl Sender {
    async fn run(mut self) {
        loop {
            // Wait for events (or close).
            loop {
                {
                    let inner = self.shared.lock();
                    if !inner.queue.is_empty() || inner.closing {
                        break;
                    }
                }
                self.shared.wake.notified().await;
            }
            let short = {
                let inner = self.shared.lock();
                !inner.closing && inner.queue.len() < self.config.batch_size
            };
            if short && !self.config.linger.is_zero() {
                // Let a burst gather into one request.
                tokio::time::sleep(self.config.linger).await;
            }
            let batch: Vec<Queued> = {
                let mut inner = self.shared.lock();
                if inner.queue.is_empty() {
                    break; // closing, and nothing left
                }
                let n = inner.queue.len().min(self.config.batch_size);
                inner.in_flight = n;
                inner.queue.drain(..n).collect()
            };
            self.deliver(batch).await;
            let stop = {
                let mut inner = self.shared.lock();
                inner.in_flight = 0;
                if gave_up(&inner) {
                    let left = inner.queue.len() as u64;
                    inner.lost += left;
                    self.shared.counts.dropped.fetch_add(left, Ordering::Relaxed);
                    inner.queue.clear();
                    true
                } else {
                    inner.closing && inner.queue.is_empty()
                }
            };
            self.shared.done.notify_waiters();
            if stop {
                break;
            }
        }
        self.shared.done.notify_waiters();
    }

    async fn deliver(&mut self, mut batch: Vec<Queued>) {
        let shared = self.shared.clone();
        let counts = &shared.counts;
        let mut attempt: u32 = 0;
        while !batch.is_empty() {
            match self.post(&batch).await {
                Answer::Ok { duplicates } => {
                    if let Some(since) = self.down_since.take() {
                        tracing::info!(after = ?since.elapsed(), "statescope: exporter reachable again");
                    }
                    counts.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    counts.duplicates.fetch_add(duplicates, Ordering::Relaxed);
                    return;
                }
                Answer::RefusedEvent { index, status, error } => {
                    // The request is all or nothing: drop the refused event, send the rest.
                    let bad = batch.remove(index);
                    counts.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = %bad.what, %status, %error, "statescope: exporter refused an event");
                }
                Answer::TooLarge if batch.len() > 1 => {
                    let rest = batch.split_off(batch.len() / 2);
                    Box::pin(self.deliver(batch)).await;
                    batch = rest;
                }
                Answer::TooLarge => {
                    counts.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = %batch[0].what, "statescope: exporter refused an event as too large");
                    return;
                }
                Answer::Refused { status, error } => {
                    counts.rejected.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::warn!(events = batch.len(), %status, %error, "statescope: exporter refused a request");
                    return;
                }
                Answer::Retry {
                    index: Some(index),
                    why,
                    ..
                } if attempt >= CAP_RETRIES => {
                    // Waiting seldom lifts a cap, and it must not hold up every event behind it.
                    let bad = batch.remove(index);
                    counts.rejected.fetch_add(1, Ordering::Relaxed);
                    attempt = 0;
                    tracing::warn!(event = %bad.what, %why, "statescope: exporter still at a limit; event dropped");
                }
                Answer::Retry { why, after, .. } => {
                    if self.down_since.is_none() {
                        self.down_since = Some(Instant::now());
                        tracing::warn!(%why, "statescope: exporter unavailable; retrying, events stay queued");
                    }
                    let give_up_at = {
                        let mut inner = shared.lock();
                        if gave_up(&inner) {
                            inner.lost += batch.len() as u64;
                            counts.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            return;
                        }
                        inner.give_up_at
                    };
                    let mut delay = self.backoff(attempt);
                    if let Some(after) = after {
                        delay = delay.max(after).min(self.config.max_backoff);
                    }
                    if let Some(at) = give_up_at {
                        delay = delay.min(at.saturating_duration_since(Instant::now()));
                    }
                    attempt = attempt.saturating_add(1);
                    counts.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // close() cuts the wait short; its deadline is checked above.
                        _ = shared.closed.notified() => {}
                    }
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.initial_backoff.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let base = base.min(self.config.max_backoff.as_secs_f64());
        Duration::from_secs_f64(rand::rng().random_range(base / 2.0..=base))
    }

    async fn post(&self, batch: &[Queued]) -> Answer {
        let mut body = Vec::with_capacity(batch.iter().map(|q| q.json.len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(br#"{"events":["#);
        for (i, q) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&q.json);
        }
        body.extend_from_slice(b"]}");
        let mut req = self.client.post(&self.url).header(CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            req = req.header(AUTHORIZATION, token);
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Retry {
                    why: error_chain(&e),
                    after: None,
                    index: None,
                };
            }
        };
        let status = resp.status();
        let after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let answer: serde_json::Value = match resp.bytes().await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(e) if status.is_success() => {
                // The exporter applied it, or not: the retry's ids decide.
                return Answer::Retry {
                    why: error_chain(&e),
                    after: None,
                    index: None,
                };
            }
            Err(_) => serde_json::Value::Null,
        };
        let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("").to_owned();
        let index = answer
            .get("index")
            .and_then(serde_json::Value::as_u64)
            .map(|i| i as usize)
            .filter(|i| *i < batch.len());
        match status.as_u16() {
            200..=299 => Answer::Ok {
                duplicates: answer
                    .get("duplicates")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
            },
            400 | 409 | 422 if index.is_some() => Answer::RefusedEvent {
                index: index.unwrap_or(0),
                status,
                error,
            },
            413 => Answer::TooLarge,
            408 | 429 | 500..=599 => Answer::Retry {
                why: format!("{status} {error}"),
                after,
                index: index.filter(|_| status == StatusCode::TOO_MANY_REQUESTS),
            },
            _ => Answer::Refused { status, error },
        }
    }
}

fn gave_up(inner: &Inner) -> bool {
    inner.give_up_at.is_some_and(|at| Instant::now() >= at)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
