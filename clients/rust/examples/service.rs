//! A small service that reports to a Statescope exporter: two workers take
//! jobs from a queue, and every job calls an upstream API through a circuit
//! breaker that trips when the upstream has a bad spell.
//!
//! ```sh
//! cargo run -p statescope-exporter -- --data-dir /tmp/statescope-example &
//! cargo run -p statescope-client --example service -- http://127.0.0.1:9733 20
//! curl -s http://127.0.0.1:9733/api/v1/machines
//! ```
//!
//! Arguments: the exporter's URL and how many seconds to run (default 20).
//! `STATESCOPE_TOKEN` is sent as the bearer token when set.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use statescope_client::{BreakerReporter, Config, Outcome, Reporter, WorkerReporter};

/// The breaker the service would get from a library; its transition hook reports.
struct Breaker {
    /// state, consecutive failures, when the state was entered
    state: Mutex<(&'static str, u32, Instant)>,
    report: BreakerReporter,
}

impl Breaker {
    fn call(&self, upstream_ok: bool) -> Result<(), &'static str> {
        let mut s = self.state.lock().unwrap();
        let go = |s: &mut (&'static str, u32, Instant), to: &'static str| {
            *s = (to, 0, Instant::now());
            self.report.state_changed(to);
        };
        if s.0 == "open" && s.2.elapsed() > Duration::from_secs(2) {
            go(&mut s, "half_open");
        }
        if s.0 == "open" {
            self.report.record(Outcome::Rejected, None);
            return Err("breaker open");
        }
        if upstream_ok {
            if s.0 == "half_open" {
                go(&mut s, "closed");
            }
            s.1 = 0;
            self.report.record(Outcome::Success, Some(0));
            Ok(())
        } else {
            s.1 += 1;
            let failures = s.1;
            if s.0 == "half_open" || failures >= 3 {
                go(&mut s, "open");
            }
            self.report.record(Outcome::Failure, Some(u64::from(failures)));
            Err("upstream failed")
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:9733".into());
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let mut config = Config::new(url);
    if let Ok(token) = std::env::var("STATESCOPE_TOKEN") {
        config = config.token(token);
    }
    let reporter = Reporter::new(config)?;

    let breaker = Arc::new(Breaker {
        state: Mutex::new(("closed", 0, Instant::now())),
        report: BreakerReporter::new(&reporter, "upstream/key-1")
            .with_labels([("provider", "upstream"), ("key_id", "key-1")]),
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, Instant)>(100);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = Vec::new();
    for i in 1..=2 {
        let worker = WorkerReporter::start(
            &reporter,
            &format!("example-worker-{i}"),
            [("worker_type", "example")],
            Duration::from_secs(10),
        );
        let (rx, breaker) = (rx.clone(), breaker.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some((n, queued_at)) = rx.lock().await.recv().await else {
                    break;
                };
                let _ = worker
                    .job(Some(queued_at), async {
                        tokio::time::sleep(Duration::from_millis(50 + n % 200)).await;
                        // A job is queued every 100 ms: the upstream has a bad spell of 3 s every 10 s.
                        let bad_spell = (20..50).contains(&(n % 100));
                        breaker.call(!bad_spell || n % 4 == 0)
                    })
                    .await;
            }
            worker.draining();
            worker.stop();
        }));
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        tx.send((n, Instant::now())).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(tx);
    for w in workers {
        w.await?;
    }
    let delivered = reporter.close(Duration::from_secs(5)).await;
    println!(
        "{n} jobs; reporter: {:?}; everything delivered: {delivered}",
        reporter.stats()
    );
    Ok(())
}
