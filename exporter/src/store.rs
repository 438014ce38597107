//! Every machine's state and counters, and the rules that change them.
//!
//! The store is plain data with no I/O and no clock: [`Store::apply`] takes
//! the time as an argument, so replaying the write-ahead log after a restart
//! (see [`crate::ingest`]) rebuilds exactly the state the acknowledged
//! requests produced.
//!
//! A batch is applied all or nothing: if any event in it is refused, none is
//! applied, so a client can fix and resend the whole request without
//! double-counting the part that would otherwise have gone through.
//!
//! A reported transition is a fact: a move the machine's kind does not expect
//! is applied and counted as unexpected ([`Applied::Unexpected`]), unless the
//! catalog makes its kind strict, which refuses it ([`ApplyError::Illegal`]).
//! `seq` orders one machine's reports: a report older than the newest applied
//! one is not applied, so out-of-order delivery cannot leave a stale state
//! ([`Applied::Stale`]).

mod labels;
mod transitions;
pub use labels::{Labels, push_label};
pub use transitions::Transitions;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use statescope_model::contract::{self as c, CallOutcome, DEFAULT_IDENTITY_LABELS, JobResult, MAX_IDENTITY_LABELS};
use statescope_model::{Kind, StateId};
use thiserror::Error;

use crate::events::{Action, Event};

/// Event ids remembered for de-duplication (retries come within seconds; this
/// bounds the memory the window takes whatever the clients send).
pub const RECENT_IDS: usize = 100_000;

/// Bucket bounds (seconds) of the job duration and queue wait histograms:
/// from sub-second tasks to hour-long training runs.
pub const JOB_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// Caps that keep memory and series bounded whatever clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Machines over all kinds.
    pub max_machines: usize,
    /// Distinct values of each identity label (`provider`, `key_id`, ...).
    pub max_label_values: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_machines: 50_000,
            max_label_values: 10_000,
        }
    }
}

/// The kinds this exporter knows (the built-ins plus those of the config
/// file), the identity labels machines may carry, and which kinds refuse
/// unexpected transitions.
#[derive(Clone, Debug)]
pub struct Catalog {
    kinds: Vec<Kind>,
    identity_labels: Vec<String>,
    /// Kinds whose unexpected transitions are refused (409) instead of applied.
    strict: HashSet<String>,
}

impl Catalog {
    /// Fails on two kinds with the same name (a config redefining a built-in).
    /// Identity labels are the default ones and no kind is strict.
    pub fn new(kinds: Vec<Kind>) -> Result<Catalog, String> {
        let mut seen = HashSet::new();
        for kind in &kinds {
            if !seen.insert(kind.name()) {
                return Err(format!("kind {:?} is defined twice", kind.name()));
            }
        }
        Ok(Catalog {
            kinds,
            identity_labels: DEFAULT_IDENTITY_LABELS.iter().map(|l| (*l).to_owned()).collect(),
            strict: HashSet::new(),
        })
    }

    /// Replaces the identity label names. Fails on more than
    /// [`MAX_IDENTITY_LABELS`], a name that is not a Prometheus label name, a
    /// name the exporter uses itself (`kind`, `machine`, ...), or a repeat.
    pub fn with_identity_labels(mut self, names: Vec<String>) -> Result<Catalog, String> {
        if names.len() > MAX_IDENTITY_LABELS {
            return Err(format!(
                "identity_labels names {} labels; at most {MAX_IDENTITY_LABELS} are allowed (each is a label on every machine series)",
                names.len()
            ));
        }
        let reserved = [
            c::LABEL_KIND,
            c::LABEL_MACHINE,
            c::LABEL_STATE,
            c::LABEL_FROM,
            c::LABEL_TO,
            c::LABEL_FLOW,
            c::LABEL_OUTCOME,
            c::LABEL_RESULT,
            "le",
            "job",
            "instance",
        ];
        for (i, name) in names.iter().enumerate() {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !name.starts_with("__")
                && name.len() <= 64;
            if !valid {
                return Err(format!(
                    "identity label {name:?} is not a label name (a-z, 0-9, _; not starting with a digit or __)"
                ));
            }
            if reserved.contains(&name.as_str()) {
                return Err(format!(
                    "identity label {name:?} is a label Statescope or Prometheus sets itself"
                ));
            }
            if names[..i].contains(name) {
                return Err(format!("identity label {name:?} is listed twice"));
            }
        }
        self.identity_labels = names;
        Ok(self)
    }

    /// Makes these kinds refuse transitions they do not expect. Fails on a kind
    /// the catalog does not have.
    pub fn with_strict(mut self, kinds: impl IntoIterator<Item = String>) -> Result<Catalog, String> {
        for kind in kinds {
            if self.get(&kind).is_none() {
                return Err(format!("strict_transitions names kind {kind:?}, which is not defined"));
            }
            self.strict.insert(kind);
        }
        Ok(self)
    }

    /// The label names a reporter may attach to a machine.
    pub fn identity_labels(&self) -> &[String] {
        &self.identity_labels
    }

    /// Whether `kind` refuses transitions it does not expect.
    pub fn is_strict(&self, kind: &str) -> bool {
        self.strict.contains(kind)
    }

    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.kinds.iter().find(|k| k.name() == name)
    }

    pub fn all(&self) -> &[Kind] {
        &self.kinds
    }

    pub fn names(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.name().to_owned()).collect()
    }
}

/// A machine is known by its kind and its id within that kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MachineKey {
    pub kind: String,
    pub machine: String,
}

