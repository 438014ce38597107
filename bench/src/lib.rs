//! Statescope's benchmark harness: the pieces `bench/run.sh` drives.
//!
//! - [`events`]: the fleet and the event stream, generated deterministically so
//!   the exporter and the Python baseline receive exactly the same events.
//! - [`frames`]: Grafana data frames for the panel benchmarks.
//! - [`client`]: a minimal keep-alive HTTP/1.1 client, the same for both servers.
//! - [`load`]: seeding, timed scrapes, and ingest under concurrent scrapes.
//! - [`stats`]: medians and percentiles.
//! - [`report`]: the one table (metric | ours | baseline | ratio | target | met?).

pub mod client;
pub mod events;
pub mod frames;
pub mod load;
pub mod report;
pub mod stats;
