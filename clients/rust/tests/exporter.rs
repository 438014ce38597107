//! The Rust client against the real exporter (in process): breakers and
//! worker loops driven by many tasks, with the exporter stopped and started
//! again mid-run; what the exporter holds must equal what the service did.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statescope_client::{BreakerReporter, Config, JobResult, Outcome, Reporter, WorkerReporter};
use support::Exporter;

/// The longest one reporting call may take in the service's task. A reporter
/// that awaited the exporter would take its request timeout (5 s) while it is down.
const CALL_BOUND: Duration = Duration::from_millis(250);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A small breaker, as a library would have one: consecutive failures open
/// it, a call after the reset time finds it half-open, and that trial decides.
/// Its transition hook reports (under its lock) and keeps the truth.
struct Breaker {
    name: String,
    state: Mutex<(&'static str, u32, Instant)>,
    reporter: BreakerReporter,
    moves: Mutex<BTreeMap<(String, String), f64>>,
    calls: Mutex<BTreeMap<String, f64>>,
}

impl Breaker {
    fn new(reporter: &Reporter, name: &str) -> Breaker {
        let (provider, key) = name.split_once('/').unwrap();
        Breaker {
            name: name.to_owned(),
            state: Mutex::new(("closed", 0, Instant::now())),
            reporter: BreakerReporter::new(reporter, name).with_labels([("provider", provider), ("key_id", key)]),
            moves: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    fn go(&self, s: &mut (&'static str, u32, Instant), to: &'static str) {
        *self.moves.lock().unwrap().entry((s.0.into(), to.into())).or_default() += 1.0;
        s.0 = to;
        s.2 = Instant::now();
        self.reporter.state_changed(to);
    }

    /// One call that fails when `fail`; returns how long the reporting took.
    fn call(&self, fail: bool) -> Duration {
        let started = Instant::now();
        let mut s = self.state.lock().unwrap();
        if s.0 == "open" && s.2.elapsed() >= Duration::from_millis(3) {
            self.go(&mut s, "half_open");
        }
        let outcome = match (s.0, fail) {
            ("open", _) => Outcome::Rejected,
            (_, false) => {
                s.1 = 0;
                if s.0 == "half_open" {
                    self.go(&mut s, "closed");
                }
                Outcome::Success
            }
            (_, true) => {
                s.1 += 1;
                if s.0 == "half_open" || s.1 >= 3 {
                    s.1 = 0;
                    self.go(&mut s, "open");
                }
                Outcome::Failure
            }
        };
        *self
            .calls
            .lock()
            .unwrap()
            .entry(outcome_name(outcome).into())
            .or_default() += 1.0;
        self.reporter.record(outcome, Some(u64::from(s.1)));
        started.elapsed()
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Timeout => "timeout",
        Outcome::Rejected => "rejected",
    }
}

/// `tasks` tasks make `calls` calls each on random breakers and run jobs on random workers.
async fn drive(breakers: &[Arc<Breaker>], workers: &[Arc<WorkerReporter>], tasks: u64, calls: u64) -> Duration {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let breakers = breakers.to_vec();
        let workers = workers.to_vec();
        handles.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for _ in 0..calls {
                let b = &breakers[(next() % breakers.len() as u64) as usize];
                worst = worst.max(b.call(next() % 3 == 0));
                if next() % 10 == 0 {
                    let w = &workers[(next() % workers.len() as u64) as usize];
                    let fail = next() % 4 == 0;
                    let queued = Instant::now();
                    let _ = w
                        .job(Some(queued), async move {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            if fail { Err("failed") } else { Ok(()) }
                        })
                        .await;
                }
                if next() % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
            }
            worst
        }));
    }
    let mut worst = Duration::ZERO;
    for h in handles {
        worst = worst.max(h.await.unwrap());
    }
    worst
}