/// One machine's state and the counters the exporter keeps for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub state: StateId,
    /// Unix seconds the current state was entered.
    pub since: f64,
    /// Unix seconds of the first event.
    pub created: f64,
    /// Highest `seq` applied: an event with this seq is a retry, one below it
    /// is stale (a newer report was applied first).
    pub last_seq: Option<u64>,
    /// Transitions taken, by `(from, to)`; only pairs taken at least once.
    pub transitions: Transitions,
    /// Reported or observed transitions the kind does not expect, applied or
    /// (for strict kinds) refused.
    pub unexpected: u64,
    /// Calls by [`CallOutcome`], in [`CallOutcome::ALL`] order.
    pub calls: [u64; CallOutcome::ALL.len()],
    pub failures: u64,
    /// Jobs by [`JobResult`], in [`JobResult::ALL`] order.
    pub jobs: [u64; JobResult::ALL.len()],
    pub last_heartbeat: Option<f64>,
    /// Unix seconds until which the last successful poll vouches for the
    /// machine (see [`Action::Polled`]): heartbeat expiry leaves it alone
    /// until then, whatever the TTL.
    pub alive_until: Option<f64>,
    /// Identity labels.
    pub labels: Labels,
}

impl Machine {
    fn new(kind: &Kind, now: f64) -> Machine {
        Machine {
            state: kind.initial(),
            since: now,
            created: now,
            last_seq: None,
            transitions: Transitions::default(),
            unexpected: 0,
            calls: [0; CallOutcome::ALL.len()],
            failures: 0,
            jobs: [0; JobResult::ALL.len()],
            last_heartbeat: None,
            alive_until: None,
            labels: Labels::default(),
        }
    }

    pub fn has_calls(&self) -> bool {
        self.calls.iter().any(|&c| c > 0)
    }

    pub fn has_jobs(&self) -> bool {
        self.jobs.iter().any(|&c| c > 0)
    }
}

/// A fixed-bucket histogram (cumulative counts are computed when encoding).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations per bucket of [`JOB_BUCKETS`], plus one for +Inf.
    pub buckets: Vec<u64>,
    /// Bounded observations ([`crate::events::MAX_JOB_SECONDS`]) keep it
    /// finite. Snapshots written before the bound may hold `null` here (JSON
    /// has no +Inf): it reads back as +Inf, so such a data directory starts.
    #[serde(deserialize_with = "sum_or_infinity")]
    pub sum: f64,
    pub count: u64,
}

fn sum_or_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; JOB_BUCKETS.len() + 1];
        }
        let i = JOB_BUCKETS
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(JOB_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += value;
        self.count += 1;
    }
}

/// Job histograms of one kind and `worker_type` (per type, not per machine, to bound series).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobHistograms {
    pub duration: Histogram,
    pub queue_wait: Histogram,
}

/// What became of one event of an applied batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Changed the machine.
    Applied,
    /// A retry (seq or id seen before): nothing changed.
    Duplicate,
    /// A transition to the state the machine is already in: nothing changed.
    Unchanged,
    /// A transition the machine's kind does not expect: applied, and counted
    /// as unexpected.
    Unexpected { from: String, to: String },
    /// Its `seq` is below the newest one applied to its machine: a newer
    /// report arrived first, so this older one changes nothing.
    Stale { seq: u64, last_seq: u64 },
}

/// Why a batch was refused. `index` is the event's position in the request.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ApplyError {
    #[error("event {index}: unknown kind {kind:?}; known kinds: {known:?}")]
    UnknownKind {
        index: usize,
        kind: String,
        known: Vec<String>,
    },
    #[error("event {index}: kind {kind:?} has no state {state:?}; its states: {states:?}")]
    UnknownState {
        index: usize,
        kind: String,
        state: String,
        states: Vec<String>,
    },
    #[error("{0}")]
    Illegal(Box<Illegal>),
    #[error("event {index}: machine limit reached ({limit} machines); {kind} {machine:?} was not created")]
    TooManyMachines {
        index: usize,
        kind: String,
        machine: String,
        limit: usize,
    },
    #[error("event {index}: label {label:?} already has {limit} distinct values; value {value:?} was refused")]
    TooManyLabelValues {
        index: usize,
        label: String,
        value: String,
        limit: usize,
    },
}

/// A transition the machine's kind does not allow from its current state.
#[derive(Clone, Debug, PartialEq, Error)]
#[error(
    "event {index}: {kind} {machine:?} may not go {from} -> {to}: its kind is strict (strict_transitions) and does not expect that move; from {from} it may go to {allowed:?}"
)]
pub struct Illegal {
    pub index: usize,
    pub kind: String,
    pub machine: String,
    pub from: String,
    pub to: String,
    pub allowed: Vec<String>,
}

impl ApplyError {
    pub fn index(&self) -> usize {
        match self {
            ApplyError::UnknownKind { index, .. }
            | ApplyError::UnknownState { index, .. }
            | ApplyError::TooManyMachines { index, .. }
            | ApplyError::TooManyLabelValues { index, .. } => *index,
            ApplyError::Illegal(i) => i.index,
        }
    }
}

/// All machines, and what de-duplication and the cardinality caps remember.
#[derive(Clone, Debug)]
pub struct Store {
    catalog: Catalog,
    limits: Limits,
    machines: BTreeMap<MachineKey, Machine>,
    label_values: HashMap<String, HashSet<String>>,
    /// Ids shared by the queue and the set, so that each is kept once and a
    /// checkpoint's copy of 100k of them is reference counts, not allocations.
    recent_ids: VecDeque<Arc<str>>,
    recent_set: HashSet<Arc<str>>,
    jobs: BTreeMap<(String, String), JobHistograms>,
}

/// Changes of a batch not yet committed: machines copied on first touch.
struct Scratch {
    machines: HashMap<MachineKey, Machine>,
    new_machines: usize,
    new_label_values: HashMap<String, HashSet<String>>,
    new_ids: HashSet<String>,
    jobs: Vec<JobObservation>,
}

