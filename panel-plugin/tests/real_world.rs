//! Data as real setups send it (several exporters or replicas, several kinds in one
//! query, partial or colour-only value mappings, mixed query steps), each case
//! once drawn wrong.
mod support;

use serde_json::json;
use support::*;

/// Two exporters each define the custom kind `payment_job`: its severity
/// series arrives twice (one per `instance`). The panel should still draw.
#[test]
fn duplicate_severity_series_from_two_exporters() {
    let states = ["queued", "running", "done", "failed"];
    let mut frames = statescope_machine("payment_job", "job-1", &states, &["queued", "running", "failed"]);
    let t = times(3);
    for inst in ["exp-a:9733", "exp-b:9733"] {
        for (from, to) in [("queued", "running"), ("running", "done"), ("running", "failed")] {
            frames.push(prom_frame(
                "B",
                &[
                    ("__name__", "statescope_transition_allowed"),
                    ("instance", inst),
                    ("kind", "payment_job"),
                    ("from", from),
                    ("to", to),
                ],
                &t,
                vec![json!(1); 3],
            ));
        }
        frames.push(prom_frame(
            "B",
            &[
                ("__name__", "statescope_state_severity"),
                ("instance", inst),
                ("kind", "payment_job"),
                ("state", "failed"),
            ],
            &t,
            vec![json!(3); 3],
        ));
    }
    let v = try_view(&input(frames, json!({}), 3));
    assert!(v.is_ok(), "panel fails: {:?}", v.err());
}

/// One `statescope_state` query holding a breaker and a worker: each kind's
/// diagram should hold only its own states.
#[test]
fn two_kinds_in_one_query_keep_their_own_states() {
    let mut frames = statescope_machine("circuit_breaker", "cb-1", &BREAKER, &["closed", "open", "open"]);
    let worker = ["starting", "idle", "busy", "draining", "offline"];
    frames.extend(statescope_machine("worker", "w-1", &worker, &["idle", "busy", "idle"]));
    let v = view(&input(frames, json!({}), 3));
    for k in &v.kinds {
        let names: Vec<&str> = k.nodes.iter().map(|n| n.state.as_str()).collect();
        // The built-in breaker has six states (with Resilience4j's metrics_only), the worker five.
        let want = if k.name == "circuit_breaker" { 6 } else { 5 };
        assert_eq!(names.len(), want, "kind {} has nodes {:?}", k.name, names);
    }
}

/// A 1-based health gauge with value mappings 1 healthy, 2 degraded, 3 down.
/// A 0 (not mapped) must not be shown as a mapped state.
#[test]
fn unmapped_value_is_not_read_as_a_state_position() {
    let t = times(3);
    let mut f = prom_frame(
        "A",
        &[("__name__", "service_health"), ("service", "api")],
        &t,
        vec![json!(1), json!(1), json!(0)],
    );
    f["fields"][1]["config"]["mappings"] = json!([{"type": "value", "options": {
        "1": {"text": "Healthy", "index": 0}, "2": {"text": "Degraded", "index": 1}, "3": {"text": "Down", "index": 2}}}]);
    let v = view(&input(vec![f], json!({}), 3));
    let m = &v.machines[0];
    assert_eq!(m.state, None, "0 is not mapped, yet shown as {:?}", m.state);
}

/// Resilience4j in an app with two replicas: the breaker `payments` exists
/// once per instance; one is open, the other closed.
#[test]
fn resilience4j_replicas_are_separate_machines() {
    let states = ["closed", "open", "half_open", "disabled", "forced_open", "metrics_only"];
    let t = times(3);
    let mut frames = Vec::new();
    for (inst, now) in [("10.0.0.1:8080", "closed"), ("10.0.0.2:8080", "open")] {
        for s in states {
            frames.push(prom_frame(
                "A",
                &[
                    ("__name__", "resilience4j_circuitbreaker_state"),
                    ("application", "orders"),
                    ("instance", inst),
                    ("job", "orders"),
                    ("name", "payments"),
                    ("state", s),
                ],
                &t,
                vec![json!(if s == now { 1 } else { 0 }); 3],
            ));
        }
    }
    let v = view(&input(frames, json!({}), 3));
    let open = v.kinds[0].nodes.iter().find(|n| n.state == "open").unwrap().count_now;
    assert_eq!((v.totals.machines, open), (2, 1), "warnings: {:?}", v.warnings);
}

