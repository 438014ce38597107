//! `--demo`: a simulated fleet, so dashboards and alerts show life with no
//! services attached. Nine circuit breakers (openai, anthropic, stripe ×
//! key-1..3, labels `provider` and `key_id`) and twelve workers (worker-01..06
//! `backtest`, worker-07..12 `training`, label `worker_type`).
//!
//! What it shows:
//! - breakers mostly closed with successful calls; short failure bursts on one
//!   key, some of which trip it ([`TRIP_AFTER`] consecutive failures); an open
//!   breaker probes after a cool-down (half_open) and closes or re-opens with
//!   an exponential back-off; now and then an operator forces one open or
//!   disables it, and hands it back later;
//! - a provider outage soon after start and then every 15-25 minutes: all keys
//!   of one provider stay open long enough for the "all keys open" alert;
//! - workers starting, idle, busy with jobs (succeeded/failed, with run and
//!   queue times), draining (then idle again, or a restart through offline),
//!   the odd crash, a heartbeat every second while running;
//! - [`SILENT_WORKER`] stops sending anything [`SILENT_AFTER_SECS`] after the
//!   demo starts, so the exporter's heartbeat TTL marks it offline.
//!
//! The simulator is pure and seeded: [`Fleet::step`] returns one second's
//! events. It asks for each machine's current state in the exporter and goes
//! on from that state, because after a restart (or any report from elsewhere)
//! the exporter's state is the truth: every transition it emits is legal from
//! the state the exporter holds, so a demo batch is never refused.

use std::ops::Range;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statescope_model::builtin::breaker_state::{CLOSED, DISABLED, FORCED_OPEN, HALF_OPEN, OPEN};
use statescope_model::builtin::worker_state::{BUSY, DRAINING, IDLE, OFFLINE, STARTING};
use statescope_model::builtin::{CIRCUIT_BREAKER, WORKER};
use statescope_model::contract::{CallOutcome, JobResult, LABEL_KEY_ID, LABEL_PROVIDER, LABEL_WORKER_TYPE};

use crate::events::{Action, Event};

const PROVIDERS: [&str; 3] = ["openai", "anthropic", "stripe"];
const KEYS: [&str; 3] = ["key-1", "key-2", "key-3"];
const WORKERS: usize = 12;

/// The worker that goes silent for good.
pub const SILENT_WORKER: &str = "worker-12";
/// How long after the first step [`SILENT_WORKER`] sends its last event.
pub const SILENT_AFTER_SECS: f64 = 60.0;
/// Consecutive failed calls that trip a closed breaker.
pub const TRIP_AFTER: u64 = 5;

/// First cool-down of an open breaker. Each failed probe multiplies it by
/// [`BACKOFF`] up to [`MAX_WAIT`] (exponential back-off, as resilience4j
/// offers). The narrow range and the factor keep every key of a provider in an
/// outage open for a stretch well over a minute between probes, which is what
/// the provider alert waits for (`for: 1m`).
const FIRST_WAIT: Range<f64> = 15.0..25.0;
const BACKOFF: f64 = 3.0;
const MAX_WAIT: f64 = 240.0;
/// The first outage comes soon, so someone trying the demo sees it (and its
/// alert) within minutes; later ones are rare.
const FIRST_OUTAGE_AFTER: Range<f64> = 120.0..180.0;
const OUTAGE_GAP: Range<f64> = 900.0..1500.0;
const OUTAGE_LENGTH: Range<f64> = 150.0..300.0;
/// Per closed breaker and second.
const BURST_P: f64 = 1.0 / 300.0;
const BURST_LENGTH: Range<f64> = 3.0..10.0;
const OPERATOR_P: f64 = 1.0 / 1500.0;
const OPERATOR_HOLD: Range<f64> = 30.0..90.0;
/// Failure probability of one call: normally, in a burst, in an outage.
const FAIL_P: [f64; 3] = [0.02, 0.5, 0.9];
/// Per worker and second.
const START_JOB_P: f64 = 0.3;
const DRAIN_IDLE_P: f64 = 1.0 / 600.0;
const DRAIN_BUSY_P: f64 = 1.0 / 1500.0;
const CRASH_P: f64 = 1.0 / 2000.0;

