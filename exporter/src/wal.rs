//! On-disk durability: a write-ahead log of applied batches (JSON lines,
//! `events.jsonl`) and a periodic [`Snapshot`] of the whole store
//! (`snapshot.json`), saved as plain data with states by name.
//!
//! Each log record carries a number; the snapshot remembers the last record
//! it includes. A checkpoint seals the log into a segment
//! (`events.<n>.jsonl`, records below `n`) and starts a new one, so records
//! keep coming while a thread of its own writes the snapshot and then removes
//! the segment. Recovery loads the snapshot and replays the newer records of
//! every segment in order and then of the log, so a crash at any point of a
//! checkpoint replays nothing twice and loses nothing. A record cut short by a crash mid-write was never acknowledged (the
//! answer waits for the sync), so a torn last line is dropped; damage anywhere
//! else stops the start with the line number instead of losing data silently.
//!
//! A write that fails (a full disk) is cut back off the log before anyone is
//! answered: the log then holds exactly the acknowledged batches, so a restart
//! agrees with the answers. The file operations go through [`Disk`], so that
//! tests can make them fail on demand.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use statescope_model::Kind;
use statescope_model::contract::{CallOutcome, JobResult};
use thiserror::Error;

use crate::events::Event;
use crate::store::{
    ApplyError, Catalog, JOB_BUCKETS, JobHistograms, Labels, Limits, Machine, MachineKey, Store, Transitions,
};

const LOG: &str = "events.jsonl";
const SNAPSHOT: &str = "snapshot.json";
const LOCK: &str = "lock";
/// Bytes a probe of a failed log writes: room for a few hundred events.
pub const PROBE_BYTES: usize = 64 * 1024;
/// Most sealed segments kept while snapshots keep failing (a full disk
/// retried every 10 s would seal one each time: ~360 files an hour, each
/// tracked in memory and read at start). Past it a checkpoint leaves the log
/// unsealed: the snapshot still covers every record so far, and replay skips
/// the records of the log it holds.
pub const MAX_SEALED_SEGMENTS: usize = 16;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("cannot {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("data directory {0} is in use by another statescope-exporter")]
    Locked(PathBuf),
    #[error("{path}:{line}: damaged log record ({reason}); move the file away to start without it")]
    Corrupt { path: PathBuf, line: usize, reason: String },
    /// The log holds more than a limit of the config now allows: the limit
    /// was lowered after the data was accepted. Nothing is damaged.
    #[error(
        "{path}:{line}: the data directory holds more {what} than `[limits] {setting} = {limit}` allows: the limit \
         was lowered after they were accepted, and the log cannot be replayed under it. Raise `{setting}` in the \
         config back to at least its old value (nothing is lost), or move the data directory away to start empty"
    )]
    OverLimit {
        path: PathBuf,
        line: usize,
        what: String,
        setting: &'static str,
        limit: usize,
    },
    #[error("{path}: {reason}")]
    Snapshot { path: PathBuf, reason: String },
    #[error("the checkpoint thread panicked: {0}")]
    CheckpointPanicked(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WalError {
    let what = what.into();
    move |source| WalError::Io { what, source }
}

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    n: u64,
    /// Unix seconds the batch was applied at (replayed with the same time).
    at: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<Event>,
    /// A refused illegal transition, counted on its machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    illegal: Option<(String, String)>,
}

impl Record {
    pub fn batch(at: f64, events: Vec<Event>) -> Record {
        Record {
            n: 0,
            at,
            events,
            illegal: None,
        }
    }

    pub fn illegal(kind: &str, machine: &str) -> Record {
        Record {
            n: 0,
            at: 0.0,
            events: Vec::new(),
            illegal: Some((kind.to_owned(), machine.to_owned())),
        }
    }
}

/// The writes the log and the snapshots make. [`RealDisk`] does them; a test
/// implements this to fail on demand (fill up partway through a write, fail
/// a sync, panic) where the operating system would not.
pub trait Disk: Send + Sync {
    /// Writes `bytes` at the end of `file` (opened for appending). A full disk
    /// may write a part and fail.
    fn append(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    /// Makes what was appended to `file` durable.
    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Opens the log at `path` for appending, creating it if needed.
    fn open_log(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).read(true).append(true).open(path)
    }

    /// Creates (or replaces) the file at `path` with `bytes`, synced.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut f = File::create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }
}

/// The file system as it is.
pub struct RealDisk;

impl Disk for RealDisk {}

#[derive(Deserialize)]
struct SnapshotFile {
    /// Records up to this number are in the snapshot.
    last_record: u64,
    store: Snapshot,
}

