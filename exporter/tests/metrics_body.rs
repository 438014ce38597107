//! The whole `/metrics` body of a fixed fleet, byte for byte, in both formats
//! and every compat setting, against bodies captured before the encoder was
//! split into collectors (issue 16): a family moved, a line reordered or a
//! value written differently shows here as the first differing line.
//!
//! The fleet covers every family: breakers with calls, failures, trips and a
//! manual move; workers with jobs (with and without queue waits, two worker
//! types), heartbeats and an expiry; a custom kind from the config file; label
//! values that need escaping. The process's own figures (CPU, memory, build
//! revision) change between runs and are blanked.
//!
//! `STATESCOPE_BLESS=1 cargo test -p statescope-exporter --test metrics_body`
//! rewrites the files, for a change that means to alter the body (say so in
//! the commit).

use std::path::Path;

use statescope_exporter::config::{Compat, Config};
use statescope_exporter::events::RawEvent;
use statescope_exporter::metrics::{Format, encode};
use statescope_exporter::store::Store;
use statescope_exporter::telemetry::Telemetry;

const CONFIG: &str = r#"
identity_labels = ["provider", "key_id", "worker_type", "service"]

[[kinds]]
name = "payment_job"
initial = "queued"
states = [{ name = "queued" }, { name = "running" }, { name = "failed", severity = "critical" }, { name = "done" }]
transitions = [["queued", "running"], ["running", "done"], ["*", "failed"]]
"#;

fn batch(store: &mut Store, now: f64, events: serde_json::Value) {
    let events: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| RawEvent::parse(e.clone()).unwrap())
        .collect();
    store.apply(&events, now).unwrap();
}

/// A fleet built the same way every time (times are fixed).
fn fleet() -> Store {
    let config = Config::parse(Path::new("golden.toml"), CONFIG).unwrap();
    let mut store = Store::new(config.catalog, config.limits.store());
    let cb = |m: &str| serde_json::json!({"provider": "openai", "key_id": m});
    batch(
        &mut store,
        1_800_000_000.0,
        serde_json::json!([
            {"type": "transition", "kind": "circuit_breaker", "machine": "a", "to": "open", "labels": cb("a")},
            {"type": "call", "kind": "circuit_breaker", "machine": "a", "outcome": "failure", "failure_count": 5},
            {"type": "call", "kind": "circuit_breaker", "machine": "a", "outcome": "timeout"},
            {"type": "heartbeat", "kind": "circuit_breaker", "machine": "b", "labels": {"provider": "anth\"ropic", "key_id": "k\\2"}},
            {"type": "call", "kind": "circuit_breaker", "machine": "c", "outcome": "success"},
            {"type": "job", "kind": "worker", "machine": "w1", "result": "succeeded", "duration_seconds": 2.0, "labels": {"worker_type": "gpu"}},
            {"type": "job", "kind": "worker", "machine": "w2", "result": "failed", "duration_seconds": 0.3, "queue_seconds": 12.5, "labels": {"worker_type": "cpu"}},
            {"type": "heartbeat", "kind": "worker", "machine": "w3"},
            {"type": "transition", "kind": "payment_job", "machine": "p1", "to": "running", "labels": {"service": "billing"}},
        ]),
    );
    batch(
        &mut store,
        1_800_000_012.345,
        serde_json::json!([
            {"type": "transition", "kind": "circuit_breaker", "machine": "a", "to": "half_open"},
            {"type": "transition", "kind": "circuit_breaker", "machine": "a", "to": "open"},
            {"type": "transition", "kind": "circuit_breaker", "machine": "c", "to": "forced_open"},
            {"type": "transition", "kind": "worker", "machine": "w1", "to": "busy"},
            {"type": "transition", "kind": "payment_job", "machine": "p1", "to": "queued"},
            {"type": "heartbeat", "kind": "worker", "machine": "w1"},
        ]),
    );
    let expired = store.heartbeat_expired(1_800_000_100.0, 30.0);
    assert!(!expired.is_empty(), "some worker expires");
    store.apply(&expired, 1_800_000_100.0).unwrap();
    store
}

/// The body with what changes from run to run blanked. The exporter's own
/// registry (prometheus-client) lists a family's label sets in hash order:
/// those runs of samples are sorted.
fn stable(body: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for l in body.lines() {
        let l = if l.starts_with("process_") {
            format!("{} <value>", l.rsplit_once(' ').unwrap().0)
        } else if l.starts_with("statescope_build_info{") {
            "statescope_build_info{<build>} 1".into()
        } else {
            l.to_owned()
        };
        if l.starts_with("statescope_exporter_") && !l.starts_with("statescope_exporter_machines") {
            run.push(l);
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(l);
    }
    run.sort();
    out.append(&mut run);
    out.into_iter().map(|l| l + "\n").collect()
}

#[test]
fn the_metrics_body_of_a_fixed_fleet_is_unchanged() {
    let store = fleet();
    let telemetry = Telemetry::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("STATESCOPE_BLESS").is_some();
    for (format, ext) in [(Format::Prometheus, "txt"), (Format::OpenMetrics, "om.txt")] {
        for (compat, name) in [(Compat::Off, "off"), (Compat::On, "on"), (Compat::Full, "full")] {
            let body = stable(&encode(&store, &telemetry, compat, format));
            let file = dir.join(format!("metrics-compat-{name}.{ext}"));
            if bless {
                std::fs::write(&file, &body).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if body != want {
                let (n, (got, exp)) = body
                    .lines()
                    .zip(want.lines())
                    .enumerate()
                    .find(|(_, (g, w))| g != w)
                    .unwrap_or((0, ("(length differs)", "")));
                panic!("{}: line {} differs\n got: {got}\nwant: {exp}", file.display(), n + 1);
            }
        }
    }
}