/// A job's kind, `worker_type`, duration and queue wait, for the histograms.
type JobObservation = (String, String, f64, Option<f64>);

impl Store {
    pub fn new(catalog: Catalog, limits: Limits) -> Store {
        Store {
            catalog,
            limits,
            machines: BTreeMap::new(),
            label_values: HashMap::new(),
            recent_ids: VecDeque::new(),
            recent_set: HashSet::new(),
            jobs: BTreeMap::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn machines(&self) -> &BTreeMap<MachineKey, Machine> {
        &self.machines
    }

    pub fn job_histograms(&self) -> &BTreeMap<(String, String), JobHistograms> {
        &self.jobs
    }

    pub fn get(&self, kind: &str, machine: &str) -> Option<&Machine> {
        self.machines.get(&MachineKey {
            kind: kind.to_owned(),
            machine: machine.to_owned(),
        })
    }

    /// Name of a machine's current state.
    pub fn state_name(&self, kind: &str, machine: &str) -> Option<&str> {
        let m = self.get(kind, machine)?;
        Some(self.catalog.get(kind)?.state_name(m.state))
    }

    /// Applies a batch at time `now` (unix seconds), all or nothing.
    pub fn apply(&mut self, events: &[Event], now: f64) -> Result<Vec<Applied>, ApplyError> {
        let mut scratch = Scratch {
            machines: HashMap::new(),
            new_machines: 0,
            new_label_values: HashMap::new(),
            new_ids: HashSet::new(),
            jobs: Vec::new(),
        };
        let mut results = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            results.push(self.apply_one(&mut scratch, index, event, now)?);
        }
        self.commit(scratch);
        Ok(results)
    }

    /// Counts an unexpected transition a strict kind refused on an existing
    /// machine (the batch it came in was not applied, but the attempt is worth
    /// seeing).
    pub fn count_illegal(&mut self, kind: &str, machine: &str) -> bool {
        let key = MachineKey {
            kind: kind.to_owned(),
            machine: machine.to_owned(),
        };
        match self.machines.get_mut(&key) {
            Some(m) => {
                m.unexpected += 1;
                true
            }
            None => false,
        }
    }

    /// At time `now`, machines of kinds with a heartbeat-lost state, not in
    /// it, whose last heartbeat (or creation, if they never sent one) is more
    /// than `ttl` seconds old, and whom no poll vouches for any longer. A
    /// successful poll counts as a heartbeat ([`Action::Polled`]); the
    /// [`Action::Observe`] events returned here do not.
    pub fn heartbeat_expired(&self, now: f64, ttl: f64) -> Vec<Event> {
        let cutoff = now - ttl;
        let mut out = Vec::new();
        for (key, m) in &self.machines {
            let Some(kind) = self.catalog.get(&key.kind) else {
                continue;
            };
            let Some(lost) = kind.heartbeat_lost_state() else {
                continue;
            };
            if m.state != lost
                && m.last_heartbeat.unwrap_or(m.created) < cutoff
                && m.alive_until.is_none_or(|until| until < now)
            {
                out.push(Event::new(
                    &key.kind,
                    &key.machine,
                    Action::Observe {
                        state: kind.state_name(lost).to_owned(),
                    },
                ));
            }
        }
        out
    }

    /// One event of a batch, into `scratch`: its kind, a retry by id, the
    /// machine (created if new, within the caps), a retry or stale report by
    /// seq, then what the event says.
    fn apply_one(&self, scratch: &mut Scratch, index: usize, event: &Event, now: f64) -> Result<Applied, ApplyError> {
        let kind = self.catalog.get(&event.kind).ok_or_else(|| ApplyError::UnknownKind {
            index,
            kind: event.kind.clone(),
            known: self.catalog.names(),
        })?;
        if let Some(id) = &event.id
            && (self.recent_set.contains(id.as_str()) || scratch.new_ids.contains(id))
        {
            return Ok(Applied::Duplicate);
        }
        let key = MachineKey {
            kind: event.kind.clone(),
            machine: event.machine.clone(),
        };
        let created = self.touch(scratch, index, &key, kind, now)?;
        if created {
            self.count_label_values(scratch, index, &event.labels)?;
        }
        let machine = scratch.machines.get_mut(&key).expect("touched above");
        if let Some(retry) = retry_by_seq(event.seq, machine.last_seq) {
            return Ok(retry);
        }
        let change = Change {
            kind,
            event,
            index,
            now,
            created,
            strict: self.catalog.is_strict(&event.kind),
        };
        let result = change.apply(machine, &mut scratch.jobs)?;
        change.remember(machine, &mut scratch.new_ids);
        Ok(result)
    }

    /// Copies the machine into `scratch` on its first touch in the batch, or
    /// creates it if the machine cap allows; whether it was created.
    fn touch(
        &self,
        scratch: &mut Scratch,
        index: usize,
        key: &MachineKey,
        kind: &Kind,
        now: f64,
    ) -> Result<bool, ApplyError> {
        if scratch.machines.contains_key(key) {
            return Ok(false);
        }
        let (machine, created) = match self.machines.get(key) {
            Some(m) => (m.clone(), false),
            None if self.machines.len() + scratch.new_machines >= self.limits.max_machines => {
                return Err(ApplyError::TooManyMachines {
                    index,
                    kind: key.kind.clone(),
                    machine: key.machine.clone(),
                    limit: self.limits.max_machines,
                });
            }
            None => {
                scratch.new_machines += 1;
                (Machine::new(kind, now), true)
            }
        };
        scratch.machines.insert(key.clone(), machine);
        Ok(created)
    }

    /// Identity labels are those of the event that creates the machine (see
    /// `DEFAULT_IDENTITY_LABELS`), so only then do their values count against
    /// the cap. Checked before the machine is touched, so a refused event
    /// changes nothing.
    fn count_label_values(
        &self,
        scratch: &mut Scratch,
        index: usize,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ApplyError> {
        for (label, value) in labels {
            let known = self.label_values.get(label);
            if known.is_some_and(|v| v.contains(value)) {
                continue;
            }
            let fresh = scratch.new_label_values.entry(label.clone()).or_default();
            if !fresh.contains(value) {
                if known.map_or(0, HashSet::len) + fresh.len() >= self.limits.max_label_values {
                    return Err(ApplyError::TooManyLabelValues {
                        index,
                        label: label.clone(),
                        value: value.clone(),
                        limit: self.limits.max_label_values,
                    });
                }
                fresh.insert(value.clone());
            }
        }
        Ok(())
    }

    fn commit(&mut self, scratch: Scratch) {
        self.machines.extend(scratch.machines);
        for (label, values) in scratch.new_label_values {
            self.label_values.entry(label).or_default().extend(values);
        }
        for id in scratch.new_ids {
            self.remember_id(id.into());
        }
        for (kind, worker_type, duration, queue) in scratch.jobs {
            let h = self.jobs.entry((kind, worker_type)).or_default();
            h.duration.observe(duration);
            if let Some(q) = queue {
                h.queue_wait.observe(q);
            }
        }
    }

    fn remember_id(&mut self, id: Arc<str>) {
        if self.recent_set.insert(id.clone()) {
            self.recent_ids.push_back(id);
            while self.recent_ids.len() > RECENT_IDS {
                if let Some(old) = self.recent_ids.pop_front() {
                    self.recent_set.remove(&old);
                }
            }
        }
    }

    /// Event ids remembered for de-duplication, oldest first.
    pub fn recent_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.recent_ids.iter()
    }

    /// A store holding these machines, remembered ids and job histograms
    /// (what a snapshot saved), with the label values they use counted
    /// against the caps.
    pub fn from_parts(
        catalog: Catalog,
        limits: Limits,
        machines: BTreeMap<MachineKey, Machine>,
        recent_ids: Vec<String>,
        jobs: BTreeMap<(String, String), JobHistograms>,
    ) -> Store {
        let mut store = Store::new(catalog, limits);
        for (label, value) in machines.values().flat_map(|m| m.labels.iter()) {
            store
                .label_values
                .entry(label.to_owned())
                .or_default()
                .insert(value.into_owned());
        }
        store.machines = machines;
        for id in recent_ids {
            store.remember_id(id.into());
        }
        store.jobs = jobs;
        store
    }
}

fn enter(machine: &mut Machine, to: StateId, now: f64) {
    machine.transitions.count((machine.state, to));
    machine.state = to;
    machine.since = now;
}

/// A state seen from outside (a poll, heartbeat expiry): taken even when the
/// kind does not expect the move, which is then counted as unexpected.
fn observe(machine: &mut Machine, kind: &Kind, to: StateId, now: f64) -> Applied {
    if to == machine.state {
        return Applied::Unchanged;
    }
    if !kind.is_allowed(machine.state, to) {
        machine.unexpected += 1;
    }
    enter(machine, to, now);
    Applied::Applied
}

/// A seq equal to the newest applied one is a retry; a lower one is stale.
fn retry_by_seq(seq: Option<u64>, last_seq: Option<u64>) -> Option<Applied> {
    let (seq, last_seq) = (seq?, last_seq?);
    match seq.cmp(&last_seq) {
        std::cmp::Ordering::Equal => Some(Applied::Duplicate),
        std::cmp::Ordering::Less => Some(Applied::Stale { seq, last_seq }),
        std::cmp::Ordering::Greater => None,
    }
}

/// What one event does to its machine.
struct Change<'a> {
    kind: &'a Kind,
    event: &'a Event,
    /// The event's position in its batch (errors name it).
    index: usize,
    now: f64,
    /// The event creates its machine.
    created: bool,
    /// The kind refuses transitions it does not expect.
    strict: bool,
}