struct Breaker {
    name: String,
    provider: &'static str,
    key: &'static str,
    /// The state this simulator last saw or moved it to; a different state in
    /// the exporter is adopted as if just entered.
    seen: Option<String>,
    /// When an open breaker probes, or an operator hands a forced/disabled one back.
    until: f64,
    /// The current open cool-down (0 while closed).
    wait: f64,
    /// Consecutive failures, reported as `failure_count`.
    failures: u64,
    burst_until: f64,
}

struct Job {
    started: f64,
    queued: f64,
    ends: f64,
}

struct Worker {
    name: String,
    worker_type: &'static str,
    seen: Option<String>,
    /// When starting ends, a drain settles, or an offline worker restarts.
    until: f64,
    job: Option<Job>,
}

struct Outage {
    provider: &'static str,
    until: f64,
}

/// The simulated fleet. See the module docs.
pub struct Fleet {
    rng: StdRng,
    started: Option<f64>,
    breakers: Vec<Breaker>,
    workers: Vec<Worker>,
    outage: Option<Outage>,
    next_outage: f64,
}

impl Fleet {
    pub fn new(seed: u64) -> Fleet {
        let breakers = PROVIDERS
            .iter()
            .flat_map(|p| KEYS.iter().map(move |k| (*p, *k)))
            .map(|(provider, key)| Breaker {
                name: format!("{provider}/{key}"),
                provider,
                key,
                seen: None,
                until: 0.0,
                wait: 0.0,
                failures: 0,
                burst_until: 0.0,
            })
            .collect();
        let workers = (1..=WORKERS)
            .map(|i| Worker {
                name: format!("worker-{i:02}"),
                worker_type: if i <= WORKERS / 2 { "backtest" } else { "training" },
                seen: None,
                until: 0.0,
                job: None,
            })
            .collect();
        Fleet {
            rng: StdRng::seed_from_u64(seed),
            started: None,
            breakers,
            workers,
            outage: None,
            next_outage: f64::INFINITY,
        }
    }

    /// The events of one second at `now` (seconds, any epoch, increasing).
    /// `current(kind, machine)` is the state the exporter holds (None for a
    /// machine it does not know yet). The first step announces every machine.
    pub fn step(&mut self, now: f64, current: &dyn Fn(&str, &str) -> Option<String>) -> Vec<Event> {
        let rng = &mut self.rng;
        let started = *self.started.get_or_insert_with(|| {
            self.next_outage = now + rng.random_range(FIRST_OUTAGE_AFTER);
            now
        });
        if self.outage.as_ref().is_some_and(|o| now >= o.until) {
            self.outage = None;
            self.next_outage = now + rng.random_range(OUTAGE_GAP);
        }
        if self.outage.is_none() && now >= self.next_outage {
            self.outage = Some(Outage {
                provider: PROVIDERS[rng.random_range(0..PROVIDERS.len())],
                until: now + rng.random_range(OUTAGE_LENGTH),
            });
        }
        let mut out = Vec::new();
        for b in &mut self.breakers {
            let outage = self.outage.as_ref().is_some_and(|o| o.provider == b.provider);
            b.step(rng, now, outage, current, &mut out);
        }
        for w in &mut self.workers {
            if w.name == SILENT_WORKER && now - started >= SILENT_AFTER_SECS {
                continue;
            }
            w.step(rng, now, current, &mut out);
        }
        out
    }
}

impl Breaker {
    fn event(&self, action: Action) -> Event {
        Event::new(CIRCUIT_BREAKER, &self.name, action)
            .with_labels(&[(LABEL_PROVIDER, self.provider), (LABEL_KEY_ID, self.key)])
    }

    fn call(&self, outcome: CallOutcome, failure_count: Option<u64>) -> Event {
        self.event(Action::Call { outcome, failure_count })
    }

    /// Sets the timers of `state`, entered now (by this simulator or, as
    /// reported by the exporter, by someone else).
    fn enter(&mut self, state: &str, now: f64, rng: &mut StdRng) {
        match state {
            CLOSED => {
                self.failures = 0;
                self.wait = 0.0;
            }
            OPEN => {
                self.wait = if self.wait == 0.0 {
                    rng.random_range(FIRST_WAIT)
                } else {
                    (self.wait * BACKOFF).min(MAX_WAIT)
                };
                self.until = now + self.wait;
            }
            FORCED_OPEN | DISABLED => self.until = now + rng.random_range(OPERATOR_HOLD),
            _ => {}
        }
        self.seen = Some(state.to_owned());
    }