#[test]
fn breakers_and_workers_equal_the_exporter_across_an_exporter_restart() {
    let mut exporter = Exporter::start();
    let rt = runtime();
    let _guard = rt.enter();
    let mut config = Config::new(exporter.url());
    config.max_backoff = Duration::from_millis(300);
    // Room for the whole run: this test is about exactness across a restart
    // (the default 10,000 fills while a debug-build exporter is down and catching up).
    config.max_queue = 100_000;
    let reporter = Reporter::new(config).unwrap();
    let breakers: Vec<_> = (0..8)
        .map(|i| {
            Arc::new(Breaker::new(
                &reporter,
                &format!("{}/key-{i}", ["openai", "stripe"][i % 2]),
            ))
        })
        .collect();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            Arc::new(WorkerReporter::start(
                &reporter,
                &format!("worker-{i}"),
                [("worker_type", "backtest")],
                Duration::from_millis(200),
            ))
        })
        .collect();

    let mut worst = rt.block_on(drive(&breakers, &workers, 32, 100));
    exporter.stop();
    worst = worst.max(rt.block_on(drive(&breakers, &workers, 32, 100)));
    assert!(reporter.stats().queued > 0, "events wait while the exporter is down");
    exporter.resume();
    worst = worst.max(rt.block_on(drive(&breakers, &workers, 32, 100)));
    assert!(
        rt.block_on(reporter.flush(Duration::from_secs(30))),
        "{:?}",
        reporter.stats()
    );

    let stats = reporter.stats();
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!((stats.dropped, stats.rejected), (0, 0), "{stats:?}");
    let machines = exporter.machines();
    for b in &breakers {
        let state = b.state.lock().unwrap().0;
        assert_eq!(machines[&b.name]["state"], state, "{}", b.name);
        let moves = exporter.samples(
            "statescope_transitions_total",
            &[("kind", "circuit_breaker"), ("machine", &b.name)],
            &["from", "to"],
        );
        let truth: BTreeMap<Vec<String>, f64> = b
            .moves
            .lock()
            .unwrap()
            .iter()
            .map(|((f, t), n)| (vec![f.clone(), t.clone()], *n))
            .collect();
        assert_eq!(moves, truth, "{}", b.name);
        let calls = exporter.samples(
            "statescope_breaker_calls_total",
            &[("kind", "circuit_breaker"), ("machine", &b.name)],
            &["outcome"],
        );
        let truth: BTreeMap<Vec<String>, f64> = b
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(o, n)| (vec![o.clone()], *n))
            .collect();
        assert_eq!(calls, truth, "{}", b.name);
        assert_eq!(
            machines[&b.name]["labels"]["provider"],
            b.name.split('/').next().unwrap()
        );
    }
    let total_moves: f64 = breakers
        .iter()
        .flat_map(|b| b.moves.lock().unwrap().values().copied().collect::<Vec<_>>())
        .sum();
    assert!(
        total_moves > 100.0,
        "the run should move the breakers a lot ({total_moves})"
    );
    for (i, w) in workers.iter().enumerate() {
        let name = format!("worker-{i}");
        let m = &machines[&name];
        assert_eq!(m["state"], "idle", "{name}");
        let jobs = m["jobs"]["succeeded"].as_u64().unwrap_or(0) + m["jobs"]["failed"].as_u64().unwrap_or(0);
        assert_eq!(jobs as usize, w.jobs(), "{name}");
        let moves = exporter.samples("statescope_transitions_total", &[("machine", &name)], &["from", "to"]);
        let busy = moves[&vec!["idle".to_owned(), "busy".to_owned()]];
        assert_eq!(moves[&vec!["busy".to_owned(), "idle".to_owned()]], busy, "{name}");
    }
    println!("slowest reporting call: {:?}", worst);
    assert!(worst < CALL_BOUND, "a call took {worst:?} while the exporter was down");
    for w in workers {
        Arc::into_inner(w).unwrap().stop();
    }
    assert!(rt.block_on(reporter.close(Duration::from_secs(10))));
    assert_eq!(exporter.machines()["worker-0"]["state"], "offline");
}