/// A [`SnapshotFile`] to write, borrowing the store's copy.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    last_record: u64,
    store: &'a Snapshot,
}

/// The store as saved on disk. States are saved by name, not index, so a
/// config that reorders a kind's states still restores every machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub machines: Vec<SavedMachine>,
    pub recent_ids: Vec<String>,
    pub jobs: Vec<(String, String, JobHistograms)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedMachine {
    pub kind: String,
    pub machine: String,
    pub state: String,
    pub since: f64,
    pub created: f64,
    pub last_seq: Option<u64>,
    pub transitions: Vec<(String, String, u64)>,
    /// [`Machine::unexpected`], under the name snapshots have always used.
    pub illegal: u64,
    pub calls: [u64; CallOutcome::ALL.len()],
    pub failures: u64,
    pub jobs: [u64; JobResult::ALL.len()],
    pub last_heartbeat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alive_until: Option<f64>,
    pub labels: BTreeMap<String, String>,
}

impl SavedMachine {
    fn save(key: &MachineKey, m: &Machine, kind: &Kind) -> SavedMachine {
        let name = |s| kind.state_name(s).to_owned();
        SavedMachine {
            kind: key.kind.clone(),
            machine: key.machine.clone(),
            state: name(m.state),
            since: m.since,
            created: m.created,
            last_seq: m.last_seq,
            transitions: m.transitions.iter().map(|((f, t), n)| (name(f), name(t), n)).collect(),
            illegal: m.unexpected,
            calls: m.calls,
            failures: m.failures,
            jobs: m.jobs,
            last_heartbeat: m.last_heartbeat,
            alive_until: m.alive_until,
            labels: m.labels.to_map(),
        }
    }

    fn load(self, kind: &Kind) -> Result<(MachineKey, Machine), String> {
        let id = |state: &str| {
            kind.state_id(state).ok_or_else(|| {
                format!(
                    "saved machine {:?} refers to state {state:?}, which kind {:?} no longer has",
                    self.machine, self.kind
                )
            })
        };
        let mut transitions = Transitions::default();
        for (from, to, n) in &self.transitions {
            transitions.set((id(from)?, id(to)?), *n);
        }
        let machine = Machine {
            state: id(&self.state)?,
            since: self.since,
            created: self.created,
            last_seq: self.last_seq,
            transitions,
            unexpected: self.illegal,
            calls: self.calls,
            failures: self.failures,
            jobs: self.jobs,
            last_heartbeat: self.last_heartbeat,
            alive_until: self.alive_until,
            labels: Labels::from(&self.labels),
        };
        Ok((
            MachineKey {
                kind: self.kind,
                machine: self.machine,
            },
            machine,
        ))
    }
}

/// The parts of the store a snapshot saves, cloned as they are: quick to take
/// under the store's lock, and turned into a [`Snapshot`] (state names, label
/// maps) by the checkpoint's own thread.
pub struct StoreCopy {
    catalog: Catalog,
    machines: BTreeMap<MachineKey, Machine>,
    recent_ids: Vec<Arc<str>>,
    jobs: BTreeMap<(String, String), JobHistograms>,
}

impl StoreCopy {
    pub fn of(store: &Store) -> StoreCopy {
        StoreCopy {
            catalog: store.catalog().clone(),
            machines: store.machines().clone(),
            recent_ids: store.recent_ids().cloned().collect(),
            jobs: store.job_histograms().clone(),
        }
    }

    pub fn machines(&self) -> usize {
        self.machines.len()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::saved(&self.catalog, &self.machines, self.recent_ids.iter(), &self.jobs)
    }
}

impl Snapshot {
    /// Everything a restart needs from `store`, copied out as plain data.
    pub fn of(store: &Store) -> Snapshot {
        Snapshot::saved(
            store.catalog(),
            store.machines(),
            store.recent_ids(),
            store.job_histograms(),
        )
    }

