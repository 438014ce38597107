//! The one way state changes: batches go through a single applier thread that
//! applies them to the [`Store`], appends them to the write-ahead log and
//! syncs it to disk, and only then answers. So every acknowledged event is on
//! disk, and the log replays in the order the store saw it.
//!
//! Batches that arrive while the disk syncs are applied together and share one
//! `fsync` (group commit): durability costs one sync per burst, not per request.
//!
//! When the log cannot be written (a full disk), the group's batches are
//! answered 503 and taken back out of the store and the log; the applier then
//! probes the disk every [`RETRY`] and takes writes again as soon as it can,
//! without a restart. A panic in the applier is not hidden: it stops taking
//! writes, says why on every answer and health check, and the process exits
//! non-zero.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::events::Event;
use crate::store::{Applied, ApplyError, Store};
use crate::telemetry::Telemetry;
use crate::wal::{Disk, RealDisk, Record, Snapshot, StoreCopy, Wal, WalError, panic_text};

/// Batches waiting for the applier; senders wait (backpressure) beyond it.
const QUEUE: usize = 1024;
/// Batches applied before one sync, at most.
const GROUP: usize = 256;
/// How often a log that failed is tried again while no batch comes.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long after a failed snapshot the next one is tried (the log keeps everything meanwhile).
const SNAPSHOT_RETRY: Duration = Duration::from_secs(10);

/// Why a batch was not acknowledged.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] ApplyError),
    #[error(
        "the exporter could not write its log ({0}); nothing of this request was kept. \
         Retry later: writes resume by themselves once the disk takes them again"
    )]
    Persist(String),
    #[error("the exporter's applier stopped ({0}); nothing more is accepted. This is a bug: restart the exporter")]
    Crashed(String),
    #[error("the exporter is shutting down")]
    ShuttingDown,
}

/// Whether the exporter can take writes, and if not, why.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Healthy,
    /// The log cannot be written now; the applier keeps trying.
    CannotPersist(String),
    /// The applier panicked: writes are over until a restart.
    Crashed(String),
}

/// The applier's [`Condition`], shared with the HTTP side.
#[derive(Default)]
struct Health(Mutex<Option<Condition>>);

impl Health {
    fn get(&self) -> Condition {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(Condition::Healthy)
    }

    fn set(&self, condition: Condition) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A crash is final.
        if !matches!(*now, Some(Condition::Crashed(_))) {
            *now = Some(condition);
        }
    }

    fn can_persist(&self) -> bool {
        self.get() == Condition::Healthy
    }
}

/// When to write a snapshot and start a fresh log.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotPolicy {
    pub every: Duration,
    pub log_bytes: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> SnapshotPolicy {
        SnapshotPolicy {
            every: Duration::from_secs(60),
            log_bytes: 32 << 20,
        }
    }
}

/// When the last snapshot was written, and when the next may be tried.
struct SnapshotClock {
    last: Instant,
    /// After a failed snapshot, the next waits [`SNAPSHOT_RETRY`] instead of following every batch.
    next_try: Instant,
}

impl SnapshotClock {
    fn new() -> SnapshotClock {
        SnapshotClock {
            last: Instant::now(),
            next_try: Instant::now(),
        }
    }

    /// Whether `policy` calls for a snapshot now, with a log of `log_bytes`.
    fn due(&self, policy: &SnapshotPolicy, log_bytes: u64) -> bool {
        Instant::now() >= self.next_try && (self.last.elapsed() >= policy.every || log_bytes >= policy.log_bytes)
    }

    fn record(&mut self, written: bool) {
        let now = Instant::now();
        if written {
            self.last = now;
            self.next_try = now;
        } else {
            self.next_try = now + SNAPSHOT_RETRY;
        }
    }
}

/// A handle to submit batches and read the store; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Batch>,
    store: Arc<RwLock<Store>>,
    health: Arc<Health>,
}

/// A submitted batch and where its answer goes.
struct Batch {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<Vec<Applied>, SubmitError>>,
}

/// Joins the applier thread: dropping every [`Ingest`] lets it finish the
/// queue, write a final snapshot and stop.
pub struct Applier(std::thread::JoinHandle<Result<(), String>>);

impl Applier {
    /// Waits for the applier to stop; an error says it panicked, and how.
    pub fn join(self) -> Result<(), String> {
        self.0
            .join()
            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())))
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    format!("the applier thread panicked: {}", panic_text(payload))
}

