//! Statescope's benchmark harness: the pieces `bench/run.sh` drives.
//!
//! - [`events`]: the fleet and the event stream, generated deterministically so
//!   the exporter and the Python baseline receive exactly the same events.
//! - [`frames`]: Grafana data frames for the panel benchmarks.
//! - [`crate_baseline`]: the prometheus-client crate's registry holding the series the
//!   exporter serves, the second encode baseline.
//! - [`client`]: a minimal keep-alive HTTP/1.1 client, the same for both servers.
//! - [`floor`]: the exporter's HTTP stack serving a pre-encoded body (the transfer floor).
//! - [`load`]: seeding, timed scrapes, and ingest under concurrent scrapes.
//! - [`stats`]: medians and percentiles.
//! - [`report`]: the one table (metric | ours | baseline | ratio | target | met?).

pub mod client;
pub mod crate_baseline;
pub mod events;
pub mod floor;
pub mod frames;
pub mod load;
pub mod report;
pub mod stats;

/// Fleet sizes a criterion bench runs: `defaults`, unless `STATESCOPE_BENCH_SIZES`
/// (comma-separated) says otherwise; the smoke run sets it small, since in test
/// mode each benchmark still builds its inputs.
pub fn bench_sizes(defaults: &[usize]) -> Vec<usize> {
    std::env::var("STATESCOPE_BENCH_SIZES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| defaults.to_vec())
}