    fn saved<'a>(
        catalog: &Catalog,
        machines: &BTreeMap<MachineKey, Machine>,
        recent_ids: impl Iterator<Item = &'a Arc<str>>,
        jobs: &BTreeMap<(String, String), JobHistograms>,
    ) -> Snapshot {
        let kind_of = |key: &MachineKey| catalog.get(&key.kind).expect("machines only exist for known kinds");
        Snapshot {
            machines: machines
                .iter()
                .map(|(key, m)| SavedMachine::save(key, m, kind_of(key)))
                .collect(),
            recent_ids: recent_ids.map(|id| id.to_string()).collect(),
            jobs: jobs
                .iter()
                .map(|((k, w), h)| (k.clone(), w.clone(), h.clone()))
                .collect(),
        }
    }

    /// Rebuilds the store. Fails if the snapshot holds a kind or state the
    /// catalog no longer has (a config change that would lose data), or a
    /// histogram of another shape.
    pub fn into_store(self, catalog: Catalog, limits: Limits) -> Result<Store, String> {
        let machines = self
            .machines
            .into_iter()
            .map(|saved| {
                let kind = catalog.get(&saved.kind).ok_or_else(|| {
                    format!(
                        "saved machine {:?} is of kind {:?}, which the configuration no longer defines",
                        saved.machine, saved.kind
                    )
                })?;
                saved.load(kind)
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        for (kind, worker_type, h) in &self.jobs {
            check_buckets(kind, worker_type, h)?;
        }
        let jobs = self.jobs.into_iter().map(|(k, w, h)| ((k, w), h)).collect();
        Ok(Store::from_parts(catalog, limits, machines, self.recent_ids, jobs))
    }
}

/// A saved histogram is empty until its first observation; otherwise it has
/// one count per bucket and +Inf.
fn check_buckets(kind: &str, worker_type: &str, h: &JobHistograms) -> Result<(), String> {
    for (name, histogram) in [("duration", &h.duration), ("queue_wait", &h.queue_wait)] {
        let n = histogram.buckets.len();
        if n != 0 && n != JOB_BUCKETS.len() + 1 {
            return Err(format!(
                "saved job {name} histogram of kind {kind:?}, worker_type {worker_type:?} has {n} buckets; \
                 this version uses {} (the file is damaged or from another version)",
                JOB_BUCKETS.len() + 1
            ));
        }
    }
    Ok(())
}

pub struct Wal {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    log: File,
    /// Where `log` is: `events.jsonl`, unless a rotation failed halfway (see [`Wal::rotate`]).
    log_path: PathBuf,
    /// Length of the log's acknowledged records: the file holds exactly
    /// these bytes unless `torn`.
    log_bytes: u64,
    /// A failed append left bytes past `log_bytes` that could not be cut off
    /// yet; the next append cuts them first.
    torn: bool,
    next: u64,
    /// Sealed segments no finished snapshot covers yet, oldest first.
    sealed: Vec<Segment>,
    /// The checkpoint being written on its own thread; at most one.
    in_flight: Option<InFlight>,
    /// Held open for its lock while the exporter runs.
    _lock: File,
}

/// A log file that takes no more records: the log as it was when a checkpoint began.
#[derive(Clone, Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
}

/// A checkpoint writing on its own thread, and how many of [`Wal::sealed`] it covers.
struct InFlight {
    thread: std::thread::JoinHandle<Result<usize, WalError>>,
    covers: usize,
}

/// What a checkpoint writes, and what it removes once the snapshot is in place.
struct Checkpoint {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    last_record: u64,
    obsolete: Vec<PathBuf>,
}

impl Checkpoint {
    /// Writes `store` as the snapshot of every record up to `last_record`,
    /// then removes the segments it covers. Returns the snapshot's size.
    fn write(&self, store: &Snapshot) -> Result<usize, WalError> {
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        let file = SnapshotFileRef {
            last_record: self.last_record,
            store,
        };
        let bytes = serde_json::to_vec(&file).expect("a snapshot serializes to JSON");
        let placed = self
            .disk
            .write_file(&tmp, &bytes)
            .map_err(io(format!("write {}", tmp.display())))
            .and_then(|()| fs::rename(&tmp, self.dir.join(SNAPSHOT)).map_err(io("rename the new snapshot into place")));
        if let Err(e) = placed {
            // A partial snapshot would hold the space the log needs, and outlive a restart.
            remove_tmp(&self.dir);
            return Err(e);
        }
        sync_dir(&self.dir)?;
        // A segment left by a crash from here on only holds records the snapshot has: replay skips them.
        for path in &self.obsolete {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io(format!("remove {}", path.display()))(e));
                }
                _ => {}
            }
        }
        Ok(bytes.len())
    }
}

impl Wal {
    /// Locks `dir` and recovers the store it holds into `empty`.
    pub fn open(dir: PathBuf, empty: Store) -> Result<(Wal, Store), WalError> {
        Wal::open_on(Arc::new(RealDisk), dir, empty)
    }

