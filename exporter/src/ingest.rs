//! The one way state changes: batches go through a single applier thread that
//! applies them to the [`Store`], appends them to the write-ahead log and
//! syncs it to disk, and only then answers. So every acknowledged event is on
//! disk, and the log replays in the order the store saw it.
//!
//! Batches that arrive while the disk syncs are applied together and share one
//! `fsync` (group commit): durability costs one sync per burst, not per request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::events::Event;
use crate::store::{Applied, ApplyError, Store};
use crate::telemetry::Telemetry;
use crate::wal::{Record, Wal, WalError};

/// Batches waiting for the applier; senders wait (backpressure) beyond it.
const QUEUE: usize = 1024;
/// Batches applied before one sync, at most.
const GROUP: usize = 256;

/// Why a batch was not acknowledged.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] ApplyError),
    #[error("the exporter could not write its log ({0}); nothing more is accepted until it restarts")]
    Persist(String),
    #[error("the exporter is shutting down")]
    ShuttingDown,
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

/// A handle to submit batches and read the store; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    store: Arc<RwLock<Store>>,
    healthy: Arc<AtomicBool>,
}

struct Job {
    events: Vec<Event>,
    reply: oneshot::Sender<Result<Vec<Applied>, SubmitError>>,
}

/// Joins the applier thread: dropping every [`Ingest`] lets it finish the
/// queue, write a final snapshot and stop.
pub struct Applier(std::thread::JoinHandle<()>);

impl Applier {
    pub fn join(self) {
        let _ = self.0.join();
    }
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
        let (wal, store) = Wal::open(data_dir, empty)?;
        let store = Arc::new(RwLock::new(store));
        let healthy = Arc::new(AtomicBool::new(true));
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker = Worker {
            rx,
            wal,
            store: store.clone(),
            healthy: healthy.clone(),
            telemetry,
            policy,
        };
        let thread = std::thread::Builder::new()
            .name("statescope-applier".into())
            .spawn(move || worker.run())
            .map_err(|e| WalError::Io {
                what: "start the applier thread".into(),
                source: e,
            })?;
        Ok((Ingest { tx, store, healthy }, Applier(thread)))
    }

    /// Applies a batch, all or nothing; returns once it is on disk.
    pub async fn submit(&self, events: Vec<Event>) -> Result<Vec<Applied>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| SubmitError::ShuttingDown)?;
        answer.await.map_err(|_| SubmitError::ShuttingDown)?
    }

    /// Reads the store (for `/metrics` and the JSON endpoints).
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state a machine is in now, by name.
    pub fn current_state(&self, kind: &str, machine: &str) -> Option<String> {
        self.read().state_name(kind, machine).map(str::to_owned)
    }

    /// False once writing the log has failed.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

struct Worker {
    rx: mpsc::Receiver<Job>,
    wal: Wal,
    store: Arc<RwLock<Store>>,
    healthy: Arc<AtomicBool>,
    telemetry: Arc<Telemetry>,
    policy: SnapshotPolicy,
}

impl Worker {
    /// After a failed append the store holds changes nobody was told were
    /// kept: put back what the disk holds, so reads show what a restart
    /// would, not batches that were answered 503.
    fn forget_unwritten(&self) {
        let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
        let empty = Store::new(store.catalog().clone(), store.limits());
        match self.wal.reload(empty) {
            Ok(durable) => *store = durable,
            Err(e) => tracing::error!(error = %e,
                "cannot read the event log back either; until a restart, reads may show batches that were refused"),
        }
    }

    fn run(mut self) {
        let mut last_snapshot = Instant::now();
        while let Some(first) = self.rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.apply_group(jobs);
            if self.healthy.load(Ordering::Relaxed)
                && (last_snapshot.elapsed() >= self.policy.every || self.wal.log_bytes() >= self.policy.log_bytes)
            {
                self.snapshot();
                last_snapshot = Instant::now();
            }
        }
        // Every sender is gone: shutting down. A final snapshot makes the next start fast.
        if self.healthy.load(Ordering::Relaxed) {
            self.snapshot();
        }
    }

    fn apply_group(&mut self, jobs: Vec<Job>) {
        if !self.healthy.load(Ordering::Relaxed) {
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(SubmitError::Persist("an earlier write failed".into())));
            }
            return;
        }
        let mut answers = Vec::with_capacity(jobs.len());
        let mut records = Vec::new();
        for job in jobs {
            // The lock is taken per batch, not per group: a scrape waiting to
            // read gets in between batches instead of after the whole group.
            let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
            let at = unix_now();
            let result = store.apply(&job.events, at);
            match &result {
                Ok(applied) => {
                    self.telemetry.count_events(&job.events, applied);
                    if applied.iter().any(|a| *a != Applied::Duplicate) {
                        records.push(Record::batch(at, job.events));
                    }
                }
                Err(ApplyError::Illegal(illegal)) => {
                    if store.count_illegal(&illegal.kind, &illegal.machine) {
                        records.push(Record::illegal(&illegal.kind, &illegal.machine));
                    }
                }
                Err(_) => {}
            }
            answers.push((job.reply, result));
        }
        if let Err(e) = self.wal.append(records) {
            tracing::error!(error = %e, "writing the event log failed; refusing further writes");
            self.healthy.store(false, Ordering::Relaxed);
            self.forget_unwritten();
            for (reply, _) in answers {
                let _ = reply.send(Err(SubmitError::Persist(e.to_string())));
            }
            return;
        }
        for (reply, result) in answers {
            let _ = reply.send(result.map_err(SubmitError::from));
        }
    }

    fn snapshot(&mut self) {
        let snapshot = self.store.read().unwrap_or_else(|p| p.into_inner()).snapshot();
        let started = Instant::now();
        match self.wal.checkpoint(&snapshot) {
            Ok(bytes) => {
                tracing::debug!(bytes, machines = snapshot.machines.len(), took = ?started.elapsed(), "snapshot written")
            }
            // The log still holds everything; the next checkpoint tries again.
            Err(e) => tracing::warn!(error = %e, "writing a snapshot failed; the event log keeps growing"),
        }
    }
}
