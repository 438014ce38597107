//! The exporter's hot paths in process, on the load test's fleet of breakers
//! (labels `provider`/`key_id`, tripped open, half of them half-open, a call
//! each): encoding `/metrics` (Prometheus text, compat series on, in the
//! 256 KiB pieces the server streams) for 1k, 10k and 100k machines, and applying batches of 100 events
//! of the load test's stream (4 in 5 call outcomes, 1 in 5 transitions) to a
//! 10k fleet. bench/python/baseline.py times the same work in Python.
//!
//! `encode_gzip` times what a scrape asking for gzip costs (Prometheus asks by
//! default): the 10k fleet encoded as served, in 256 KiB pieces, each piece
//! compressed as it comes (`api::scrape::Gzip`), beside the same pieces uncompressed,
//! and beside a copy of the same body from one buffer per machine into pieces
//! (`copy`): the best a cache of each machine's encoded lines could do, with
//! no lock, no check of what changed and every machine unchanged.
//!
//! `encode_vs_crate` times our encoder beside the prometheus-client crate's
//! registry and `encode` holding exactly the series we serve for the 10k fleet
//! (checked equal before timing), both writing OpenMetrics: the crate's only
//! text format, and the one Prometheus asks for.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use statescope_bench::crate_baseline;
use statescope_exporter::api::scrape::Gzip;
use statescope_exporter::config::Compat;
use statescope_exporter::metrics::{Emit, Format, encode, encode_chunked};
use statescope_exporter::store::{Applied, ApplyError, Store};
use statescope_exporter::telemetry::Telemetry;

mod common;
use common::{BATCH, NOW, decode, seeded_store, stream_period};

/// Pieces of a body as `/metrics` streams them.
const PIECE: usize = 256 * 1024;

/// The body in Prometheus text (what the load test's scraper asks for), as
/// `/metrics` streams it: in pieces handed to `emit` as they are written.
fn served(store: &Store, telemetry: &Telemetry, emit: &mut Emit<'_>) {
    encode_chunked(black_box(store), telemetry, Compat::On, Format::Prometheus, PIECE, emit)
}

fn encode_metrics(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_metrics");
    group.sample_size(10);
    let telemetry = Telemetry::default();
    for machines in statescope_bench::bench_sizes(&[1_000, 10_000, 100_000]) {
        let store = seeded_store(machines);
        assert_eq!(store.machines().len(), machines, "the whole fleet is in the store");
        // As /metrics serves it: in pieces handed on as they are written. A
        // whole 100k body (230 MB) in one string would time the kernel
        // mapping and zeroing fresh pages, which the server never does.
        group.bench_with_input(BenchmarkId::from_parameter(machines), &store, |b, store| {
            b.iter(|| {
                let mut bytes = 0;
                served(store, &telemetry, &mut |p| {
                    bytes += p.len();
                    p
                });
                bytes
            })
        });
    }
    group.finish();
}

fn encode_gzip(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_gzip");
    group.sample_size(10);
    let telemetry = Telemetry::default();
    for machines in statescope_bench::bench_sizes(&[10_000]) {
        let store = seeded_store(machines);
        // The sizes, for the table: bench/run.sh keeps `statescope-record` lines.
        let (mut identity, mut gz) = (0, Gzip::new());
        let mut gzip = 0;
        served(&store, &telemetry, &mut |p| {
            identity += p.len();
            gzip += gz.push(&p).map_or(0, |c| c.len());
            p
        });
        gzip += gz.finish().len();
        println!(
            "statescope-record gzip.ours {}",
            serde_json::json!({"machines": machines, "identity_bytes": identity, "gzip_bytes": gzip})
        );
        group.bench_with_input(BenchmarkId::new("identity", machines), &store, |b, store| {
            b.iter(|| {
                let mut bytes = 0;
                served(store, &telemetry, &mut |p| {
                    bytes += p.len();
                    p
                });
                bytes
            })
        });
        let cached = per_machine(&store, &telemetry, machines);
        group.bench_with_input(BenchmarkId::new("copy", machines), &cached, |b, cached| {
            b.iter(|| copied(black_box(cached)))
        });
        group.bench_with_input(BenchmarkId::new("gzip", machines), &store, |b, store| {
            b.iter(|| {
                let mut gz = Gzip::new();
                let mut bytes = 0;
                served(store, &telemetry, &mut |p| {
                    bytes += gz.push(&p).map_or(0, |c| c.len());
                    p
                });
                bytes + gz.finish().len()
            })
        });
    }
    group.finish();
}