    /// [`Wal::open`], writing through `disk`.
    pub fn open_on(disk: Arc<dyn Disk>, dir: PathBuf, empty: Store) -> Result<(Wal, Store), WalError> {
        fs::create_dir_all(&dir).map_err(io(format!("create data directory {}", dir.display())))?;
        let lock = File::create(dir.join(LOCK)).map_err(io(format!("create {}", dir.join(LOCK).display())))?;
        if lock.try_lock().is_err() {
            return Err(WalError::Locked(dir));
        }
        remove_tmp(&dir);
        let log_path = dir.join(LOG);
        let log = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(io(format!("open {}", log_path.display())))?;
        let recovered = recover(&dir, &log_path, None, empty)?;
        let len = log
            .metadata()
            .map_err(io(format!("read {}", log_path.display())))?
            .len();
        if recovered.log_bytes < len {
            tracing::warn!(path = %log_path.display(), dropped_bytes = len - recovered.log_bytes,
                "dropping a torn last record (written during a crash, never acknowledged)");
            log.set_len(recovered.log_bytes)
                .map_err(io(format!("truncate {}", log_path.display())))?;
            log.sync_all().map_err(io(format!("sync {}", log_path.display())))?;
        }
        // Left by a crash after their snapshot was in place.
        let mut sealed = Vec::new();
        for (segment, obsolete) in recovered.sealed {
            if obsolete {
                if let Err(e) = fs::remove_file(&segment.path) {
                    tracing::warn!(path = %segment.path.display(), error = %e, "cannot remove a log segment a snapshot holds");
                }
            } else {
                sealed.push(segment);
            }
        }
        let wal = Wal {
            dir,
            disk,
            log,
            log_path,
            log_bytes: recovered.log_bytes,
            torn: false,
            next: recovered.next,
            sealed,
            in_flight: None,
            _lock: lock,
        };
        Ok((wal, recovered.store))
    }

    /// The acknowledged store, read back from disk: the snapshot and the
    /// log's acknowledged records. After a failed append, this is the store
    /// without the changes of the batches that failed, as a restart sees it.
    pub fn reload(&mut self, empty: Store) -> Result<Store, WalError> {
        // A checkpoint finishing meanwhile would replace the snapshot and remove segments under the reading.
        if let Some(Err(e)) = self.finish_checkpoint() {
            tracing::warn!(error = %e, "writing a snapshot failed; the event log keeps everything");
        }
        // Bytes of a failed append that could not be cut off yet were never acknowledged.
        Ok(recover(&self.dir, &self.log_path, Some(self.log_bytes), empty)?.store)
    }

