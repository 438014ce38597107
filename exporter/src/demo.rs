//! `--demo`: a simulated fleet, so dashboards show life with no services
//! attached. Nine circuit breakers (openai, anthropic, stripe × key-1..3) and
//! twelve workers (worker-01..06 `backtest`, worker-07..12 `training`).
//!
//! The simulator is pure and seeded: [`Fleet::step`] returns one second's
//! events. It asks the exporter for each machine's current state, because
//! after a restart the persisted state is the truth, so every transition it
//! emits is legal from the state the exporter holds.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::events::{Action, Event, JobResult, Outcome};

const PROVIDERS: [&str; 3] = ["openai", "anthropic", "stripe"];
const KEYS: [&str; 3] = ["key-1", "key-2", "key-3"];
const WORKERS: usize = 12;
/// worker-12 stops heartbeating this long after the demo starts, and stays
/// silent, so the heartbeat TTL moves it offline.
pub const SILENT_AFTER_SECS: f64 = 60.0;

struct Breaker {
    name: String,
    provider: &'static str,
    key: &'static str,
    /// When an open breaker may probe again (half_open), or a forced/disabled one is handed back.
    until: f64,
}

struct Worker {
    name: String,
    worker_type: &'static str,
    /// When the current job (busy), drain or restart ends.
    until: f64,
    job_started: f64,
    queued: f64,
}

pub struct Fleet {
    rng: StdRng,
    started: Option<f64>,
    breakers: Vec<Breaker>,
    workers: Vec<Worker>,
    /// A provider-wide outage: every key of this provider fails until the time.
    outage: Option<(&'static str, f64)>,
}

impl Fleet {
    pub fn new(seed: u64) -> Fleet {
        let breakers = PROVIDERS
            .iter()
            .flat_map(|p| KEYS.iter().map(move |k| (p, k)))
            .map(|(provider, key)| Breaker {
                name: format!("{provider}/{key}"),
                provider,
                key,
                until: 0.0,
            })
            .collect();
        let workers = (1..=WORKERS)
            .map(|i| Worker {
                name: format!("worker-{i:02}"),
                worker_type: if i <= WORKERS / 2 { "backtest" } else { "training" },
                until: 0.0,
                job_started: 0.0,
                queued: 0.0,
            })
            .collect();
        Fleet {
            rng: StdRng::seed_from_u64(seed),
            started: None,
            breakers,
            workers,
            outage: None,
        }
    }

    /// One second of the fleet at `now`; `current(kind, machine)` is the
    /// state the exporter holds (None for a machine it does not know yet).
    pub fn step(&mut self, now: f64, current: &dyn Fn(&str, &str) -> Option<String>) -> Vec<Event> {
        let started = *self.started.get_or_insert(now);
        let mut out = Vec::new();
        if self.outage.is_some_and(|(_, end)| now >= end) {
            self.outage = None;
        }
        if self.outage.is_none() && self.rng.random_bool(1.0 / 240.0) {
            let provider = PROVIDERS[self.rng.random_range(0..PROVIDERS.len())];
            self.outage = Some((provider, now + self.rng.random_range(40.0..90.0)));
        }
        for i in 0..self.breakers.len() {
            self.step_breaker(i, now, current, &mut out);
        }
        for i in 0..self.workers.len() {
            if i == WORKERS - 1 && now - started >= SILENT_AFTER_SECS {
                continue; // worker-12 has gone silent for good.
            }
            self.step_worker(i, now, current, &mut out);
        }
        out
    }