/// an empty frame from a second query (no data) beside real data.
#[test]
fn empty_frame_adds_no_machine() {
    let mut frames = statescope_machine("circuit_breaker", "cb-1", &BREAKER, &["closed", "closed", "closed"]);
    frames.push(json!({"refId": "B", "fields": [
        {"name": "Time", "type": "time", "values": []},
        {"name": "Value", "type": "number", "values": []}]}));
    let v = view(&input(frames, json!({}), 3));
    let ids: Vec<_> = v.machines.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["cb-1"], "warnings {:?}", v.warnings);
}

/// transitions counter queried with a coarser step (Min step 1m) than
/// the states (15 s). The counter sat at 40 all along: no transition in range.
#[test]
fn counter_at_a_coarser_step_is_not_counted_from_zero() {
    let frames_a = statescope_machine("circuit_breaker", "cb-1", &BREAKER, &["closed"; 9]);
    let mut frames = frames_a;
    // States: T0 .. T0+120 s every 15 s. Counter every 60 s, first in range at T0+60 s
    // (its aligned start T0-?; here simply T0+60, T0+120).
    let mut f = prom_frame(
        "B",
        &[
            ("__name__", "statescope_transitions_total"),
            ("kind", "circuit_breaker"),
            ("machine", "cb-1"),
            ("from", "closed"),
            ("to", "open"),
        ],
        &[T0 - 0.0 + 60_000.0, T0 + 120_000.0],
        vec![json!(40), json!(40)],
    );
    f["fields"][0]["config"]["interval"] = json!(60_000.0);
    frames.push(f);
    let v = view(&input(frames, json!({}), 9));
    assert_eq!(machine(&v, "cb-1").transitions_in_range, 0);
}

/// an Envoy open gauge (0/1) whose value mappings only set colours
/// (Grafana lets a mapping have a colour and no display text).
#[test]
fn colour_only_value_mappings_still_read_breaker_values() {
    let mut f = envoy_open_gauge("payments", &[0, 1, 1]);
    f["fields"][1]["config"]["mappings"] = json!([{"type": "value", "options": {
        "0": {"color": "green", "index": 0}, "1": {"color": "red", "index": 1}}}]);
    let v = try_view(&input(vec![f], json!({}), 3));
    let v = v.unwrap_or_else(|e| panic!("panel error: {e}"));
    assert_eq!(
        v.machines[0].state.as_deref(),
        Some("open"),
        "warnings {:?}",
        v.warnings
    );
}

/// Envoy open gauge with one mapping, 1 -> "Tripped"; 0 is left unmapped:
/// the panel says so rather than reading 0 as the first mapped state.
#[test]
fn a_partial_mapping_does_not_read_an_unmapped_zero_as_the_first_mapped_state() {
    let mut f = envoy_open_gauge("payments", &[0, 0, 0]);
    f["fields"][1]["config"]["mappings"] =
        json!([{"type": "value", "options": {"1": {"text": "Tripped", "color": "red", "index": 0}}}]);
    let problem = try_view(&input(vec![f], json!({}), 3)).map(|v| v.machines[0].state.clone());
    let message = problem.expect_err("value 0 all along: not a state").to_string();
    assert!(message.contains("values 0 that are not states"), "{message}");
}

/// The exporter is scraped by two jobs: every series arrives twice, differing
/// only in `job`. States are de-duplicated; transitions should be too.
#[test]
fn double_scraped_exporter_counts_each_transition_once() {
    let mut frames = Vec::new();
    for job in ["statescope", "kubernetes-pods"] {
        let mut fs = statescope_machine("circuit_breaker", "cb-1", &BREAKER, &["closed", "open", "open"]);
        for f in &mut fs {
            f["fields"][1]["labels"]["job"] = json!(job);
        }
        frames.extend(fs);
        frames.push(prom_frame(
            "B",
            &[
                ("__name__", "statescope_transitions_total"),
                ("job", job),
                ("kind", "circuit_breaker"),
                ("machine", "cb-1"),
                ("from", "closed"),
                ("to", "open"),
            ],
            &times(3),
            vec![json!(4), json!(5), json!(5)],
        ));
    }
    let v = view(&input(frames, json!({}), 3));
    assert_eq!(machine(&v, "cb-1").transitions_in_range, 1, "warnings {:?}", v.warnings);
}