    /// Bytes of log no snapshot holds yet: what a start would replay.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes + self.sealed.iter().map(|s| s.bytes).sum::<u64>()
    }
    /// Appends records and syncs them to disk. On failure the log is cut
    /// back to its acknowledged records: none of `records` is kept.
    pub fn append(&mut self, records: Vec<Record>) -> Result<(), WalError> {
        self.append_padded(records, 0)
    }

    /// [`Wal::append`], the last line padded with spaces (which JSON ignores)
    /// to at least `pad_to` bytes.
    fn append_padded(&mut self, records: Vec<Record>, pad_to: usize) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.torn {
            self.cut_back()?;
        }
        let mut buf = Vec::new();
        for mut record in records {
            record.n = self.next;
            self.next += 1;
            serde_json::to_writer(&mut buf, &record).expect("events serialize to JSON");
            buf.push(b'\n');
        }
        if buf.len() < pad_to {
            buf.pop();
            buf.resize(pad_to - 1, b' ');
            buf.push(b'\n');
        }
        let written = self
            .disk
            .append(&mut self.log, &buf)
            .map_err(io("append to the event log"))
            .and_then(|()| self.disk.sync(&self.log).map_err(io("sync the event log")));
        if let Err(e) = written {
            self.torn = true;
            if let Err(cut) = self.cut_back() {
                tracing::error!(error = %cut, "cannot cut the failed write off the event log yet; \
                    a restart before it is cut would replay batches that were refused");
            }
            return Err(e);
        }
        self.log_bytes += buf.len() as u64;
        Ok(())
    }

    /// Writes a record that changes nothing: whether the log takes writes
    /// again. It is padded to [`PROBE_BYTES`], so that a disk with a few
    /// bytes free does not pass for one that takes writes.
    pub fn probe(&mut self, at: f64) -> Result<(), WalError> {
        self.append_padded(vec![Record::batch(at, Vec::new())], PROBE_BYTES)
    }

    /// Cuts off whatever an interrupted append (a panic) may have left past
    /// the acknowledged records.
    pub fn discard_unacknowledged(&mut self) -> Result<(), WalError> {
        self.torn = true;
        self.cut_back()
    }

    /// Cuts the log back to its acknowledged records.
    fn cut_back(&mut self) -> Result<(), WalError> {
        self.log
            .set_len(self.log_bytes)
            .and_then(|()| self.log.sync_all())
            .map_err(io("cut a failed write off the event log"))?;
        self.torn = false;
        Ok(())
    }

    /// Writes a snapshot of everything logged so far, then removes the log it
    /// replaces; waits for a checkpoint still writing first.
    pub fn checkpoint(&mut self, store: &Snapshot) -> Result<usize, WalError> {
        let (checkpoint, covers) = self.seal()?;
        let written = checkpoint.write(store);
        if written.is_ok() {
            self.sealed.drain(..covers);
        }
        written
    }

    /// Starts a checkpoint of `store` (everything logged so far) on its own
    /// thread and returns at once: the log goes on taking records meanwhile,
    /// in a new segment. Waits for a checkpoint still writing first; see
    /// [`Wal::checkpointing`] to never wait.
    pub fn start_checkpoint(&mut self, store: StoreCopy) -> Result<(), WalError> {
        let (checkpoint, covers) = self.seal()?;
        let thread = std::thread::Builder::new()
            .name("statescope-checkpoint".into())
            .spawn(move || {
                yield_the_cpus();
                checkpoint.write(&store.snapshot())
            })
            .map_err(io("start the checkpoint thread"))?;
        self.in_flight = Some(InFlight { thread, covers });
        Ok(())
    }

    /// Whether a checkpoint is writing.
    pub fn checkpointing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The outcome of the checkpoint in flight once it is done (its snapshot's
    /// size, or why it failed); `None` while it writes, or if none was started.
    pub fn checkpoint_done(&mut self) -> Option<Result<usize, WalError>> {
        if self.in_flight.as_ref()?.thread.is_finished() {
            self.finish_checkpoint()
        } else {
            None
        }
    }

    /// Waits for the checkpoint in flight, if any, and returns its outcome.
    pub fn finish_checkpoint(&mut self) -> Option<Result<usize, WalError>> {
        let InFlight { thread, covers } = self.in_flight.take()?;
        // A bug in writing one snapshot fails that snapshot, not ingest: the
        // log still holds everything, and the next checkpoint tries again.
        let written = thread.join().unwrap_or_else(|payload| {
            remove_tmp(&self.dir);
            Err(WalError::CheckpointPanicked(panic_text(payload.as_ref()).to_string()))
        });
        if written.is_ok() {
            self.sealed.drain(..covers);
        }
        Some(written)
    }

    /// Seals the log (see [`Wal::rotate`]) and says what a checkpoint of
    /// everything logged so far writes and removes, and how many sealed segments it covers.
    /// Waits for a checkpoint still writing first.
    fn seal(&mut self) -> Result<(Checkpoint, usize), WalError> {
        if let Some(Err(e)) = self.finish_checkpoint() {
            tracing::warn!(error = %e, "the checkpoint before failed; this one covers its records too");
        }
        if (self.log_bytes > 0 || self.torn) && self.sealed.len() < MAX_SEALED_SEGMENTS {
            self.rotate()?;
        }
        let checkpoint = Checkpoint {
            dir: self.dir.clone(),
            disk: self.disk.clone(),
            last_record: self.next - 1,
            obsolete: self.sealed.iter().map(|s| s.path.clone()).collect(),
        };
        Ok((checkpoint, self.sealed.len()))
    }

    /// Renames the log to a sealed segment (`events.<next record>.jsonl`) and
    /// starts an empty one. If the new log cannot be created, the old one is
    /// renamed back; if even that fails, records go on to the segment's file,
    /// which a start replays in order all the same.
    fn rotate(&mut self) -> Result<(), WalError> {
        if self.torn {
            self.cut_back()?;
        }
        let segment = self.dir.join(segment_name(self.next));
        fs::rename(&self.log_path, &segment).map_err(io(format!("rename the event log to {}", segment.display())))?;
        let active = self.dir.join(LOG);
        let opened = self
            .disk
            .open_log(&active)
            .and_then(|log| sync_dir(&self.dir).map_err(io::Error::other).map(|()| log));
        match opened {
            Ok(log) => {
                self.sealed.push(Segment {
                    path: segment,
                    bytes: self.log_bytes,
                });
                self.log = log;
                self.log_path = active;
                self.log_bytes = 0;
                Ok(())
            }
            Err(e) => {
                if let Err(back) = fs::rename(&segment, &self.log_path) {
                    tracing::error!(error = %back, path = %segment.display(),
                        "cannot rename the event log back; it goes on in this file");
                    self.log_path = segment;
                }
                Err(io(format!("start a new event log {}", active.display()))(e))
            }
        }
    }
}

impl Drop for Wal {
    /// The data directory stays locked until its checkpoint is written.
    fn drop(&mut self) {
        if let Some(Err(e)) = self.finish_checkpoint() {
            tracing::warn!(error = %e, "the last checkpoint failed; the log keeps everything");
        }
    }
}