    fn step_breaker(
        &mut self,
        i: usize,
        now: f64,
        current: &dyn Fn(&str, &str) -> Option<String>,
        out: &mut Vec<Event>,
    ) {
        let rng = &mut self.rng;
        let b = &mut self.breakers[i];
        let labels = [("provider", b.provider), ("key_id", b.key)];
        let ev = |action| Event::new("circuit_breaker", &b.name, action).with_labels(&labels);
        let state = current("circuit_breaker", &b.name).unwrap_or_else(|| "closed".into());
        let outage = self.outage.is_some_and(|(p, _)| p == b.provider);
        let move_to = |to: &str| ev(Action::Transition { to: to.into() });
        match state.as_str() {
            "closed" => {
                // A rare operator action, otherwise traffic.
                if rng.random_bool(1.0 / 900.0) {
                    b.until = now + rng.random_range(20.0..60.0);
                    out.push(move_to(if rng.random_bool(0.5) {
                        "forced_open"
                    } else {
                        "disabled"
                    }));
                    return;
                }
                let fail_p = if outage {
                    0.8
                } else if rng.random_bool(1.0 / 150.0) {
                    0.9
                } else {
                    0.03
                };
                let mut failures = 0;
                for _ in 0..rng.random_range(1..4) {
                    let outcome = if rng.random_bool(fail_p) {
                        failures += 1;
                        if rng.random_bool(0.3) {
                            Outcome::Timeout
                        } else {
                            Outcome::Failure
                        }
                    } else {
                        Outcome::Success
                    };
                    out.push(ev(Action::Call {
                        outcome,
                        failure_count: None,
                    }));
                }
                if failures >= 2 {
                    b.until = now + rng.random_range(10.0..30.0);
                    out.push(move_to("open"));
                }
            }
            "open" => {
                out.push(ev(Action::Call {
                    outcome: Outcome::Rejected,
                    failure_count: None,
                }));
                if now >= b.until || b.until == 0.0 {
                    out.push(move_to("half_open"));
                }
            }
            "half_open" => {
                let ok = !outage && rng.random_bool(0.75);
                let outcome = if ok { Outcome::Success } else { Outcome::Failure };
                out.push(ev(Action::Call {
                    outcome,
                    failure_count: Some(u64::from(!ok)),
                }));
                if ok {
                    out.push(move_to("closed"));
                } else {
                    b.until = now + rng.random_range(10.0..30.0);
                    out.push(move_to("open"));
                }
            }
            // forced_open, disabled: the operator hands it back later.
            _ => {
                if now >= b.until {
                    out.push(move_to("closed"));
                }
            }
        }
    }

