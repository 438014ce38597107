//! `build_view` end to end, from Grafana-shaped input to what the UI draws.

mod support;

use serde_json::{Value, json};
use statescope_model::{Flow, Severity};
use statescope_panel::view::{CountSource, KindSource, PanelView};
use support::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn with_options(mut input: Value, options: Value) -> Value {
    input["options"] = options;
    input
}

fn node_count(view: &PanelView, kind: usize, state: &str) -> usize {
    view.kinds[kind]
        .nodes
        .iter()
        .find(|n| n.state == state)
        .unwrap()
        .count_now
}

fn state_index(view: &PanelView, kind: usize, state: &str) -> usize {
    view.kinds[kind].nodes.iter().position(|n| n.state == state).unwrap()
}

#[test]
fn statescope_state_one_hot_gives_states_now_and_time_in_state() {
    let view = view(&fixture("statescope_breakers.json"));
    assert_eq!(view.kinds.len(), 1);
    let kind = &view.kinds[0];
    assert_eq!(
        (kind.name.as_str(), kind.source),
        ("circuit_breaker", KindSource::BuiltIn)
    );
    assert_eq!(node_count(&view, 0, "closed"), 2);
    assert_eq!(node_count(&view, 0, "open"), 1);
    assert_eq!(kind.nodes[1].machines_now, [std::sync::Arc::from("stripe/key-2")]);
    assert_eq!(kind.nodes[1].color, "#F2495C", "open is the palette's red");

    let openai = machine(&view, "openai/key-1");
    assert_eq!(openai.state.as_deref(), Some("closed"));
    assert_eq!(openai.severity, Some(Severity::Ok));
    assert_eq!(
        *openai.labels,
        [
            ("instance", "exporter:9733"),
            ("job", "statescope"),
            ("key_id", "key-1"),
            ("provider", "openai")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    // closed 0-30 s, open 30-75 s, half_open 75-90 s, closed 90-120 s.
    let since = openai.since.unwrap();
    assert_eq!(since.start_ms, T0 + 90_000.0);
    assert!(!since.lower_bound && !since.exact, "the change to closed was sampled");
    let h: Vec<_> = openai
        .history
        .iter()
        .map(|s| ((s.start_ms - T0) / 1000.0, (s.end_ms - T0) / 1000.0, s.state_index))
        .collect();
    assert_eq!(
        h,
        [
            (0.0, 30.0, Some(0)),
            (30.0, 75.0, Some(1)),
            (75.0, 90.0, Some(2)),
            (90.0, 120.0, Some(0))
        ]
    );
    assert_eq!(openai.share, [(0, 0.5), (1, 0.375), (2, 0.125)]);

    // Open since before the range: statescope_state_since_timestamp_seconds says exactly when.
    let stripe = machine(&view, "stripe/key-2");
    let since = stripe.since.unwrap();
    assert_eq!(since.start_ms, T0 - 600_000.0);
    assert!(since.exact && !since.lower_bound);

    assert_eq!(view.totals.machines, 3);
    assert_eq!(view.totals.per_severity, [2, 0, 0, 1]);
    assert!(view.warnings.is_empty(), "{:?}", view.warnings);
}

#[test]
fn a_flap_between_scrapes_is_counted_only_through_the_counter() {
    let input = fixture("statescope_breakers.json");
    let view = view(&input);
    let anthropic = machine(&view, "anthropic/key-1");
    assert_eq!(anthropic.history.len(), 1, "the samples show closed throughout");
    assert_eq!(anthropic.transitions_in_range, 3);
    assert_eq!(anthropic.transitions_source, CountSource::Counter);
    let closed_open = view.kinds[0].edges.iter().find(|e| e.from == 0 && e.to == 1).unwrap();
    assert_eq!(closed_open.taken_in_range, 2, "openai and anthropic each tripped once");
    assert_eq!(closed_open.flow, Some(Flow::Normal));

    // Without the counter series, only what the samples show is counted.
    let mut frames = input["frames"].as_array().unwrap().clone();
    frames.retain(|f| f["refId"] != "B");
    let view = support::view(&json!({"frames": frames, "timeRange": input["timeRange"], "now": input["now"]}));
    let anthropic = machine(&view, "anthropic/key-1");
    assert_eq!(
        (anthropic.transitions_in_range, anthropic.transitions_source),
        (0, CountSource::Samples)
    );
    let openai = machine(&view, "openai/key-1");
    assert_eq!(openai.transitions_in_range, 3);
}

/// Drops the samples before `from_ms` after T0 of `machine`'s series in the
/// query `ref_id` (A: states, B: transition counters), as when the exporter
/// creates a series later.
fn appear_at(mut input: Value, ref_id: &str, machine: &str, from_ms: f64) -> Value {
    for frame in input["frames"].as_array_mut().unwrap() {
        if frame["refId"] != ref_id || frame["fields"][1]["labels"]["machine"] != machine {
            continue;
        }
        let times = frame["fields"][0]["values"].as_array().unwrap().clone();
        let keep: Vec<bool> = times.iter().map(|t| t.as_f64().unwrap() >= T0 + from_ms).collect();
        for field in frame["fields"].as_array_mut().unwrap() {
            let values = field["values"].as_array_mut().unwrap();
            let mut k = keep.iter();
            values.retain(|_| *k.next().unwrap());
        }
        frame["length"] = json!(keep.iter().filter(|k| **k).count());
    }
    input
}

#[test]
fn a_counter_created_inside_the_range_counts_from_zero() {
    // anthropic's three counters are first served at 60 s, at 1 each, while
    // the machine itself was scraped from 0 s: each one went 0 -> 1 in range.
    let input = appear_at(fixture("statescope_breakers.json"), "B", "anthropic/key-1", 60_000.0);
    let view = view(&input);
    let anthropic = machine(&view, "anthropic/key-1");
    assert_eq!(
        (anthropic.transitions_in_range, anthropic.transitions_source),
        (3, CountSource::Counter)
    );
    let closed_open = view.kinds[0].edges.iter().find(|e| e.from == 0 && e.to == 1).unwrap();
    assert_eq!(closed_open.taken_in_range, 2, "openai and anthropic each tripped once");

    // A counter already there when the machine is first seen was counted
    // before the range: only its growth in range counts (openai: 4 -> 5).
    let openai = machine(&view, "openai/key-1");
    assert_eq!(openai.transitions_in_range, 3);

    // When the machine and its counters are first seen together at 60 s,
    // while the same exporter was scraped from 0 s with other machines, the
    // exporter created it in range: what its counters hold happened in range.
    let view = support::view(&appear_at(input, "A", "anthropic/key-1", 60_000.0));
    assert_eq!(machine(&view, "anthropic/key-1").transitions_in_range, 3);
}

#[test]
fn flapping_machines_are_flagged_and_sorted_up() {
    // openai/key-1 and anthropic/key-1 each trip once (closed -> open) in the range.
    let input = with_options(fixture("statescope_breakers.json"), json!({"flappingThreshold": 1}));
    let view = view(&input);
    let ids: Vec<_> = view.machines.iter().map(|m| (&*m.id, m.flapping)).collect();
    // stripe is critical; among the ok ones, flapping first, then longest in state.
    assert_eq!(
        ids,
        [
            ("stripe/key-2", false),
            ("anthropic/key-1", true),
            ("openai/key-1", true)
        ]
    );
    assert_eq!(view.totals.flapping, 2);
    let view = support::view(&fixture("statescope_breakers.json"));
    assert!(
        view.machines.iter().all(|m| !m.flapping),
        "one incident is not flapping: the default is 3 trips in 15 minutes"
    );
}

/// Flapping is a rate of trips: two ordinary incidents in an hour (ten
/// transitions, which the old "5 transitions per range" flagged) are not
/// flapping; three trips within a few minutes are; an operator forcing a
/// breaker open and back is not a trip.
#[test]
fn flapping_is_trips_per_window_not_transitions_per_range() {
    let hour = 240; // samples 15 s apart
    let incident = ["open", "half_open", "open", "half_open"];
    let mut two_incidents = vec!["closed"; hour];
    for start in [20, 140] {
        for (i, s) in incident.iter().enumerate() {
            for k in 0..3 {
                two_incidents[start + i * 3 + k] = s;
            }
        }
    }
    let mut cycling = vec!["closed"; hour];
    for start in [100, 112, 124] {
        for k in 0..4 {
            cycling[start + k] = "open";
        }
    }
    let mut operator = vec!["closed"; hour];
    for start in [100, 112, 124, 136] {
        for k in 0..4 {
            operator[start + k] = "forced_open";
        }
    }
    let frames = [
        statescope_machine("circuit_breaker", "incidents", &BREAKER, &two_incidents),
        statescope_machine("circuit_breaker", "cycling", &BREAKER, &cycling),
        statescope_machine("circuit_breaker", "operator", &BREAKER, &operator),
    ]
    .concat();
    let v = view(&input(frames.clone(), json!({}), hour));
    assert_eq!(machine(&v, "incidents").transitions_in_range, 10);
    assert!(!machine(&v, "incidents").flapping, "two incidents an hour apart");
    assert!(machine(&v, "cycling").flapping, "three trips in six minutes");
    assert!(!machine(&v, "operator").flapping, "manual moves are not trips");
    assert_eq!(v.totals.flapping, 1);
    // The window is an option: over an hour, the two incidents make 2 trips.
    let v = view(&input(
        frames,
        json!({"flappingThreshold": 2, "flappingWindowMinutes": 60}),
        hour,
    ));
    assert!(machine(&v, "incidents").flapping);
}

/// Worst first: breakers that opened by themselves come before those an
/// operator forced open (someone already knows about those).
#[test]
fn worst_first_puts_organic_trouble_before_forced_open() {
    let frames = [
        statescope_machine("circuit_breaker", "a-forced", &BREAKER, &["forced_open", "forced_open"]),
        statescope_machine("circuit_breaker", "b-half", &BREAKER, &["half_open", "half_open"]),
        statescope_machine("circuit_breaker", "c-open", &BREAKER, &["open", "open"]),
        statescope_machine("circuit_breaker", "d-closed", &BREAKER, &["closed", "closed"]),
        statescope_machine("circuit_breaker", "e-disabled", &BREAKER, &["disabled", "disabled"]),
    ]
    .concat();
    let v = view(&input(frames, json!({}), 2));
    let ids: Vec<&str> = v.machines.iter().map(|m| &*m.id).collect();
    assert_eq!(ids, ["c-open", "b-half", "a-forced", "e-disabled", "d-closed"]);
}

#[test]
fn search_filter_sort_and_page_size() {
    let base = fixture("statescope_breakers.json");
    let v = view(&with_options(base.clone(), json!({"search": "OpenAI"})));
    assert_eq!(v.machines.len(), 1);
    assert_eq!(v.totals.machines, 1, "the diagram counts what the search matches");
    assert_eq!(node_count(&v, 0, "closed"), 1);

    let v = view(&with_options(
        base.clone(),
        json!({"stateFilter": "closed", "sort": "name"}),
    ));
    let ids: Vec<_> = v.machines.iter().map(|m| &*m.id).collect();
    assert_eq!(ids, ["anthropic/key-1", "openai/key-1"]);
    assert_eq!(
        node_count(&v, 0, "open"),
        1,
        "the state filter leaves the diagram whole"
    );

    let v = view(&with_options(
        base.clone(),
        json!({"sort": "transitions", "maxTiles": 2}),
    ));
    let ids: Vec<_> = v.machines.iter().map(|m| &*m.id).collect();
    assert_eq!(ids, ["anthropic/key-1", "openai/key-1"]);
    assert_eq!(v.machines_hidden, 1);

    let v = view(&with_options(base.clone(), json!({"sort": "time_in_state"})));
    assert_eq!(&*v.machines[0].id, "stripe/key-2");

    let v = view(&with_options(base, json!({"stateFilter": "opne", "sort": "sideways"})));
    assert!(v.machines.is_empty());
    assert_eq!(
        v.warnings,
        [
            "Options: sort `sideways` is not one of worst_first, name, time_in_state, transitions; using worst_first.",
            "Options: state filter `opne` is not a state of any kind shown, so no machine matches.",
        ]
    );
}

#[test]
fn resilience4j_states_are_read_lower_cased_with_metrics_only_added() {
    let view = view(&fixture("resilience4j.json"));
    let kind = &view.kinds[0];
    assert_eq!(kind.name, "circuit_breaker");
    let states: Vec<_> = kind.nodes.iter().map(|n| n.state.as_str()).collect();
    assert_eq!(
        states,
        ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"]
    );
    let a = machine(&view, "backendA");
    assert_eq!(a.state.as_deref(), Some("open"));
    assert_eq!(a.transitions_in_range, 1);
    assert_eq!(a.since.unwrap().start_ms, T0 + 60_000.0);
    assert_eq!(
        *a.labels,
        [("application", "shop"), ("instance", "shop:8080"), ("job", "shop")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let b = machine(&view, "backendB");
    assert_eq!(b.state.as_deref(), Some("half_open"), "HALF_OPEN is lower-cased");
    assert!(b.since.unwrap().lower_bound, "half_open since before the range");
}

#[test]
fn enum_gauge_in_an_instant_table_reads_breaker_values() {
    let view = view(&fixture("enum_table_instant.json"));
    assert_eq!(view.kinds[0].name, "circuit_breaker");
    let states: Vec<_> = view.machines.iter().map(|m| (&*m.id, m.state.as_deref())).collect();
    // Worst first: open (critical), half_open (warning), then the closed ones by name.
    assert_eq!(
        states,
        [
            ("openai/k2", Some("open")),
            ("stripe/k1", Some("half_open")),
            ("openai/k1", Some("closed")),
            ("stripe/k2", Some("closed")),
        ]
    );
}

#[test]
fn envoy_circuit_breaker_open_gauges_read_as_closed_or_open_breakers() {
    // Envoy exports one 0/1 gauge per cluster and resource, 1 while that
    // circuit breaker is open: the enum shape, 0 closed and 1 open.
    let frames = vec![
        envoy_open_gauge("payments", &[0, 0, 1, 1, 0]),
        envoy_open_gauge("search", &[0, 1, 1, 1, 1]),
    ];
    let view = view(&input(frames, json!({}), 5));
    assert_eq!(view.kinds[0].name, "circuit_breaker");
    let states: Vec<_> = view
        .machines
        .iter()
        .map(|m| (&*m.id, m.state.as_deref(), m.transitions_in_range))
        .collect();
    assert_eq!(states, [("search", Some("open"), 1), ("payments", Some("closed"), 2)]);
    assert_eq!((node_count(&view, 0, "closed"), node_count(&view, 0, "open")), (1, 1));
    assert!(view.warnings.is_empty(), "{:?}", view.warnings);
}

#[test]
fn wide_frames_with_value_mappings_define_states_and_colours() {
    let t = times(4);
    let mappings = json!([
        {"type": "value", "options": {
            "10": {"text": "Up", "color": "green", "index": 0},
            "20": {"text": "Degraded", "color": "#abcdef", "index": 1},
            "30": {"text": "Down", "color": "dark-red", "index": 2}}}
    ]);
    let frame = json!({"refId": "A", "name": "gateway_status", "fields": [
        {"name": "Time", "type": "time", "values": t},
        {"name": "eu", "type": "number", "labels": {"gateway": "eu", "env": "prod"},
         "config": {"mappings": mappings}, "values": [10, 10, 20, 30]},
        {"name": "us", "type": "number", "labels": {"gateway": "us", "env": "prod"},
         "config": {"mappings": mappings, "links": [{"title": "Runbook ${__field.labels.gateway}",
            "url": "https://runbooks/${__value.text}?g=${__field.labels.gateway:percentencode}", "targetBlank": true}]},
         "values": [10, 7, 10, 10]}
    ]});
    let view = view(&input(vec![frame], json!({}), 4));
    let kind = &view.kinds[0];
    assert_eq!(
        (kind.name.as_str(), kind.source),
        ("gateway_status", KindSource::FromData)
    );
    let nodes: Vec<_> = kind
        .nodes
        .iter()
        .map(|n| (n.state.as_str(), n.color.as_str(), n.severity))
        .collect();
    assert_eq!(
        nodes,
        [
            ("up", "#73BF69", Severity::Ok),
            ("degraded", "#abcdef", Severity::Warning),
            ("down", "#C4162A", Severity::Critical)
        ]
    );
    let seen: Vec<_> = kind
        .edges
        .iter()
        .map(|e| (e.from, e.to, e.flow.is_some(), e.taken_in_range))
        .collect();
    assert_eq!(
        seen,
        [(0, 1, false, 1), (1, 2, false, 1)],
        "a kind from the data allows nothing: edges are dashed"
    );
    assert_eq!(&*view.machines[0].id, "eu", "only the varying label identifies");
    let us = machine(&view, "us");
    assert_eq!(us.links[0].title, "Runbook us");
    assert_eq!(us.links[0].url, "https://runbooks/up?g=us");
    assert!(us.links[0].target_blank);
    assert_eq!(
        us.history.iter().filter(|s| s.state_index.is_none()).count(),
        1,
        "7 is a gap"
    );
    assert_eq!(
        view.warnings,
        [
            "Series `gateway_status{env=\"prod\", gateway=\"us\"}` has values 7 that are not states: add value mappings or choose shape \"one_hot\"."
        ]
    );
}

#[test]
fn a_custom_kind_is_rebuilt_from_transition_allowed_and_severity_series() {
    let states = ["queued", "running", "done", "failed"];
    let mut frames = statescope_machine(
        "payment_job",
        "job-1",
        &states,
        &["queued", "running", "running", "failed"],
    );
    frames.extend(statescope_machine(
        "payment_job",
        "job-2",
        &states,
        &["queued", "queued", "running", "done"],
    ));
    let t = times(4);
    for (from, to) in [
        ("queued", "running"),
        ("running", "done"),
        ("queued", "failed"),
        ("running", "failed"),
    ] {
        frames.push(prom_frame(
            "B",
            &[
                ("__name__", "statescope_transition_allowed"),
                ("kind", "payment_job"),
                ("from", from),
                ("to", to),
            ],
            &t,
            vec![json!(1); 4],
        ));
    }
    frames.push(prom_frame(
        "B",
        &[
            ("__name__", "statescope_state_severity"),
            ("kind", "payment_job"),
            ("state", "failed"),
        ],
        &t,
        vec![json!(3); 4],
    ));
    let view = view(&input(frames, json!({}), 4));
    let kind = &view.kinds[0];
    assert_eq!(
        (kind.name.as_str(), kind.source),
        ("payment_job", KindSource::FromMetrics)
    );
    assert_eq!(kind.nodes[kind.initial].state, "queued");
    let failed = state_index(&view, 0, "failed");
    assert_eq!(kind.nodes[failed].severity, Severity::Critical);
    assert_eq!(kind.nodes[failed].color, "#F2495C", "severity colour from the palette");
    assert_eq!(kind.edges.len(), 4);
    assert!(kind.edges.iter().all(|e| e.flow == Some(Flow::Normal)));
    let queued = state_index(&view, 0, "queued");
    let running = state_index(&view, 0, "running");
    assert!(
        kind.nodes[queued].x < kind.nodes[running].x,
        "laid out from the initial state"
    );
    assert_eq!(&*view.machines[0].id, "job-1", "failed sorts first");
}

#[test]
fn identity_labels_are_detected_from_what_varies() {
    // A generic one-hot state set: `job` is the same everywhere, `instance` tells machines apart.
    let t = times(2);
    let mut frames = Vec::new();
    for inst in ["db-1", "db-2"] {
        for (state, v) in [("primary", 1), ("replica", 0)] {
            let v = if inst == "db-2" { 1 - v } else { v };
            frames.push(prom_frame(
                "A",
                &[
                    ("__name__", "pg_role"),
                    ("job", "pg"),
                    ("instance", inst),
                    ("state", state),
                ],
                &t,
                vec![json!(v); 2],
            ));
        }
    }
    let view = view(&input(frames.clone(), json!({}), 2));
    let got: Vec<_> = view.machines.iter().map(|m| (&*m.id, m.state.as_deref())).collect();
    assert_eq!(got, [("db-1", Some("primary")), ("db-2", Some("replica"))]);
    assert_eq!(view.kinds[0].name, "pg_role");

    // Told to identify by `job` only, both instances' series collapse into one machine.
    let view = support::view(&input(frames, json!({"identityLabels": "job"}), 2));
    assert_eq!(view.machines.len(), 1);
    assert!(
        view.warnings[0].starts_with("2 series of pg_role repeat a machine"),
        "{:?}",
        view.warnings
    );
}

#[test]
fn every_problem_reads_as_one_line_saying_what_was_expected() {
    let cases: Vec<(Value, &str)> = vec![
        (
            input(vec![], json!({}), 2),
            "No data: the query returned no series. Point a query at statescope_state, \
             resilience4j_circuitbreaker_state, circuit_breaker_state or a gauge with value mappings.",
        ),
        (
            input(
                vec![prom_frame(
                    "A",
                    &[("__name__", "statescope_transitions_total")],
                    &times(2),
                    vec![json!(1); 2],
                )],
                json!({}),
                2,
            ),
            "No state series: the query returned only statescope_transitions_total. Add a query for \
             statescope_state, resilience4j_circuitbreaker_state, circuit_breaker_state or a gauge with value mappings.",
        ),
        (
            input(
                statescope_machine("circuit_breaker", "m", &BREAKER, &["open"]),
                json!({}),
                1,
            ),
            "Time range is empty (1700000000000 to 1700000000000): pick a dashboard time range that ends after it starts.",
        ),
        (
            input(
                vec![prom_frame(
                    "A",
                    &[("__name__", "up"), ("job", "api")],
                    &times(2),
                    vec![json!(7); 2],
                )],
                json!({}),
                2,
            ),
            "Series `up{job=\"api\"}` has values 7 that are not states: add value mappings or choose shape \"one_hot\".",
        ),
        (
            input(
                vec![prom_frame(
                    "A",
                    &[("__name__", "pg_replication_is_replica"), ("job", "pg")],
                    &times(2),
                    vec![json!(0), json!(1)],
                )],
                json!({}),
                2,
            ),
            "Series `pg_replication_is_replica{job=\"pg\"}` has values 0, 1 that are not states: no value mappings \
             say which state each is; add value mappings that name a state for each value (e.g. 0 → idle, 1 → busy).",
        ),
        (
            input(
                statescope_machine("circuit_breaker", "m", &BREAKER, &["open", "open"]),
                json!({"identityLabels": ["foo"]}),
                2,
            ),
            "Options: identity label `foo` is on no series (labels seen: instance, job, kind, machine, state).",
        ),
        (
            input(
                vec![prom_frame(
                    "A",
                    &[("__name__", "up"), ("job", "api")],
                    &times(2),
                    vec![json!(1); 2],
                )],
                json!({"shape": "one_hot"}),
                2,
            ),
            "Options: shape \"one_hot\" needs a `state` label holding the state on every series (labels seen: job); \
             set the state label option or choose shape \"enum\".",
        ),
        (
            input(
                statescope_machine("circuit_breaker", "m", &BREAKER, &["open", "open"]),
                json!({"kind": "payment_job"}),
                2,
            ),
            "Options: kind `payment_job` is not built in (circuit_breaker, worker) and no statescope_transition_allowed \
             series describe it: add a query for statescope_transition_allowed{kind=\"payment_job\"}.",
        ),
        (
            {
                let names: Vec<Value> = (0..70).map(|i| json!(format!("step{i}"))).collect();
                let frame = json!({"name": "pipeline_step", "fields": [
                    {"name": "Time", "type": "time", "values": (0..70).map(|i| T0 + i as f64 * STEP).collect::<Vec<_>>()},
                    {"name": "step", "type": "string", "values": names}]});
                input(vec![frame], json!({}), 70)
            },
            "Kind `pipeline_step` cannot be drawn: kind \"pipeline_step\" has 70 states; at most 64 are allowed.",
        ),
    ];
    for (mut input, expected) in cases {
        if expected.starts_with("Time range") {
            input["timeRange"]["to"] = input["timeRange"]["from"].clone();
        }
        let err = try_view(&input).unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.contains('\n'));
    }
}

#[test]
fn a_manual_move_is_drawn_as_manual_and_a_move_no_flow_has_as_not_allowed() {
    // pybreaker's close() on an open breaker: a manual move of circuit_breaker.
    let mut frames = statescope_machine("circuit_breaker", "b1", &BREAKER, &["closed", "open", "open", "closed"]);
    // A worker seen going from offline straight to busy: neither flow of the worker kind has it.
    let worker = ["starting", "idle", "busy", "draining", "offline"];
    frames.extend(statescope_machine(
        "worker",
        "w1",
        &worker,
        &["offline", "offline", "busy", "busy"],
    ));
    let view = view(&input(frames, json!({}), 4));
    let flow = |kind: &str, from: &str, to: &str| {
        let k = view.kinds.iter().position(|k| k.name == kind).unwrap();
        let (from, to) = (state_index(&view, k, from), state_index(&view, k, to));
        let edge = view.kinds[k].edges.iter().find(|e| (e.from, e.to) == (from, to));
        edge.map(|e| (e.flow, e.taken_in_range))
    };
    assert_eq!(flow("circuit_breaker", "closed", "open"), Some((Some(Flow::Normal), 1)));
    assert_eq!(flow("circuit_breaker", "open", "closed"), Some((Some(Flow::Manual), 1)));
    assert_eq!(
        flow("circuit_breaker", "closed", "half_open"),
        None,
        "manual moves not taken are not drawn"
    );
    assert_eq!(flow("worker", "offline", "busy"), Some((None, 1)));
}