/// Lowers the calling thread's priority (nice 10): a checkpoint can wait,
/// while a scrape or a batch waiting for a CPU is latency someone sees. Under
/// full load it still gets about a tenth of a CPU, so snapshots keep coming.
fn yield_the_cpus() {
    // SAFETY: setpriority and gettid touch no memory; on Linux the nice value is the thread's.
    let tid = unsafe { libc::gettid() };
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) } != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "cannot lower the checkpoint thread's priority");
    }
}

/// A sealed segment's file name: its records are numbered below `next`.
fn segment_name(next: u64) -> String {
    format!("events.{next:020}.jsonl")
}

/// The `next` of a sealed segment's file name; `None` for any other file.
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("events.")?.strip_suffix(".jsonl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a data directory holds.
struct Recovered {
    store: Store,
    /// The number the next record gets.
    next: u64,
    /// The log's bytes that hold good records.
    log_bytes: u64,
    /// Sealed segments, oldest first, each with whether the snapshot holds all its records.
    sealed: Vec<(Segment, bool)>,
}

/// Reads `dir` back: the snapshot, then each sealed segment in order, then
/// the log at `log_path` (its first `log_limit` bytes, if given). A record
/// is replayed once, if newer than the snapshot and every record before it.
fn recover(dir: &Path, log_path: &Path, log_limit: Option<u64>, empty: Store) -> Result<Recovered, WalError> {
    let (mut store, last_record) = read_snapshot(dir, empty)?;
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format!("list {}", dir.display())))? {
        let entry = entry.map_err(io(format!("list {}", dir.display())))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(segment_number)
            && entry.path() != log_path
        {
            segments.push((n, entry.path()));
        }
    }
    segments.sort();
    let mut next = last_record + 1;
    let mut sealed = Vec::new();
    for (_, path) in segments {
        let text = fs::read(&path).map_err(io(format!("read {}", path.display())))?;
        let before = next;
        // A segment is sealed only after its last append synced, so it ends
        // whole, unless a crash hit while a failed rotation kept writing to it.
        (next, _) = replay(&path, &text, next, &mut store)?;
        let segment = Segment {
            path,
            bytes: text.len() as u64,
        };
        sealed.push((segment, next == before));
    }
    let mut text = fs::read(log_path).map_err(io(format!("read {}", log_path.display())))?;
    if let Some(limit) = log_limit {
        text.truncate(limit as usize);
    }
    let (next, good_bytes) = replay(log_path, &text, next, &mut store)?;
    Ok(Recovered {
        store,
        next,
        log_bytes: good_bytes as u64,
        sealed,
    })
}

/// The store in `dir`'s snapshot (`empty` when there is none yet) and the
/// number of the last record it includes.
fn read_snapshot(dir: &Path, empty: Store) -> Result<(Store, u64), WalError> {
    let path = dir.join(SNAPSHOT);
    match fs::read(&path) {
        Ok(bytes) => {
            let bad = |reason: String| WalError::Snapshot {
                path: path.clone(),
                reason,
            };
            let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            let store = file
                .store
                .into_store(empty.catalog().clone(), empty.limits())
                .map_err(bad)?;
            Ok((store, file.last_record))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((empty, 0)),
        Err(e) => Err(io(format!("read {}", path.display()))(e)),
    }
}

/// Replays complete records numbered `next` or higher, in order; returns the
/// number after the last one replayed and how many bytes of `text` hold good records.
fn replay(path: &Path, text: &[u8], mut next: u64, store: &mut Store) -> Result<(u64, usize), WalError> {
    let mut offset = 0;
    let mut line = 0;
    while offset < text.len() {
        line += 1;
        let at = Place { path, line };
        // No newline: the write of the last record was cut short.
        let Some(end) = text[offset..].iter().position(|&b| b == b'\n').map(|i| offset + i) else {
            return Ok((next, offset));
        };
        let record: Record = match serde_json::from_slice(&text[offset..end]) {
            Ok(r) => r,
            Err(e) if end + 1 == text.len() && e.is_eof() => return Ok((next, offset)),
            Err(e) => return Err(at.corrupt(e.to_string())),
        };
        if record.n >= next {
            next = record.n + 1;
            replay_record(&at, record, store)?;
        }
        offset = end + 1;
    }
    Ok((next, offset))
}

/// A line of the log, for errors.
struct Place<'a> {
    path: &'a Path,
    line: usize,
}