/// The served body cut at line ends into `machines` parts of about equal
/// size, each in its own allocation: what a cache of each machine's encoded
/// lines would hold (a breaker's lines are about this size, ~2.2 KB).
fn per_machine(store: &Store, telemetry: &Telemetry, machines: usize) -> Vec<Box<str>> {
    let body = encode(store, telemetry, Compat::On, Format::Prometheus);
    let part = body.len().div_ceil(machines.max(1));
    let mut parts = Vec::with_capacity(machines + 1);
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let end = rest[part.min(rest.len())..]
            .find('\n')
            .map_or(rest.len(), |i| part.min(rest.len()) + i + 1);
        parts.push(Box::from(&rest[..end]));
        rest = &rest[end..];
    }
    parts
}

/// The cached parts copied into 256 KiB pieces, handed on as `/metrics` streams them.
fn copied(cached: &[Box<str>]) -> usize {
    let (mut bytes, mut piece) = (0, String::with_capacity(PIECE + 4096));
    for part in cached {
        piece.push_str(part);
        if piece.len() >= PIECE {
            bytes += black_box(&piece).len();
            piece.clear();
        }
    }
    bytes + black_box(piece).len()
}

fn encode_vs_crate(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_vs_crate");
    group.sample_size(10);
    let telemetry = Telemetry::default();
    for machines in statescope_bench::bench_sizes(&[10_000]) {
        let store = seeded_store(machines);
        let ours = encode(&store, &telemetry, Compat::On, Format::OpenMetrics);
        let registry = crate_baseline::registry_from_openmetrics(&ours).expect("our body registers in the crate");
        let theirs = crate_baseline::encode(&registry);
        // All but the counters' `_created` lines, which the crate cannot write:
        // ours does that work on top, so the ratio understates our encoder.
        let series = |body: &str| {
            let mut all = crate_baseline::series(body).expect("both bodies parse");
            all.retain(|(name, _, _)| !crate_baseline::is_created(name));
            all
        };
        assert!(
            series(&theirs) == series(&ours),
            "the prometheus-client registry does not serve the same series as our encoder"
        );
        group.bench_with_input(BenchmarkId::new("ours", machines), &store, |b, store| {
            b.iter(|| encode(black_box(store), &telemetry, Compat::On, Format::OpenMetrics))
        });
        group.bench_with_input(
            BenchmarkId::new("prometheus_client", machines),
            &registry,
            |b, registry| b.iter(|| crate_baseline::encode(black_box(registry))),
        );
    }
    group.finish();
}

fn apply_events(c: &mut Criterion) {
    // The first size when STATESCOPE_BENCH_SIZES is set (the smoke run's small one).
    let machines = statescope_bench::bench_sizes(&[10_000])[0];
    let bodies = stream_period(machines);
    // Like the Python baseline's apply: decode the request body, then apply it.
    bench_batches(c, "apply_events", machines, &bodies, |store, body| {
        store.apply(&decode(body), NOW)
    });
    let batches: Vec<_> = bodies.iter().map(|b| decode(b)).collect();
    bench_batches(c, "store_apply", machines, &batches, |store, events| {
        store.apply(black_box(events), NOW)
    });
}

/// Times `apply` of one batch on a seeded fleet; each iteration takes the next
/// batch of the stream, so every transition is legal. A refused batch would
/// time the wrong thing, hence the expect.
fn bench_batches<T>(
    c: &mut Criterion,
    group: &str,
    machines: usize,
    batches: &[T],
    apply: impl Fn(&mut Store, &T) -> Result<Vec<Applied>, ApplyError>,
) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut store = seeded_store(machines);
    let mut next = 0;
    group.bench_function(BenchmarkId::from_parameter(BATCH), |b| {
        b.iter(|| {
            let batch = &batches[next % batches.len()];
            next += 1;
            apply(&mut store, batch).expect("the stream's batches apply")
        })
    });
    group.finish();
}

criterion_group!(benches, encode_metrics, encode_gzip, encode_vs_crate, apply_events);
criterion_main!(benches);
