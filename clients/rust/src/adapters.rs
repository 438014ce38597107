//! Wrappers for the two built-in kinds: a circuit breaker (any library whose
//! state you can read) and a worker loop.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::event::{JobResult, Outcome, state_name};
use crate::reporter::{Machine, Reporter};

pub const CIRCUIT_BREAKER: &str = "circuit_breaker";
pub const WORKER: &str = "worker";

/// Reports a circuit breaker: its calls, and its state whenever it changed.
///
/// Call [`BreakerReporter::state_changed`] from the library's transition hook
/// (under its lock, so moves are reported in the order they happened), or
/// after each call with the state read back when it has no hook: then only
/// moves that differ from the last one seen are sent. Wrap calls in
/// [`BreakerReporter::call`] to report their outcomes.
pub struct BreakerReporter {
    machine: Machine,
    last: Mutex<Option<String>>,
}

impl BreakerReporter {
    pub fn new(reporter: &Reporter, name: &str) -> BreakerReporter {
        BreakerReporter {
            machine: reporter.machine(CIRCUIT_BREAKER, name),
            last: Mutex::new(None),
        }
    }

    /// Identity labels (`provider`, `key_id`, `service`), sent with every event.
    pub fn with_labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> BreakerReporter {
        self.machine = self.machine.with_labels(labels);
        self
    }

    /// The breaker is in `state` (a library's name: `"half-open"`, `HalfOpen`...);
    /// reported when it differs from the last state seen.
    pub fn state_changed(&self, state: &str) {
        let name = state_name(state);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(name.as_str()) {
            // Under the lock: two threads seeing two moves report them in order.
            self.machine.transition(&name);
            *last = Some(name);
        }
    }

    /// A call ended with `outcome`; `failure_count` is the library's count, if it has one.
    pub fn record(&self, outcome: Outcome, failure_count: Option<u64>) {
        self.machine.call(outcome, failure_count);
    }

    /// Runs `call` and reports its outcome: `Ok` a success, `Err` a failure
    /// (use [`BreakerReporter::record`] for rejections and timeouts).
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let result = call.await;
        self.record(
            if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            None,
        );
        result
    }
}

/// Reports a worker loop: `idle` when started, `busy` while at least one job
/// runs, a `job` event per job, heartbeats from a background task, and
/// `draining` / `offline` when it stops.
pub struct WorkerReporter {
    machine: Machine,
    active: Arc<Mutex<usize>>,
    jobs: AtomicUsize,
    heartbeats: tokio::task::JoinHandle<()>,
}

impl WorkerReporter {
    /// Starts reporting worker `name` (heartbeat every `heartbeat_every`: keep
    /// it under the exporter's `--heartbeat-ttl`, 30 s by default). Needs a tokio runtime.
    pub fn start<K: Into<String>, V: Into<String>>(
        reporter: &Reporter,
        name: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        heartbeat_every: Duration,
    ) -> WorkerReporter {
        let machine = reporter.machine(WORKER, name).with_labels(labels);
        machine.transition("idle");
        let beating = machine.clone();
        let heartbeats = tokio::spawn(async move {
            let mut tick = tokio::time::interval(heartbeat_every);
            loop {
                tick.tick().await;
                beating.heartbeat();
            }
        });
        WorkerReporter {
            machine,
            active: Arc::new(Mutex::new(0)),
            jobs: AtomicUsize::new(0),
            heartbeats,
        }
    }

    /// Runs one job; `queued_at` is when it was put in the queue, if known.
    pub async fn job<T, E, F>(&self, queued_at: Option<Instant>, job: F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        self.moved(1);
        let result = job.await;
        let outcome = if result.is_ok() {
            JobResult::Succeeded
        } else {
            JobResult::Failed
        };
        self.machine.job(
            outcome,
            started.elapsed(),
            queued_at.map(|q| started.saturating_duration_since(q)),
        );
        self.jobs.fetch_add(1, Ordering::Relaxed);
        self.moved(-1);
        result
    }

    /// Jobs run so far.
    pub fn jobs(&self) -> usize {
        self.jobs.load(Ordering::Relaxed)
    }

    fn moved(&self, by: isize) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let before = *active;
        *active = before.saturating_add_signed(by);
        // Under the lock: transitions are queued in the order the count moved.
        match (before, *active) {
            (0, 1) => self.machine.transition("busy"),
            (1, 0) => self.machine.transition("idle"),
            _ => {}
        }
    }

    /// Stops taking jobs (reported as `draining`).
    pub fn draining(&self) {
        self.machine.transition("draining");
    }

    /// The worker stopped: `offline`, and no more heartbeats.
    pub fn stop(self) {
        self.heartbeats.abort();
        self.machine.transition("offline");
    }
}