impl Place<'_> {
    fn corrupt(&self, reason: String) -> WalError {
        WalError::Corrupt {
            path: self.path.to_owned(),
            line: self.line,
            reason,
        }
    }

    /// A refusal by a cap says which setting was lowered; any other one is damage.
    fn refused(&self, e: ApplyError) -> WalError {
        let over = |what: String, setting, limit| WalError::OverLimit {
            path: self.path.to_owned(),
            line: self.line,
            what,
            setting,
            limit,
        };
        match e {
            ApplyError::TooManyMachines { limit, .. } => over("machines".into(), "max_machines", limit),
            ApplyError::TooManyLabelValues { label, limit, .. } => {
                over(format!("distinct values of label `{label}`"), "max_label_values", limit)
            }
            e => self.corrupt(format!("does not apply: {e}")),
        }
    }
}

fn replay_record(at: &Place, record: Record, store: &mut Store) -> Result<(), WalError> {
    if let Some((kind, machine)) = &record.illegal {
        store.count_illegal(kind, machine);
    }
    if !record.events.is_empty() {
        store.apply(&record.events, record.at).map_err(|e| at.refused(e))?;
    }
    Ok(())
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Removes a snapshot that was not finished (a failed write, a crash).
fn remove_tmp(dir: &Path) {
    let tmp = dir.join(format!("{SNAPSHOT}.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => tracing::warn!(path = %tmp.display(), "removed an unfinished snapshot"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(path = %tmp.display(), error = %e, "cannot remove an unfinished snapshot"),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("sync directory {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Action;
    use statescope_model::builtin;

    fn empty() -> Store {
        Store::new(Catalog::new(builtin::all()).unwrap(), Limits::default())
    }

    fn to(machine: &str, state: &str) -> Event {
        Event::new("circuit_breaker", machine, Action::Transition { to: state.into() })
    }

    #[test]
    fn logged_batches_and_snapshots_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, mut store) = Wal::open(dir.path().into(), empty()).unwrap();
            store.apply(&[to("a", "open")], 1.0).unwrap();
            wal.append(vec![Record::batch(1.0, vec![to("a", "open")])]).unwrap();
            wal.checkpoint(&Snapshot::of(&store)).unwrap();
            store.apply(&[to("a", "half_open")], 2.0).unwrap();
            wal.append(vec![Record::batch(2.0, vec![to("a", "half_open")])])
                .unwrap();
        }
        let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
        assert_eq!(store.state_name("circuit_breaker", "a"), Some("half_open"));
        assert_eq!(store.get("circuit_breaker", "a").unwrap().transitions.len(), 2);
    }

    proptest::proptest! {
        /// Exporter times (unix seconds, microsecond detail) come back
        /// bit for bit from the log and from the snapshot, so /metrics shows
        /// the same `since` before and after a restart.
        #[test]
        fn times_come_back_bit_for_bit(at in 1.0e9f64..4.0e9, snapshot: bool) {
            let dir = tempfile::tempdir().unwrap();
            {
                let (mut wal, mut store) = Wal::open(dir.path().into(), empty()).unwrap();
                store.apply(&[to("a", "open")], at).unwrap();
                wal.append(vec![Record::batch(at, vec![to("a", "open")])]).unwrap();
                if snapshot {
                    wal.checkpoint(&Snapshot::of(&store)).unwrap();
                }
            }
            let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
            let since = store.get("circuit_breaker", "a").unwrap().since;
            proptest::prop_assert_eq!(since.to_bits(), at.to_bits(), "{} came back as {}", at, since);
        }
    }

    #[test]
    fn records_already_in_the_snapshot_are_not_replayed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let call = Event::new(
            "circuit_breaker",
            "a",
            Action::Call {
                outcome: statescope_model::contract::CallOutcome::Success,
                failure_count: None,
            },
        );
        let log_copy;
        {
            let (mut wal, mut store) = Wal::open(dir.path().into(), empty()).unwrap();
            store.apply(std::slice::from_ref(&call), 1.0).unwrap();
            wal.append(vec![Record::batch(1.0, vec![call.clone()])]).unwrap();
            log_copy = fs::read(dir.path().join(LOG)).unwrap();
            wal.checkpoint(&Snapshot::of(&store)).unwrap();
        }
        // A crash after the snapshot's rename but before the log was emptied.
        fs::write(dir.path().join(LOG), log_copy).unwrap();
        let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
        assert_eq!(store.get("circuit_breaker", "a").unwrap().calls[0], 1);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_damage_elsewhere_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let good =
            r#"{"n":1,"at":1.0,"events":[{"kind":"circuit_breaker","machine":"a","type":"transition","to":"open"}]}"#;
        fs::write(dir.path().join(LOG), format!("{good}\n{{\"n\":2,\"at\":2.0,\"ev")).unwrap();
        let (_wal, store) = Wal::open(dir.path().into(), empty()).unwrap();
        assert_eq!(store.state_name("circuit_breaker", "a"), Some("open"));
        assert_eq!(fs::read_to_string(dir.path().join(LOG)).unwrap(), format!("{good}\n"));
        drop(_wal);
        fs::write(dir.path().join(LOG), format!("garbage\n{good}\n")).unwrap();
        let err = Wal::open(dir.path().into(), empty()).err().unwrap();
        assert!(err.to_string().contains("events.jsonl:1: damaged"), "{err}");
    }

    #[test]
    fn a_lowered_limit_under_the_logged_data_is_named_not_called_damage() {
        let limited = |max_machines, max_label_values| {
            let limits = Limits {
                max_machines,
                max_label_values,
            };
            Store::new(Catalog::new(builtin::all()).unwrap(), limits)
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, mut store) = Wal::open(dir.path().into(), limited(10, 10)).unwrap();
            for m in ["a", "b", "c"] {
                let e = to(m, "open").with_labels(&[("provider", m)]);
                store.apply(std::slice::from_ref(&e), 1.0).unwrap();
                wal.append(vec![Record::batch(1.0, vec![e])]).unwrap();
            }
        }
        let err = Wal::open(dir.path().into(), limited(2, 10)).err().unwrap();
        assert!(matches!(err, WalError::OverLimit { line: 3, .. }), "{err}");
        let text = err.to_string();
        assert!(!text.contains("damaged"), "{text}");
        assert!(
            text.contains(
                "events.jsonl:3: the data directory holds more machines than `[limits] max_machines = 2` allows"
            ),
            "{text}"
        );
        assert!(text.contains("Raise `max_machines`"), "{text}");
        let err = Wal::open(dir.path().into(), limited(10, 1)).err().unwrap();
        assert!(
            err.to_string()
                .contains("more distinct values of label `provider` than `[limits] max_label_values = 1` allows"),
            "{err}"
        );
        // With the limit back, everything is there.
        let (_wal, store) = Wal::open(dir.path().into(), limited(3, 3)).unwrap();
        assert_eq!(store.machines().len(), 3);
    }

    #[test]
    fn a_snapshot_with_an_infinite_job_sum_still_loads() {
        // Written before job durations were bounded: +Inf was saved as null.
        let text = r#"{"machines":[],"recent_ids":[],"jobs":[["worker","",{
            "duration":{"buckets":[0,0,0,0,0,0,0,0,0,0,0,0,2],"sum":null,"count":2},
            "queue_wait":{"buckets":[],"sum":0.0,"count":0}}]]}"#;
        let snapshot: Snapshot = serde_json::from_str(text).unwrap();
        let back = snapshot
            .into_store(empty().catalog().clone(), Limits::default())
            .unwrap();
        assert_eq!(
            back.job_histograms()[&("worker".into(), String::new())].duration.sum,
            f64::INFINITY
        );
    }

    #[test]
    fn a_snapshot_restores_the_same_store() {
        let mut s = empty();
        let mut job = Event::new(
            "worker",
            "w",
            Action::Job {
                result: JobResult::Failed,
                duration_seconds: 3.0,
                queue_seconds: Some(0.2),
            },
        )
        .with_labels(&[("worker_type", "gpu")]);
        job.id = Some("j1".into());
        s.apply(&[to("a", "open"), to("a", "half_open"), job], 5.0).unwrap();
        // What a checkpoint clones under the lock makes the same snapshot off it.
        assert_eq!(StoreCopy::of(&s).snapshot(), Snapshot::of(&s));
        let text = serde_json::to_string(&Snapshot::of(&s)).unwrap();
        let snapshot: Snapshot = serde_json::from_str(&text).unwrap();
        let back = snapshot.into_store(s.catalog().clone(), Limits::default()).unwrap();
        assert_eq!(back.machines(), s.machines());
        assert_eq!(back.job_histograms(), s.job_histograms());
        assert!(back.recent_ids().any(|id| &**id == "j1"));
        let worker_only = Catalog::new(vec![builtin::worker()]).unwrap();
        let err = Snapshot::of(&s).into_store(worker_only, Limits::default()).unwrap_err();
        assert!(err.contains("no longer defines"), "{err}");
    }

    #[test]
    fn a_second_exporter_cannot_open_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Wal::open(dir.path().into(), empty()).unwrap();
        assert!(matches!(
            Wal::open(dir.path().into(), empty()),
            Err(WalError::Locked(_))
        ));
    }
}