    fn step(
        &mut self,
        rng: &mut StdRng,
        now: f64,
        outage: bool,
        current: &dyn Fn(&str, &str) -> Option<String>,
        out: &mut Vec<Event>,
    ) {
        let state = current(CIRCUIT_BREAKER, &self.name).unwrap_or_else(|| CLOSED.to_owned());
        if self.seen.as_deref() != Some(state.as_str()) {
            self.enter(&state, now, rng);
        }
        let next = match state.as_str() {
            CLOSED => self.traffic(rng, now, outage, out),
            OPEN => {
                out.push(self.call(CallOutcome::Rejected, None));
                (now >= self.until).then_some(HALF_OPEN)
            }
            HALF_OPEN => {
                let ok = !outage && now >= self.burst_until && rng.random_bool(0.85);
                self.failures = if ok { 0 } else { self.failures + 1 };
                let outcome = if ok { CallOutcome::Success } else { CallOutcome::Failure };
                out.push(self.call(outcome, Some(self.failures)));
                Some(if ok { CLOSED } else { OPEN })
            }
            // forced_open, disabled: the operator hands it back.
            _ => (now >= self.until).then_some(CLOSED),
        };
        if let Some(to) = next {
            out.push(self.event(Action::Transition { to: to.to_owned() }));
            self.enter(to, now, rng);
        }
    }

    /// A closed breaker's calls for one second; the state to move to, if any.
    fn traffic(&mut self, rng: &mut StdRng, now: f64, outage: bool, out: &mut Vec<Event>) -> Option<&'static str> {
        if rng.random_bool(OPERATOR_P) {
            return Some(if rng.random_bool(0.5) { FORCED_OPEN } else { DISABLED });
        }
        if now >= self.burst_until && rng.random_bool(BURST_P) {
            self.burst_until = now + rng.random_range(BURST_LENGTH);
        }
        let fail_p = if outage {
            FAIL_P[2]
        } else if now < self.burst_until {
            FAIL_P[1]
        } else {
            FAIL_P[0]
        };
        for _ in 0..rng.random_range(1..=4) {
            let outcome = if !rng.random_bool(fail_p) {
                CallOutcome::Success
            } else if rng.random_bool(0.25) {
                CallOutcome::Timeout
            } else {
                CallOutcome::Failure
            };
            self.failures = if outcome.is_failure() { self.failures + 1 } else { 0 };
            out.push(self.call(outcome, Some(self.failures)));
            if self.failures >= TRIP_AFTER {
                return Some(OPEN);
            }
        }
        None
    }
}

impl Worker {
    fn event(&self, action: Action) -> Event {
        Event::new(WORKER, &self.name, action).with_labels(&[(LABEL_WORKER_TYPE, self.worker_type)])
    }

    fn new_job(&self, rng: &mut StdRng, now: f64) -> Job {
        let (run, queue) = if self.worker_type == "training" {
            (8.0..40.0, 1.0..120.0)
        } else {
            (2.0..12.0, 0.05..20.0)
        };
        Job {
            started: now,
            queued: rng.random_range(queue),
            ends: now + rng.random_range(run),
        }
    }

    /// The job event for the current job, which ends now.
    fn finish_job(&mut self, now: f64, result: JobResult, out: &mut Vec<Event>) {
        if let Some(job) = self.job.take() {
            out.push(self.event(Action::Job {
                result,
                duration_seconds: now - job.started,
                queue_seconds: Some(job.queued),
            }));
        }
    }

    fn enter(&mut self, state: &str, now: f64, rng: &mut StdRng) {
        match state {
            STARTING => self.until = now + rng.random_range(2.0..6.0),
            IDLE => self.job = None,
            BUSY if self.job.is_none() => self.job = Some(self.new_job(rng, now)),
            // A drain lets the running job (if any) finish, then settles.
            DRAINING => self.until = now + rng.random_range(3.0..10.0),
            OFFLINE => {
                self.job = None;
                self.until = now + rng.random_range(10.0..30.0);
            }
            _ => {}
        }
        self.seen = Some(state.to_owned());
    }