    fn step_worker(
        &mut self,
        i: usize,
        now: f64,
        current: &dyn Fn(&str, &str) -> Option<String>,
        out: &mut Vec<Event>,
    ) {
        let rng = &mut self.rng;
        let w = &mut self.workers[i];
        let labels = [("worker_type", w.worker_type)];
        let ev = |action| Event::new("worker", &w.name, action).with_labels(&labels);
        let move_to = |to: &str| ev(Action::Transition { to: to.into() });
        let state = current("worker", &w.name);
        let Some(state) = state else {
            // First sight: announce the worker (created in `starting`).
            w.until = now + rng.random_range(2.0..6.0);
            out.push(ev(Action::Heartbeat));
            return;
        };
        // A running worker heartbeats every second; an offline one does not.
        if state != "offline" {
            out.push(ev(Action::Heartbeat));
        }
        let (job_min, job_max) = if w.worker_type == "training" {
            (8.0, 40.0)
        } else {
            (2.0, 12.0)
        };
        match state.as_str() {
            "starting" if now >= w.until => out.push(move_to("idle")),
            "idle" => {
                if rng.random_bool(1.0 / 400.0) {
                    w.until = now + rng.random_range(5.0..15.0);
                    out.push(move_to("draining"));
                } else if rng.random_bool(1.0 / 600.0) {
                    w.until = now + rng.random_range(10.0..30.0);
                    out.push(move_to("offline"));
                } else if rng.random_bool(0.35) {
                    w.job_started = now;
                    w.queued = rng.random_range(0.05..20.0);
                    w.until = now + rng.random_range(job_min..job_max);
                    out.push(move_to("busy"));
                }
            }
            "busy" if now >= w.until => {
                let result = if rng.random_bool(0.9) {
                    JobResult::Succeeded
                } else {
                    JobResult::Failed
                };
                let duration = if w.job_started > 0.0 {
                    now - w.job_started
                } else {
                    job_min
                };
                out.push(ev(Action::Job {
                    result,
                    duration_seconds: duration,
                    queue_seconds: Some(w.queued),
                }));
                out.push(move_to("idle"));
            }
            "draining" if now >= w.until => out.push(move_to("idle")),
            "offline" if now >= w.until => {
                w.until = now + rng.random_range(2.0..6.0);
                out.push(ev(Action::Heartbeat));
                out.push(move_to("starting"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    use statescope_model::builtin;

    use super::*;

    /// Machine states by (kind, machine), as the fake exporter holds them.
    type States = HashMap<(String, String), String>;

    /// Runs the fleet for `secs` seconds against a fake exporter that applies
    /// transitions (checking each is legal) and returns every event.
    fn run(seed: u64, secs: usize) -> (Vec<(f64, Event)>, States) {
        let kinds = [builtin::circuit_breaker(), builtin::worker()];
        let states: RefCell<States> = RefCell::default();
        let mut fleet = Fleet::new(seed);
        let mut all = Vec::new();
        for t in 0..secs {
            let now = 1_000.0 + t as f64;
            let events = fleet.step(now, &|k, m| states.borrow().get(&(k.to_owned(), m.to_owned())).cloned());
            for e in events {
                let kind = kinds.iter().find(|k| k.name() == e.kind).unwrap();
                let key = (e.kind.clone(), e.machine.clone());
                let from = states
                    .borrow()
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| kind.state_name(kind.initial()).into());
                if let Action::Transition { to } = &e.action {
                    let (f, t) = (kind.state_id(&from).unwrap(), kind.state_id(to).unwrap());
                    assert!(
                        f != t && kind.is_allowed(f, t),
                        "{} {}: {from} -> {to} at {now}",
                        e.kind,
                        e.machine
                    );
                    states.borrow_mut().insert(key, to.clone());
                } else {
                    states.borrow_mut().entry(key).or_insert(from);
                }
                all.push((now, e));
            }
        }
        (all, states.into_inner())
    }

    #[test]
    fn every_machine_appears_with_its_labels_and_moves_only_legally() {
        let (events, states) = run(7, 3000);
        let breakers: BTreeSet<_> = events
            .iter()
            .filter(|(_, e)| e.kind == "circuit_breaker")
            .map(|(_, e)| &e.machine)
            .collect();
        let workers: BTreeSet<_> = events
            .iter()
            .filter(|(_, e)| e.kind == "worker")
            .map(|(_, e)| &e.machine)
            .collect();
        assert_eq!((breakers.len(), workers.len()), (9, 12));
        assert!(
            events
                .iter()
                .all(|(_, e)| e.kind != "circuit_breaker" || e.labels.len() == 2)
        );
        let w7 = events.iter().find(|(_, e)| e.machine == "worker-07").unwrap();
        assert_eq!(w7.1.labels["worker_type"], "training");
        assert_eq!(states.len(), 21);
    }

    #[test]
    fn the_fleet_visits_every_state_and_reports_calls_and_jobs() {
        let (events, _) = run(11, 4000);
        let reached: BTreeSet<_> = events
            .iter()
            .filter_map(|(_, e)| match &e.action {
                Action::Transition { to } => Some((e.kind.as_str(), to.as_str())),
                _ => None,
            })
            .collect();
        for want in [
            ("circuit_breaker", "open"),
            ("circuit_breaker", "half_open"),
            ("circuit_breaker", "closed"),
            ("worker", "idle"),
            ("worker", "busy"),
            ("worker", "draining"),
            ("worker", "offline"),
            ("worker", "starting"),
        ] {
            assert!(reached.contains(&want), "never reached {want:?}");
        }
        let calls: BTreeSet<_> = events
            .iter()
            .filter_map(|(_, e)| match e.action {
                Action::Call { outcome, .. } => Some(outcome.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 4, "{calls:?}");
        let jobs: BTreeSet<_> = events
            .iter()
            .filter_map(|(_, e)| match e.action {
                Action::Job { result, .. } => Some(result.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(jobs.len(), 2);
    }

    #[test]
    fn worker_12_goes_silent_after_a_minute() {
        let (events, _) = run(3, 600);
        let last = events
            .iter()
            .filter(|(_, e)| e.machine == "worker-12")
            .map(|(t, _)| *t)
            .fold(0.0, f64::max);
        assert!(
            last > 1_000.0 && last < 1_000.0 + SILENT_AFTER_SECS,
            "last worker-12 event at {last}"
        );
    }

    #[test]
    fn after_a_restart_the_exporters_state_wins() {
        // The exporter says openai/key-1 is half_open and worker-01 is busy; the fresh simulator must go on from there.
        let mut fleet = Fleet::new(1);
        let current = |k: &str, m: &str| match (k, m) {
            ("circuit_breaker", "openai/key-1") => Some("half_open".to_string()),
            ("worker", "worker-01") => Some("busy".to_string()),
            ("worker", _) => Some("idle".to_string()),
            _ => Some("closed".to_string()),
        };
        for t in 0..50 {
            for e in fleet.step(2_000.0 + f64::from(t), &current) {
                if let Action::Transition { to } = &e.action {
                    match e.machine.as_str() {
                        "openai/key-1" => assert!(to == "closed" || to == "open", "half_open -> {to}"),
                        "worker-01" => assert!(to == "idle" || to == "draining" || to == "offline", "busy -> {to}"),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_fleet() {
        let a: Vec<_> = run(5, 300).0.into_iter().map(|(_, e)| e).collect();
        let b: Vec<_> = run(5, 300).0.into_iter().map(|(_, e)| e).collect();
        assert_eq!(a, b);
    }
}