/// Unix time in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Ingest {
    /// Recovers the store from `data_dir` (snapshot, then log) and starts the applier.
    pub fn open(
        data_dir: PathBuf,
        empty: Store,
        policy: SnapshotPolicy,
        telemetry: Arc<Telemetry>,
    ) -> Result<(Ingest, Applier), WalError> {
        Ingest::open_on(Arc::new(RealDisk), data_dir, empty, policy, telemetry)
    }

    /// [`Ingest::open`], writing through `disk` (tests: a disk that fails on demand).
    pub fn open_on(
        disk: Arc<dyn Disk>,
        data_dir: PathBuf,
        empty: Store,
        policy: SnapshotPolicy,
        telemetry: Arc<Telemetry>,
    ) -> Result<(Ingest, Applier), WalError> {
        let (wal, store) = Wal::open_on(disk, data_dir, empty)?;
        let store = Arc::new(RwLock::new(store));
        let health = Arc::new(Health::default());
        let (tx, rx) = mpsc::channel(QUEUE);
        let committer = GroupCommitter {
            rx,
            wal,
            store: store.clone(),
            health: health.clone(),
            telemetry,
            policy,
            snapshots: SnapshotClock::new(),
        };
        let crash = health.clone();
        let thread = std::thread::Builder::new()
            .name("statescope-applier".into())
            .spawn(move || {
                // Batches in hand when a panic hits are answered by `run`; this
                // catches one anywhere else (a snapshot) so that it is not lost either.
                catch_unwind(AssertUnwindSafe(|| committer.run())).map_err(|payload| {
                    let why = panic_message(payload.as_ref());
                    crash.set(Condition::Crashed(why.clone()));
                    why
                })?
            })
            .map_err(|e| WalError::Io {
                what: "start the applier thread".into(),
                source: e,
            })?;
        Ok((Ingest { tx, store, health }, Applier(thread)))
    }

    /// Applies a batch, all or nothing; returns once it is on disk.
    pub async fn submit(&self, events: Vec<Event>) -> Result<Vec<Applied>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let gone = || match self.health.get() {
            Condition::Crashed(why) => SubmitError::Crashed(why),
            _ => SubmitError::ShuttingDown,
        };
        self.tx.send(Batch { events, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Reads the store (for `/metrics` and the JSON endpoints).
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state a machine is in now, by name.
    pub fn current_state(&self, kind: &str, machine: &str) -> Option<String> {
        self.read().state_name(kind, machine).map(str::to_owned)
    }

    /// False while the log cannot be written, and after the applier crashed.
    pub fn is_healthy(&self) -> bool {
        self.health.can_persist()
    }

    /// Whether writes are taken, and if not, why.
    pub fn condition(&self) -> Condition {
        self.health.get()
    }
}

/// The applier thread's loop: takes batches off the queue in groups,
/// applies them to the store, appends them to the log with one sync (group
/// commit), answers each, and writes snapshots when due. While the log
/// cannot be written it answers 503 and probes the disk every [`RETRY`].
struct GroupCommitter {
    rx: mpsc::Receiver<Batch>,
    wal: Wal,
    store: Arc<RwLock<Store>>,
    health: Arc<Health>,
    telemetry: Arc<Telemetry>,
    policy: SnapshotPolicy,
    snapshots: SnapshotClock,
}

impl GroupCommitter {
    /// After a failed append the store holds changes nobody was told were
    /// kept: put back what the disk holds, so reads show what a restart
    /// would, not batches that were answered 503.
    fn forget_unwritten(&mut self) {
        let empty = {
            let store = self.store.read().unwrap_or_else(|p| p.into_inner());
            Store::new(store.catalog().clone(), store.limits())
        };
        // A checkpoint in flight finishes before the log is read back. Its
        // outcome counts: a snapshot that failed (say, its file took the space
        // the append needed) waits SNAPSHOT_RETRY before the next try, instead
        // of starting again as soon as the log takes writes.
        if let Some(written) = self.wal.finish_checkpoint() {
            self.snapshots.record(Self::written(written));
        }
        // Read back without holding the lock (the applier is the only writer),
        // so scrapes go on while the log replays.
        match self.wal.reload(empty) {
            Ok(durable) => *self.store.write().unwrap_or_else(|p| p.into_inner()) = durable,
            Err(e) => tracing::error!(error = %e,
                "cannot read the event log back either; until a restart, reads may show batches that were refused"),
        }
    }

    fn run(mut self) -> Result<(), String> {
        // Waiting with a timeout (to probe a failed log while no batch comes) needs a timer.
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot start the applier's timer: {e}"))?;
        let mut last_probe = Instant::now();
        while let Some(group) = self.next_group(&timer, &mut last_probe) {
            self.apply_group(group)?;
            if let Some(written) = self.wal.checkpoint_done() {
                self.snapshots.record(Self::written(written));
            }
            // One checkpoint at a time: the next is due only once the last is done.
            if self.health.can_persist()
                && !self.wal.checkpointing()
                && self.snapshots.due(&self.policy, self.wal.log_bytes())
                && let Err(e) = self.start_snapshot()
            {
                self.snapshots.record(Self::written(Err(e)));
            }
        }
        // Every sender is gone: shutting down. A final snapshot makes the next start fast.
        if let Some(written) = self.wal.finish_checkpoint() {
            Self::written(written);
        }
        if self.health.can_persist() {
            let snapshot = Snapshot::of(&self.read());
            Self::written(self.wal.checkpoint(&snapshot));
        }
        Ok(())
    }

    /// The batches waiting, up to [`GROUP`], once at least one is; `None`
    /// when every sender is gone. While the log cannot be written, the disk
    /// is probed every [`RETRY`], whether batches come or not.
    fn next_group(&mut self, timer: &tokio::runtime::Runtime, last_probe: &mut Instant) -> Option<Vec<Batch>> {
        let first = loop {
            if self.health.can_persist() {
                break timer.block_on(self.rx.recv())?;
            }
            match timer.block_on(async { tokio::time::timeout(RETRY, self.rx.recv()).await }) {
                Ok(batch) => break batch?,
                Err(_) => {
                    self.probe();
                    *last_probe = Instant::now();
                }
            }
        };
        let mut group = vec![first];
        while group.len() < GROUP {
            match self.rx.try_recv() {
                Ok(batch) => group.push(batch),
                Err(_) => break,
            }
        }
        if !self.health.can_persist() && last_probe.elapsed() >= RETRY {
            self.probe();
            *last_probe = Instant::now();
        }
        Some(group)
    }

    /// Tries the log again after a failure; writes are taken again if it works.
    fn probe(&mut self) {
        match self.wal.probe(unix_now()) {
            Ok(()) => {
                tracing::info!("the event log takes writes again; accepting batches");
                self.health.set(Condition::Healthy);
            }
            Err(e) => tracing::debug!(error = %e, "the event log still cannot be written"),
        }
    }

    /// Applies, logs and answers a group. A panic while doing it is answered
    /// to every batch of the group (as a 500 with the reason) and ends the applier.
    fn apply_group(&mut self, group: Vec<Batch>) -> Result<(), String> {
        if let Condition::CannotPersist(why) = self.health.get() {
            for batch in group {
                let _ = batch.reply.send(Err(SubmitError::Persist(why.clone())));
            }
            return Ok(());
        }
        let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().map(|b| (b.events, b.reply)).unzip();
        match catch_unwind(AssertUnwindSafe(|| self.commit(batches))) {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
                Ok(())
            }
            Err(payload) => {
                let why = panic_message(payload.as_ref());
                tracing::error!(reason = %why, "the applier stopped: no more writes are accepted");
                self.health.set(Condition::Crashed(why.clone()));
                // The group may be half applied and half written: neither memory
                // nor the log may keep what is now answered 500.
                let undone = catch_unwind(AssertUnwindSafe(|| {
                    if let Err(e) = self.wal.discard_unacknowledged() {
                        tracing::error!(error = %e, "after the panic, the event log could not be cut back to what was acknowledged");
                    }
                    self.forget_unwritten();
                }));
                if undone.is_err() {
                    tracing::error!("after the panic, reads may show batches that were not acknowledged");
                }
                for reply in replies {
                    let _ = reply.send(Err(SubmitError::Crashed(why.clone())));
                }
                Err(why)
            }
        }
    }

    /// Applies the batches, logs them with one sync, and says what to answer each.
    fn commit(&mut self, batches: Vec<Vec<Event>>) -> Vec<Result<Vec<Applied>, SubmitError>> {
        let mut answers = Vec::with_capacity(batches.len());
        let mut records = Vec::new();
        for events in batches {
            // The lock is taken per batch, not per group: a scrape waiting to
            // read gets in between batches instead of after the whole group.
            let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
            let at = unix_now();
            let result = store.apply(&events, at);
            match &result {
                Ok(applied) => {
                    self.telemetry.count_events(&events, applied);
                    if applied.iter().any(|a| *a != Applied::Duplicate) {
                        records.push(Record::batch(at, events));
                    }
                }
                Err(ApplyError::Illegal(illegal)) => {
                    if store.count_illegal(&illegal.kind, &illegal.machine) {
                        records.push(Record::illegal(&illegal.kind, &illegal.machine));
                    }
                }
                Err(_) => {}
            }
            answers.push(result.map_err(SubmitError::from));
        }
        if let Err(e) = self.wal.append(records) {
            tracing::error!(error = %e, "writing the event log failed; refusing writes until it works again");
            self.health.set(Condition::CannotPersist(e.to_string()));
            self.forget_unwritten();
            return answers
                .into_iter()
                .map(|_| Err(SubmitError::Persist(e.to_string())))
                .collect();
        }
        answers
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts writing a snapshot on its own thread: this one only clones the
    /// store's parts and starts a new log segment, so batches keep being
    /// applied while the snapshot is made, serialised and synced.
    fn start_snapshot(&mut self) -> Result<(), WalError> {
        let started = Instant::now();
        let copy = StoreCopy::of(&self.read());
        let copied = started.elapsed();
        let machines = copy.machines();
        self.wal.start_checkpoint(copy)?;
        tracing::debug!(machines, ?copied, took = ?started.elapsed(), "snapshot started");
        Ok(())
    }

    /// Logs how a snapshot went; false if it failed.
    fn written(outcome: Result<usize, WalError>) -> bool {
        match outcome {
            Ok(bytes) => {
                tracing::debug!(bytes, "snapshot written");
                true
            }
            // The log still holds everything; a later checkpoint tries again.
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?SNAPSHOT_RETRY, "writing a snapshot failed; the event log keeps growing");
                false
            }
        }
    }
}