impl Change<'_> {
    fn apply(&self, machine: &mut Machine, jobs: &mut Vec<JobObservation>) -> Result<Applied, ApplyError> {
        Ok(match &self.event.action {
            Action::Transition { to } => self.transition(machine, self.state(to)?)?,
            Action::Observe { state } => observe(machine, self.kind, self.state(state)?, self.now),
            Action::Polled { state, alive_seconds } => self.polled(machine, self.state(state)?, *alive_seconds),
            Action::Call { outcome, failure_count } => {
                count_call(machine, *outcome, *failure_count);
                Applied::Applied
            }
            Action::Heartbeat => {
                machine.last_heartbeat = Some(self.now);
                Applied::Applied
            }
            Action::Job {
                result,
                duration_seconds,
                queue_seconds,
            } => {
                let i = JobResult::ALL
                    .iter()
                    .position(|r| r == result)
                    .expect("ALL lists every result");
                machine.jobs[i] += 1;
                jobs.push(self.job_observation(machine, *duration_seconds, *queue_seconds));
                Applied::Applied
            }
        })
    }

    fn state(&self, name: &str) -> Result<StateId, ApplyError> {
        self.kind.state_id(name).ok_or_else(|| ApplyError::UnknownState {
            index: self.index,
            kind: self.event.kind.clone(),
            state: name.to_owned(),
            states: self.kind.states().iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// A reported transition is a fact: applied even when the kind does not
    /// expect it (counted as unexpected), unless the kind is strict.
    fn transition(&self, machine: &mut Machine, to: StateId) -> Result<Applied, ApplyError> {
        let (kind, from) = (self.kind, machine.state);
        if to == from {
            return Ok(Applied::Unchanged);
        }
        if kind.is_allowed(from, to) {
            enter(machine, to, self.now);
            return Ok(Applied::Applied);
        }
        if self.created {
            // First seen in a state its kind cannot reach from the initial
            // one: where it came from is unknown, so it is created in `to`
            // without a transition.
            machine.state = to;
            return Ok(Applied::Applied);
        }
        if self.strict {
            return Err(ApplyError::Illegal(Box::new(Illegal {
                index: self.index,
                kind: self.event.kind.clone(),
                machine: self.event.machine.clone(),
                from: kind.state_name(from).to_owned(),
                to: kind.state_name(to).to_owned(),
                allowed: kind.next_states(from).map(|s| kind.state_name(s).to_owned()).collect(),
            })));
        }
        machine.unexpected += 1;
        enter(machine, to, self.now);
        Ok(Applied::Unexpected {
            from: kind.state_name(from).to_owned(),
            to: kind.state_name(to).to_owned(),
        })
    }

    /// A successful poll: the state seen, and proof of life until the next is due.
    fn polled(&self, machine: &mut Machine, to: StateId, alive_seconds: f64) -> Applied {
        let result = if self.created {
            // First seen: it is in `state` already; no move was seen.
            machine.state = to;
            Applied::Applied
        } else {
            observe(machine, self.kind, to, self.now)
        };
        machine.last_heartbeat = Some(self.now);
        let until = self.now + alive_seconds;
        machine.alive_until = Some(machine.alive_until.map_or(until, |u| u.max(until)));
        result
    }

    /// A job's times go to the histograms of its kind and `worker_type`
    /// (the event's label, else the machine's).
    fn job_observation(&self, machine: &Machine, duration: f64, queue: Option<f64>) -> JobObservation {
        let worker_type = match self.event.labels.get(c::LABEL_WORKER_TYPE) {
            Some(t) => t.clone(),
            None => machine
                .labels
                .get(c::LABEL_WORKER_TYPE)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
        };
        (self.event.kind.clone(), worker_type, duration, queue)
    }

    /// What later events are checked against: the creating event's labels,
    /// the newest seq, the id.
    fn remember(&self, machine: &mut Machine, ids: &mut HashSet<String>) {
        if self.created {
            machine.labels = Labels::from(&self.event.labels);
        }
        if let Some(seq) = self.event.seq {
            machine.last_seq = Some(seq);
        }
        if let Some(id) = &self.event.id {
            ids.insert(id.clone());
        }
    }
}

/// A call: counted by outcome, and the failure count follows the reporter's
/// or, without one, counts consecutive failures.
fn count_call(machine: &mut Machine, outcome: CallOutcome, failure_count: Option<u64>) {
    let i = CallOutcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .expect("ALL lists every outcome");
    machine.calls[i] += 1;
    machine.failures = match (failure_count, outcome) {
        (Some(n), _) => n,
        (None, CallOutcome::Success) => 0,
        (None, o) if o.is_failure() => machine.failures + 1,
        (None, _) => machine.failures,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use statescope_model::builtin;

    fn store() -> Store {
        Store::new(Catalog::new(builtin::all()).unwrap(), Limits::default())
    }

    fn to(machine: &str, state: &str) -> Event {
        Event::new("circuit_breaker", machine, Action::Transition { to: state.into() })
    }

    #[test]
    fn a_new_machine_starts_in_the_initial_state_and_moves_along_allowed_transitions() {
        let mut s = store();
        assert_eq!(s.apply(&[to("a", "open")], 10.0).unwrap(), [Applied::Applied]);
        assert_eq!(s.state_name("circuit_breaker", "a"), Some("open"));
        let m = s.get("circuit_breaker", "a").unwrap();
        assert_eq!((m.since, m.created), (10.0, 10.0));
        let kind = builtin::circuit_breaker();
        let (closed, open) = (kind.state_id("closed").unwrap(), kind.state_id("open").unwrap());
        assert_eq!(m.transitions.get((closed, open)), 1);
    }

    fn worker_to(machine: &str, state: &str) -> Event {
        Event::new("worker", machine, Action::Transition { to: state.into() })
    }

    #[test]
    fn an_unexpected_transition_is_applied_counted_and_reported() {
        let mut s = store();
        s.apply(&[worker_to("w", "idle")], 1.0).unwrap();
        // idle -> starting is in neither the worker's flow nor a manual move.
        let applied = s.apply(&[worker_to("w", "starting")], 2.0).unwrap();
        assert_eq!(
            applied,
            [Applied::Unexpected {
                from: "idle".into(),
                to: "starting".into()
            }]
        );
        let w = s.get("worker", "w").unwrap();
        assert_eq!(
            (s.state_name("worker", "w"), w.unexpected, w.since),
            (Some("starting"), 1, 2.0)
        );
        // A manual move (pybreaker's close() on an open breaker) is expected.
        s.apply(&[to("a", "open")], 3.0).unwrap();
        assert_eq!(s.apply(&[to("a", "closed")], 4.0).unwrap(), [Applied::Applied]);
        assert_eq!(s.get("circuit_breaker", "a").unwrap().unexpected, 0);
    }

    #[test]
    fn a_strict_kind_refuses_an_unexpected_transition_naming_the_machine_its_state_and_the_allowed_ones() {
        let catalog = Catalog::new(builtin::all())
            .unwrap()
            .with_strict(["worker".to_owned()])
            .unwrap();
        let mut s = Store::new(catalog, Limits::default());
        s.apply(&[worker_to("w", "idle")], 1.0).unwrap();
        let err = s.apply(&[worker_to("w", "starting")], 2.0).unwrap_err();
        assert_eq!(
            err,
            ApplyError::Illegal(Box::new(Illegal {
                index: 0,
                kind: "worker".into(),
                machine: "w".into(),
                from: "idle".into(),
                to: "starting".into(),
                allowed: vec!["busy".into(), "draining".into(), "offline".into()],
            }))
        );
        assert_eq!(s.state_name("worker", "w"), Some("idle"));
        // Breakers are not strict: their moves still apply.
        s.apply(&[to("a", "open"), to("a", "closed")], 3.0).unwrap();
    }

    #[test]
    fn a_first_transition_the_initial_state_cannot_make_creates_the_machine_in_that_state() {
        let mut s = store();
        assert_eq!(s.apply(&[worker_to("w", "busy")], 5.0).unwrap(), [Applied::Applied]);
        let w = s.get("worker", "w").unwrap();
        assert_eq!(s.state_name("worker", "w"), Some("busy"));
        assert!(
            w.transitions.is_empty(),
            "where it came from is unknown: {:?}",
            w.transitions
        );
        assert_eq!(w.unexpected, 0);
        // One its initial state can make is a transition, counted.
        s.apply(&[worker_to("v", "idle")], 5.0).unwrap();
        assert_eq!(s.get("worker", "v").unwrap().transitions.total(), 1);
    }

    #[test]
    fn seq_orders_reports_an_older_one_is_stale_and_changes_nothing() {
        let mut s = store();
        let at = |state: &str, seq| {
            let mut e = to("a", state);
            e.seq = Some(seq);
            e
        };
        s.apply(&[at("open", 1), at("half_open", 3)], 1.0).unwrap();
        assert_eq!(
            s.apply(&[at("open", 2)], 2.0).unwrap(),
            [Applied::Stale { seq: 2, last_seq: 3 }]
        );
        assert_eq!(s.apply(&[at("half_open", 3)], 2.0).unwrap(), [Applied::Duplicate]);
        assert_eq!(s.state_name("circuit_breaker", "a"), Some("half_open"));
    }

    #[test]
    fn labels_are_fixed_by_the_event_that_creates_the_machine() {
        let mut s = store();
        let call = Event::new(
            "circuit_breaker",
            "a",
            Action::Call {
                outcome: CallOutcome::Success,
                failure_count: None,
            },
        );
        s.apply(std::slice::from_ref(&call), 1.0).unwrap();
        s.apply(&[call.with_labels(&[("provider", "openai")])], 2.0).unwrap();
        assert!(s.get("circuit_breaker", "a").unwrap().labels.is_empty());
        let beat = |p: &str| Event::new("worker", "w", Action::Heartbeat).with_labels(&[("worker_type", p)]);
        s.apply(&[beat("gpu")], 1.0).unwrap();
        s.apply(&[beat("cpu")], 2.0).unwrap();
        assert_eq!(
            s.get("worker", "w").unwrap().labels.get("worker_type").as_deref(),
            Some("gpu")
        );
    }

    #[test]
    fn a_refused_batch_changes_nothing() {
        let mut s = store();
        let batch = [
            to("a", "open"),
            Event::new(
                "circuit_breaker",
                "b",
                Action::Call {
                    outcome: CallOutcome::Failure,
                    failure_count: None,
                },
            ),
            to("a", "ajar"),
        ];
        let err = s.apply(&batch, 1.0).unwrap_err();
        assert_eq!(err.index(), 2);
        assert!(s.machines().is_empty(), "nothing of a refused batch may stay");
    }

    #[test]
    fn retries_by_seq_and_by_id_are_not_counted_twice() {
        let mut s = store();
        let mut e = Event::new(
            "circuit_breaker",
            "a",
            Action::Call {
                outcome: CallOutcome::Failure,
                failure_count: None,
            },
        );
        e.seq = Some(5);
        assert_eq!(s.apply(std::slice::from_ref(&e), 1.0).unwrap(), [Applied::Applied]);
        assert_eq!(s.apply(std::slice::from_ref(&e), 2.0).unwrap(), [Applied::Duplicate]);
        e.seq = None;
        e.id = Some("abc".into());
        assert_eq!(
            s.apply(&[e.clone(), e.clone()], 3.0).unwrap(),
            [Applied::Applied, Applied::Duplicate]
        );
        assert_eq!(s.get("circuit_breaker", "a").unwrap().calls[1], 2);
    }

    #[test]
    fn unknown_kinds_and_states_are_refused_with_what_is_known() {
        let mut s = store();
        let err = s
            .apply(&[Event::new("toaster", "t", Action::Heartbeat)], 1.0)
            .unwrap_err();
        assert!(matches!(err, ApplyError::UnknownKind { ref known, .. } if known.contains(&"worker".to_string())));
        let err = s.apply(&[to("a", "ajar")], 1.0).unwrap_err();
        assert!(err.to_string().contains("no state \"ajar\""), "{err}");
    }

    #[test]
    fn the_machine_cap_and_label_value_cap_refuse_new_ones_only() {
        let mut s = Store::new(
            Catalog::new(builtin::all()).unwrap(),
            Limits {
                max_machines: 2,
                max_label_values: 1,
            },
        );
        s.apply(&[to("a", "open"), to("b", "open")], 1.0).unwrap();
        let err = s.apply(&[to("c", "open")], 1.0).unwrap_err();
        assert!(matches!(err, ApplyError::TooManyMachines { limit: 2, .. }));
        s.apply(&[to("a", "half_open")], 1.0).unwrap();
        let mut s = Store::new(
            Catalog::new(builtin::all()).unwrap(),
            Limits {
                max_machines: 10,
                max_label_values: 1,
            },
        );
        let labelled =
            |m: &str, p: &str| Event::new("circuit_breaker", m, Action::Heartbeat).with_labels(&[("provider", p)]);
        s.apply(&[labelled("a", "x")], 1.0).unwrap();
        s.apply(&[labelled("b", "x")], 1.0).unwrap();
        let err = s.apply(&[labelled("c", "y")], 1.0).unwrap_err();
        assert!(matches!(err, ApplyError::TooManyLabelValues { ref label, .. } if label == "provider"));
        // On an existing machine other labels are not taken (its labels are
        // fixed), so they take no room under the cap either.
        s.apply(&[labelled("b", "y")], 1.0).unwrap();
        assert_eq!(
            s.get("circuit_breaker", "b").unwrap().labels.get("provider").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn observed_states_apply_even_when_not_expected_and_count_as_unexpected() {
        let mut s = store();
        s.apply(&[worker_to("w", "idle")], 1.0).unwrap();
        let seen = Event::new(
            "worker",
            "w",
            Action::Observe {
                state: "starting".into(),
            },
        );
        s.apply(&[seen], 2.0).unwrap();
        let m = s.get("worker", "w").unwrap();
        assert_eq!((s.state_name("worker", "w"), m.unexpected), (Some("starting"), 1));
    }

    #[test]
    fn silent_workers_expire_to_their_heartbeat_lost_state() {
        let mut s = store();
        let beat = |m: &str| Event::new("worker", m, Action::Heartbeat);
        s.apply(&[beat("w1"), beat("w2"), to("breaker", "open")], 100.0)
            .unwrap();
        s.apply(&[beat("w2")], 150.0).unwrap();
        let expired = s.heartbeat_expired(150.0, 30.0);
        assert_eq!(expired.len(), 1, "{expired:?}");
        assert_eq!(expired[0].machine, "w1");
        s.apply(&expired, 160.0).unwrap();
        assert_eq!(s.state_name("worker", "w1"), Some("offline"));
        assert!(
            s.heartbeat_expired(150.0, 30.0).is_empty(),
            "an offline worker does not expire again"
        );
        let w1 = s.get("worker", "w1").unwrap();
        assert_eq!(w1.last_heartbeat, Some(100.0), "expiry is not a heartbeat");
        assert!(s.heartbeat_expired(1000.0, 30.0).iter().all(|e| e.machine != "w1"));
    }

    fn polled(kind: &str, machine: &str, state: &str) -> Event {
        Event::new(
            kind,
            machine,
            Action::Polled {
                state: state.into(),
                alive_seconds: 20.0,
            },
        )
    }

    #[test]
    fn a_successful_poll_is_a_heartbeat_that_holds_until_the_next_poll_is_due() {
        let mut s = store();
        s.apply(&[polled("worker", "w", "idle")], 100.0).unwrap();
        let w = s.get("worker", "w").unwrap();
        assert_eq!((w.last_heartbeat, w.alive_until), (Some(100.0), Some(120.0)));
        // A TTL below the poll interval does not flap it: the poll vouches until 120.
        assert!(s.heartbeat_expired(115.0, 10.0).is_empty());
        assert_eq!(s.heartbeat_expired(121.0, 10.0).len(), 1);
        // The same state again is still a heartbeat.
        assert_eq!(
            s.apply(&[polled("worker", "w", "idle")], 118.0).unwrap(),
            [Applied::Unchanged]
        );
        assert_eq!(s.get("worker", "w").unwrap().last_heartbeat, Some(118.0));
        assert!(s.heartbeat_expired(135.0, 30.0).is_empty());
        // Polls stop: after the TTL and the last poll's lease, it is lost.
        let expired = s.heartbeat_expired(149.0, 30.0);
        assert_eq!(expired.len(), 1, "{expired:?}");
        s.apply(&expired, 149.0).unwrap();
        let w = s.get("worker", "w").unwrap();
        assert_eq!(
            (s.state_name("worker", "w"), w.last_heartbeat),
            (Some("offline"), Some(118.0))
        );
    }

    #[test]
    fn a_machine_first_seen_by_a_poll_is_created_in_the_state_seen() {
        let mut s = store();
        s.apply(&[polled("circuit_breaker", "a", "half_open")], 7.0).unwrap();
        let m = s.get("circuit_breaker", "a").unwrap();
        assert_eq!(s.state_name("circuit_breaker", "a"), Some("half_open"));
        assert_eq!((m.since, m.created, m.unexpected), (7.0, 7.0, 0));
        assert!(m.transitions.is_empty(), "{:?}", m.transitions);
        // Later polls are moves (closed -> half_open is a manual one).
        s.apply(&[polled("circuit_breaker", "a", "closed")], 8.0).unwrap();
        s.apply(&[polled("circuit_breaker", "a", "half_open")], 8.5).unwrap();
        let m = s.get("circuit_breaker", "a").unwrap();
        assert_eq!((m.transitions.total(), m.unexpected), (2, 0));
        // Seen twice in one poll: the second is a move from the first.
        s.apply(&[polled("worker", "w", "busy"), polled("worker", "w", "idle")], 9.0)
            .unwrap();
        let w = s.get("worker", "w").unwrap();
        assert_eq!((w.transitions.total(), w.unexpected), (1, 0));
        // Unexpected ones counted.
        s.apply(&[polled("worker", "w", "starting")], 9.5).unwrap();
        assert_eq!(s.get("worker", "w").unwrap().unexpected, 1);
        // A state the kind does not have is refused, and creates nothing.
        let err = s.apply(&[polled("worker", "x", "ajar")], 10.0).unwrap_err();
        assert!(matches!(err, ApplyError::UnknownState { .. }), "{err}");
        assert!(s.get("worker", "x").is_none());
    }

    #[test]
    fn failures_follow_the_reporter_or_count_consecutive_failures() {
        let mut s = store();
        let call = |o, n| {
            Event::new(
                "circuit_breaker",
                "a",
                Action::Call {
                    outcome: o,
                    failure_count: n,
                },
            )
        };
        s.apply(
            &[call(CallOutcome::Failure, None), call(CallOutcome::Timeout, None)],
            1.0,
        )
        .unwrap();
        assert_eq!(s.get("circuit_breaker", "a").unwrap().failures, 2);
        s.apply(&[call(CallOutcome::Success, None)], 1.0).unwrap();
        assert_eq!(s.get("circuit_breaker", "a").unwrap().failures, 0);
        s.apply(&[call(CallOutcome::Rejected, Some(7))], 1.0).unwrap();
        assert_eq!(s.get("circuit_breaker", "a").unwrap().failures, 7);
    }

    mod props {
        use super::*;
        use crate::wal::Snapshot;
        use proptest::prelude::*;

        const BREAKER_STATES: [&str; 6] = ["closed", "open", "half_open", "forced_open", "disabled", "ajar"];

        fn event() -> impl Strategy<Value = Event> {
            let machine = prop::sample::select(vec!["a", "b", "c"]);
            let action = prop_oneof![
                4 => prop::sample::select(BREAKER_STATES.to_vec()).prop_map(|s| Action::Transition { to: s.into() }),
                1 => prop::sample::select(BREAKER_STATES[..5].to_vec()).prop_map(|s| Action::Observe { state: s.into() }),
                1 => prop::sample::select(BREAKER_STATES[..5].to_vec()).prop_map(|s| Action::Polled { state: s.into(), alive_seconds: 15.0 }),
                2 => (0..4usize, prop::option::of(0..10u64))
                    .prop_map(|(o, n)| Action::Call { outcome: CallOutcome::ALL[o], failure_count: n }),
                1 => Just(Action::Heartbeat),
            ];
            (machine, action, prop::option::of(0..20u64)).prop_map(|(m, a, seq)| {
                let mut e = Event::new("circuit_breaker", m, a);
                e.seq = seq;
                e
            })
        }

        proptest! {
            /// Whatever is reported, a machine only ever moves along transitions
            /// its kind allows (or that were observed and counted as unexpected),
            /// a refused batch changes nothing, and counters add up.
            #[test]
            fn machines_only_move_along_allowed_transitions(batches in prop::collection::vec(prop::collection::vec(event(), 1..6), 1..30)) {
                let kind = builtin::circuit_breaker();
                let mut s = store();
                let mut t = 0.0;
                for batch in &batches {
                    t += 1.0;
                    let before = s.machines.clone();
                    match s.apply(batch, t) {
                        Err(_) => prop_assert_eq!(&s.machines, &before, "a refused batch changed the store"),
                        Ok(results) => {
                            prop_assert_eq!(results.len(), batch.len());
                            for (key, m) in &s.machines {
                                let old = before.get(key);
                                let moved: u64 = m.transitions.total() - old.map_or(0, |o| o.transitions.total());
                                let illegal = m.unexpected - old.map_or(0, |o| o.unexpected);
                                // Every new pair was either allowed or an observed (unexpected-counted) move.
                                for ((from, to), n) in m.transitions.iter() {
                                    let was = old.map_or(0, |o| o.transitions.get((from, to)));
                                    if n > was && !kind.is_allowed(from, to) {
                                        prop_assert!(illegal >= n - was, "{} -> {} taken without being allowed", kind.state_name(from), kind.state_name(to));
                                    }
                                }
                                if moved > 0 {
                                    prop_assert_eq!(m.since, t);
                                }
                            }
                        }
                    }
                }
                let back = Snapshot::of(&s).into_store(s.catalog.clone(), Limits::default()).unwrap();
                prop_assert_eq!(back.machines, s.machines);
            }

            /// However one machine's reports are delivered, it ends in the state
            /// of the newest (highest seq), every report older than one applied
            /// before it is stale, and every move the kind does not expect is
            /// counted.
            #[test]
            fn out_of_order_delivery_ends_in_the_newest_reported_state(
                (states, order) in prop::collection::vec(
                    prop::sample::select(vec!["starting", "idle", "busy", "draining", "offline"]), 1..12,
                )
                .prop_flat_map(|states| {
                    let n = states.len();
                    (Just(states), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
                })
            ) {
                let kind = builtin::worker();
                let mut s = store();
                let mut newest: Option<usize> = None;
                let mut stale = 0;
                for (t, &i) in order.iter().enumerate() {
                    let mut e = Event::new("worker", "w", Action::Transition { to: states[i].into() });
                    e.seq = Some(i as u64 + 1);
                    let applied = s.apply(&[e], t as f64).unwrap();
                    if newest.is_some_and(|n| i < n) {
                        prop_assert_eq!(&applied[0], &Applied::Stale { seq: i as u64 + 1, last_seq: newest.unwrap() as u64 + 1 });
                        stale += 1;
                    } else {
                        newest = Some(i);
                        prop_assert_eq!(s.state_name("worker", "w"), Some(states[i]));
                    }
                }
                let last = states.len() - 1;
                prop_assert_eq!(s.state_name("worker", "w"), Some(states[last]));
                let m = s.get("worker", "w").unwrap();
                let unexpected: u64 = m.transitions.iter()
                    .filter(|((f, t), _)| !kind.is_allowed(*f, *t))
                    .map(|(_, n)| n)
                    .sum();
                prop_assert_eq!(m.unexpected, unexpected);
                prop_assert!(stale < states.len());
            }

            /// A batch that goes through has the same effect as its events one by one.
            #[test]
            fn a_batch_equals_its_events_applied_in_order(batch in prop::collection::vec(event(), 1..12)) {
                let mut whole = store();
                let mut single = store();
                if whole.apply(&batch, 5.0).is_ok() {
                    for e in &batch {
                        single.apply(std::slice::from_ref(e), 5.0).unwrap();
                    }
                    prop_assert_eq!(whole.machines, single.machines);
                }
            }
        }
    }
}