#[test]
fn every_event_type_is_accepted_by_the_exporters_parser_and_refusals_drop_one_event() {
    let exporter = Exporter::start();
    let rt = runtime();
    let _guard = rt.enter();
    let reporter = Reporter::new(Config::new(exporter.url())).unwrap();
    reporter.set_labels("worker", "w-1", [("worker_type", "gpu"), ("service", "train")]);
    reporter.heartbeat("worker", "w-1");
    reporter.transition("worker", "w-1", "idle");
    reporter.transition("worker", "w-1", "nowhere"); // 422: refused alone
    reporter.job(
        "worker",
        "w-1",
        JobResult::Failed,
        Duration::from_millis(1500),
        Some(Duration::from_secs(2)),
    );
    reporter.job(
        "worker",
        "w-1",
        JobResult::Succeeded,
        Duration::from_secs(u64::MAX / 4),
        None,
    );
    reporter.call("circuit_breaker", "b", Outcome::Timeout, Some(4));
    reporter.call("circuit_breaker", "b", Outcome::Rejected, None);
    assert!(rt.block_on(reporter.flush(Duration::from_secs(10))));
    let stats = reporter.stats();
    assert_eq!((stats.delivered, stats.rejected, stats.retries), (6, 1, 0), "{stats:?}");
    let m = exporter.machines();
    assert_eq!(m["w-1"]["state"], "idle");
    assert_eq!(m["w-1"]["labels"]["service"], "train");
    assert_eq!(m["w-1"]["jobs"]["failed"], 1);
    assert_eq!(m["b"]["calls"]["timeout"], 1);
    assert_eq!(m["b"]["failures"], 4);
}

#[test]
fn close_gives_up_within_its_deadline_on_an_exporter_that_never_answers() {
    // Accepts connections (the kernel does) but never reads: requests hang.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rt = runtime();
    let _guard = rt.enter();
    let mut config = Config::new(format!("http://{}", hole.local_addr().unwrap()));
    config.timeout = Duration::from_secs(30);
    config.max_queue = 1000;
    let reporter = Reporter::new(config).unwrap();
    let started = Instant::now();
    for _ in 0..5000 {
        reporter.heartbeat("worker", "w");
    }
    let spent = started.elapsed();
    let stats = reporter.stats();
    assert_eq!(stats.enqueued, 5000);
    // At most max_queue wait, plus one batch in flight; the rest were dropped, oldest first, and counted.
    assert!(stats.queued <= 1000 + 500, "{stats:?}");
    assert!(
        stats.dropped >= 5000 - 1500 && stats.dropped + stats.queued >= 5000,
        "{stats:?}"
    );
    let started = Instant::now();
    assert!(!rt.block_on(reporter.close(Duration::from_secs(1))));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "close(1 s) took {took:?}");
    println!("5000 events queued in {spent:?}; close gave up after {took:?}");
}

#[test]
fn a_machine_cap_drops_the_event_that_would_pass_it_after_retries() {
    let exporter = Exporter::start_with(Some(2));
    let rt = runtime();
    let _guard = rt.enter();
    let mut config = Config::new(exporter.url());
    config.linger = Duration::from_millis(200);
    config.initial_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(50);
    let reporter = Reporter::new(config).unwrap();
    for name in ["w-1", "w-2", "w-3"] {
        reporter.heartbeat("worker", name);
    }
    reporter.transition("worker", "w-1", "idle");
    assert!(
        rt.block_on(reporter.flush(Duration::from_secs(10))),
        "{:?}",
        reporter.stats()
    );
    let stats = reporter.stats();
    assert_eq!((stats.rejected, stats.delivered, stats.retries), (1, 3, 3), "{stats:?}");
    let machines = exporter.machines();
    assert_eq!(machines.keys().collect::<Vec<_>>(), ["w-1", "w-2"]);
    assert_eq!(machines["w-1"]["state"], "idle");
}
