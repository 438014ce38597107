//! Report circuit breakers, workers and custom state machines to a Statescope
//! exporter from a tokio service.
//!
//! ```no_run
//! # async fn run() -> Result<(), statescope_client::Error> {
//! use statescope_client::{Config, Reporter, WorkerReporter};
//! let reporter = Reporter::new(Config::new("http://127.0.0.1:9733"))?;
//! let worker = WorkerReporter::start(&reporter, "worker-1", [("worker_type", "backtest")], std::time::Duration::from_secs(10));
//! worker.job(None, async { Ok::<_, std::io::Error>(()) }).await.ok();
//! # Ok(()) }
//! ```
//!
//! Reporting never awaits the network and never fails: events wait in a
//! bounded queue (the oldest are dropped when it is full, and counted) and one
//! background task sends them in batches, retrying with backoff. Each event
//! has an `id` and a per-machine `seq`, so the exporter applies a retry once.
//! [`Reporter::stats`] counts what happened; [`Reporter::close`] sends what is
//! left, within a deadline.

mod adapters;
mod event;
mod reporter;

pub use adapters::{BreakerReporter, CIRCUIT_BREAKER, WORKER, WorkerReporter};
pub use event::{JobResult, Outcome, state_name};
pub use reporter::{Config, Error, Machine, Reporter, Stats};