    fn step(
        &mut self,
        rng: &mut StdRng,
        now: f64,
        current: &dyn Fn(&str, &str) -> Option<String>,
        out: &mut Vec<Event>,
    ) {
        let Some(state) = current(WORKER, &self.name) else {
            // Unknown to the exporter: the first heartbeat creates it in `starting`.
            out.push(self.event(Action::Heartbeat));
            self.enter(STARTING, now, rng);
            return;
        };
        if self.seen.as_deref() != Some(state.as_str()) {
            self.enter(&state, now, rng);
        }
        if state != OFFLINE {
            out.push(self.event(Action::Heartbeat));
        }
        let job_done = self.job.as_ref().is_some_and(|j| now >= j.ends);
        let next = match state.as_str() {
            STARTING => (now >= self.until).then_some(IDLE),
            IDLE => {
                if rng.random_bool(DRAIN_IDLE_P) {
                    Some(DRAINING)
                } else if rng.random_bool(CRASH_P) {
                    Some(OFFLINE)
                } else {
                    rng.random_bool(START_JOB_P).then_some(BUSY)
                }
            }
            BUSY => {
                if job_done {
                    let result = if rng.random_bool(0.9) {
                        JobResult::Succeeded
                    } else {
                        JobResult::Failed
                    };
                    self.finish_job(now, result, out);
                    Some(IDLE)
                } else if rng.random_bool(CRASH_P) {
                    self.finish_job(now, JobResult::Failed, out);
                    Some(OFFLINE)
                } else {
                    rng.random_bool(DRAIN_BUSY_P).then_some(DRAINING)
                }
            }
            DRAINING => {
                if job_done {
                    self.finish_job(now, JobResult::Succeeded, out);
                    self.until = now + rng.random_range(2.0..5.0);
                }
                // Drained: back to work, or a restart.
                (self.job.is_none() && now >= self.until).then(|| if rng.random_bool(0.5) { IDLE } else { OFFLINE })
            }
            OFFLINE if now >= self.until => {
                out.push(self.event(Action::Heartbeat));
                Some(STARTING)
            }
            _ => None,
        };
        if let Some(to) = next {
            out.push(self.event(Action::Transition { to: to.to_owned() }));
            self.enter(to, now, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use statescope_model::{Kind, builtin};

    use super::*;

    const T0: f64 = 1_700_000_000.0;

    /// A fake exporter: machine states as the store keeps them. Applying an
    /// event panics on anything the real store would refuse in a demo batch.
    struct Exporter {
        kinds: [Kind; 2],
        states: HashMap<(String, String), String>,
        transitions: usize,
    }

    impl Exporter {
        fn new() -> Exporter {
            Exporter {
                kinds: [builtin::circuit_breaker(), builtin::worker()],
                states: HashMap::new(),
                transitions: 0,
            }
        }

        fn current(&self, kind: &str, machine: &str) -> Option<String> {
            self.states.get(&(kind.to_owned(), machine.to_owned())).cloned()
        }

        fn set(&mut self, kind: &str, machine: &str, state: &str) {
            self.states
                .insert((kind.to_owned(), machine.to_owned()), state.to_owned());
        }

        fn apply(&mut self, now: f64, e: &Event) {
            let kind = self.kinds.iter().find(|k| k.name() == e.kind).expect("a built-in kind");
            let key = (e.kind.clone(), e.machine.clone());
            let from = self
                .states
                .entry(key)
                .or_insert_with(|| kind.state_name(kind.initial()).to_owned());
            if let Action::Transition { to } = &e.action {
                let (f, t) = (
                    kind.state_id(from).unwrap(),
                    kind.state_id(to).expect("a state of the kind"),
                );
                assert!(
                    f != t,
                    "{} {}: a move to the state it is in ({to}) at {now}",
                    e.kind,
                    e.machine
                );
                assert!(
                    kind.is_allowed(f, t),
                    "{} {}: {from} -> {to} at {now}",
                    e.kind,
                    e.machine
                );
                *from = to.clone();
                self.transitions += 1;
            }
        }

        /// Runs `fleet` for `secs` seconds from `start`, returning (time, event) pairs.
        fn run(&mut self, fleet: &mut Fleet, start: f64, secs: usize) -> Vec<(f64, Event)> {
            let mut all = Vec::new();
            for t in 0..secs {
                let now = start + t as f64;
                let events = fleet.step(now, &|k, m| self.current(k, m));
                for e in events {
                    self.apply(now, &e);
                    all.push((now, e));
                }
            }
            all
        }
    }

    fn run(seed: u64, secs: usize) -> (Vec<(f64, Event)>, Exporter) {
        let mut exporter = Exporter::new();
        let events = exporter.run(&mut Fleet::new(seed), T0, secs);
        (events, exporter)
    }

    fn reached(events: &[(f64, Event)]) -> BTreeSet<(&str, &str)> {
        events
            .iter()
            .filter_map(|(_, e)| match &e.action {
                Action::Transition { to } => Some((e.kind.as_str(), to.as_str())),
                _ => None,
            })
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_machine_appears_on_the_first_step_with_its_identity_labels() {
        let (events, exporter) = run(7, 2000);
        let first: BTreeSet<_> = events
            .iter()
            .filter(|(t, _)| *t == T0)
            .map(|(_, e)| &e.machine)
            .collect();
        assert_eq!(first.len(), 21, "{first:?}");
        assert_eq!(exporter.states.len(), 21);
        for (_, e) in &events {
            let want = if e.kind == CIRCUIT_BREAKER {
                let (provider, key) = e.machine.split_once('/').unwrap();
                assert!(PROVIDERS.contains(&provider) && KEYS.contains(&key), "{}", e.machine);
                labels(&[("provider", provider), ("key_id", key)])
            } else {
                let n: u32 = e.machine.strip_prefix("worker-").unwrap().parse().unwrap();
                assert!((1..=12).contains(&n), "{}", e.machine);
                labels(&[("worker_type", if n <= 6 { "backtest" } else { "training" })])
            };
            assert_eq!(e.labels, want, "{e:?}");
        }
    }

    #[test]
    fn the_fleet_visits_every_state_and_reports_calls_and_jobs() {
        let (events, exporter) = run(11, 2000);
        assert!(exporter.transitions > 500, "only {} transitions", exporter.transitions);
        let reached = reached(&events);
        for state in ["closed", "open", "half_open", "forced_open", "disabled"] {
            assert!(reached.contains(&(CIRCUIT_BREAKER, state)), "no breaker went {state}");
        }
        for state in ["starting", "idle", "busy", "draining", "offline"] {
            assert!(reached.contains(&(WORKER, state)), "no worker went {state}");
        }
        let mut outcomes = BTreeMap::new();
        let mut results = BTreeMap::new();
        for (_, e) in &events {
            match e.action {
                Action::Call { outcome, .. } => *outcomes.entry(outcome.as_str()).or_insert(0) += 1,
                Action::Job {
                    result,
                    duration_seconds,
                    queue_seconds,
                } => {
                    assert!(
                        duration_seconds >= 0.0 && queue_seconds.is_some_and(|q| q > 0.0),
                        "{e:?}"
                    );
                    *results.entry(result.as_str()).or_insert(0) += 1;
                }
                _ => {}
            }
        }
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
        assert!(
            outcomes["success"] > 10 * (outcomes["failure"] + outcomes["timeout"]),
            "{outcomes:?}"
        );
        assert_eq!(results.len(), 2, "{results:?}");
        assert!(results["succeeded"] > results["failed"], "{results:?}");
    }

    #[test]
    fn a_breaker_trips_on_a_burst_of_failures_and_reports_the_count() {
        let (events, _) = run(5, 2000);
        let mut trips = 0;
        for pair in events.windows(2) {
            if pair[1].1.action == (Action::Transition { to: "open".into() }) && pair[0].1.machine == pair[1].1.machine
            {
                let Action::Call { outcome, failure_count } = pair[0].1.action else {
                    continue; // a failed half_open probe
                };
                if outcome.is_failure() && failure_count == Some(TRIP_AFTER) {
                    trips += 1;
                }
            }
        }
        assert!(trips >= 3, "{trips} trips from closed");
    }

    /// The longest stretch, in seconds, with every key of one provider open
    /// or forced open: what the provider alert (`for: 1m`) needs.
    fn longest_outage(seed: u64, secs: usize) -> (f64, f64) {
        let mut exporter = Exporter::new();
        let mut fleet = Fleet::new(seed);
        let (mut best, mut best_end) = (0.0, 0.0);
        let mut since: [Option<f64>; 3] = [None; 3];
        for t in 0..secs {
            let now = T0 + t as f64;
            for e in fleet.step(now, &|k, m| exporter.current(k, m)) {
                exporter.apply(now, &e);
            }
            for (i, provider) in PROVIDERS.iter().enumerate() {
                let all_open = KEYS.iter().all(|k| {
                    exporter
                        .current(CIRCUIT_BREAKER, &format!("{provider}/{k}"))
                        .is_some_and(|s| s == "open" || s == "forced_open")
                });
                match (all_open, since[i]) {
                    (true, None) => since[i] = Some(now),
                    (true, Some(from)) if now - from > best => (best, best_end) = (now - from, now - T0),
                    (false, _) => since[i] = None,
                    _ => {}
                }
            }
        }
        (best, best_end)
    }

    #[test]
    fn a_provider_outage_holds_all_its_keys_open_long_enough_to_alert_within_minutes() {
        for seed in 0..6 {
            let (longest, at) = longest_outage(seed, 600);
            assert!(
                longest >= 90.0 && at < 600.0,
                "seed {seed}: {longest} s, ending at {at}"
            );
        }
    }

    #[test]
    fn worker_12_goes_silent_after_a_minute_and_stays_silent() {
        let (events, _) = run(3, 600);
        let times = |name: &str| -> Vec<f64> {
            events
                .iter()
                .filter(|(_, e)| e.machine == name)
                .map(|(t, _)| t - T0)
                .collect()
        };
        let silent = times(SILENT_WORKER);
        // Live (a heartbeat most seconds) until it stops, then nothing.
        let seconds: BTreeSet<u64> = silent.iter().map(|t| *t as u64).collect();
        assert!(seconds.len() >= 40, "{seconds:?}");
        assert!(silent.iter().all(|t| *t < SILENT_AFTER_SECS), "{silent:?}");
        assert!(times("worker-11").iter().any(|t| *t > 500.0));
    }

    #[test]
    fn after_a_restart_a_new_simulator_goes_on_from_the_exporters_states() {
        // The exporter kept its states; a fresh simulator (another seed, no
        // memory) must move every machine legally from there (apply checks).
        let mut exporter = Exporter::new();
        exporter.run(&mut Fleet::new(1), T0, 700);
        let before = exporter.transitions;
        let events = exporter.run(&mut Fleet::new(2), T0 + 1000.0, 700);
        assert!(exporter.transitions > before + 200);
        // Nothing is announced again as new: no machine restarts from its initial state.
        assert!(reached(&events).len() >= 8);
        assert_eq!(exporter.states.len(), 21);
    }

    #[test]
    fn a_state_set_behind_the_simulators_back_is_adopted() {
        let mut exporter = Exporter::new();
        let mut fleet = Fleet::new(4);
        exporter.run(&mut fleet, T0, 30);
        // Reported by someone else: states the simulator did not move them to.
        let overrides = [
            (CIRCUIT_BREAKER, "openai/key-1", "open"),
            (CIRCUIT_BREAKER, "stripe/key-2", "half_open"),
            (CIRCUIT_BREAKER, "anthropic/key-3", "disabled"),
            (WORKER, "worker-01", "offline"),
            (WORKER, "worker-02", "busy"),
            (WORKER, "worker-07", "draining"),
        ];
        for (kind, machine, state) in overrides {
            exporter.set(kind, machine, state);
        }
        let events = exporter.run(&mut fleet, T0 + 30.0, 200);
        let first_move = |kind: &str, machine: &str| {
            events.iter().find_map(|(t, e)| match &e.action {
                Action::Transition { to } if e.machine == machine && e.kind == kind => {
                    Some((t - T0 - 30.0, to.clone()))
                }
                _ => None,
            })
        };
        for (kind, machine, state) in overrides {
            assert!(first_move(kind, machine).is_some(), "{machine} stayed {state}");
        }
        // Adopted as if just entered: an open breaker cools down before it
        // probes, a disabled one waits for its operator.
        let (after, to) = first_move(CIRCUIT_BREAKER, "openai/key-1").unwrap();
        assert!(after >= FIRST_WAIT.start && to == "half_open", "{to} after {after} s");
        let (after, to) = first_move(CIRCUIT_BREAKER, "anthropic/key-3").unwrap();
        assert!(after >= OPERATOR_HOLD.start && to == "closed", "{to} after {after} s");
        // The adopted busy worker finishes its job with a job event.
        assert!(
            events
                .iter()
                .any(|(_, e)| e.machine == "worker-02" && matches!(e.action, Action::Job { .. }))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_fleet_and_another_seed_another() {
        let events = |seed| run(seed, 300).0;
        assert_eq!(events(5), events(5));
        assert_ne!(events(5), events(6));
    }
}
