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
    let ids: Vec<_> = v.machines.iter().map(|m| &*m.id).collect();
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

/// celery-exporter (danihodovic/celery-exporter) serves, per worker host,
/// `celery_worker_up` (1 while heartbeats arrive, set to 0 when the worker
/// is forgotten) and `celery_worker_tasks_active` (tasks in hand), labelled
/// `hostname` (the part of the Celery node name after `@`). `up` is the
/// series' own value per step, `active` the tasks in hand.
fn celery_worker(host: &str, up: &[u8], active: &[u8]) -> Vec<serde_json::Value> {
    let t = times(up.len());
    let labels = |name| {
        [
            ("__name__", name),
            ("hostname", host),
            ("instance", "celery-exporter:9808"),
            ("job", "celery-exporter"),
        ]
    };
    vec![
        prom_frame(
            "A",
            &labels("celery_worker_up"),
            &t,
            up.iter().map(|v| json!(v)).collect(),
        ),
        prom_frame(
            "B",
            &labels("celery_worker_tasks_active"),
            &t,
            active.iter().map(|v| json!(v)).collect(),
        ),
    ]
}

/// Eight workers, six of them gone (forgotten: up 0, active 0), one busy
/// with 3 tasks, one idle; `celery_queue_length` rides along in the query.
fn celery_fleet() -> Vec<serde_json::Value> {
    let mut frames = Vec::new();
    for i in 1..=6 {
        frames.extend(celery_worker(&format!("worker-{i}"), &[1, 1, 0, 0], &[1, 0, 0, 0]));
    }
    frames.extend(celery_worker("worker-7", &[1, 1, 1, 1], &[0, 2, 2, 3]));
    frames.extend(celery_worker("worker-8", &[0, 1, 1, 1], &[0, 0, 1, 0]));
    frames.push(prom_frame(
        "C",
        &[
            ("__name__", "celery_queue_length"),
            ("instance", "celery-exporter:9808"),
            ("job", "celery-exporter"),
            ("queue_name", "celery"),
        ],
        &times(4),
        vec![json!(0), json!(4), json!(9), json!(2)],
    ));
    frames
}

#[test]
fn celery_workers_are_offline_idle_or_busy_without_configuration() {
    let v = view(&input(celery_fleet(), json!({"sort": "name"}), 4));
    let got: Vec<(&str, Option<&str>)> = v.machines.iter().map(|m| (&*m.id, m.state.as_deref())).collect();
    let mut expected: Vec<(String, Option<&str>)> = (1..=6).map(|i| (format!("worker-{i}"), Some("offline"))).collect();
    expected.push(("worker-7".into(), Some("busy")));
    expected.push(("worker-8".into(), Some("idle")));
    let expected: Vec<(&str, Option<&str>)> = expected.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    assert_eq!(got, expected, "warnings {:?}", v.warnings);
    assert_eq!(v.kinds.len(), 1);
    assert_eq!(v.kinds[0].name, "worker");
    // worker-8: offline, idle, busy, idle.
    assert_eq!(machine(&v, "worker-8").transitions_in_range, 3);
    // The queue length is no machine: said once, drawn nowhere.
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(
        v.warnings[0].contains("celery_queue_length") && v.warnings[0].contains("value mappings"),
        "{:?}",
        v.warnings
    );
}

#[test]
fn an_up_gauge_alone_is_up_or_down_not_a_breaker() {
    let frames: Vec<_> = celery_fleet()
        .into_iter()
        .filter(|f| f["fields"][1]["labels"]["__name__"] == "celery_worker_up")
        .collect();
    let v = view(&input(frames, json!({}), 4));
    assert_eq!(v.kinds.len(), 1);
    let kind = &v.kinds[0];
    let nodes: Vec<(&str, usize)> = kind.nodes.iter().map(|n| (n.state.as_str(), n.count_now)).collect();
    assert_eq!(nodes, [("down", 6), ("up", 2)], "kind {}", kind.name);
    assert_eq!(v.totals.per_severity, [2, 0, 0, 6], "down is critical, up ok");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

/// A 0/1 gauge that is neither a breaker's nor `up`-style says nothing of
/// which state 0 and 1 are: the panel asks for value mappings instead of
/// drawing breakers; with them, it reads the states they name.
#[test]
fn a_zero_one_gauge_without_mappings_asks_for_them() {
    let gauge = |mappings: Option<serde_json::Value>| {
        let mut f = prom_frame(
            "A",
            &[
                ("__name__", "pg_replication_is_replica"),
                ("instance", "db-1:9187"),
                ("job", "postgres"),
            ],
            &times(3),
            vec![json!(0), json!(1), json!(1)],
        );
        if let Some(m) = mappings {
            f["fields"][1]["config"]["mappings"] = m;
        }
        f
    };
    let message = try_view(&input(vec![gauge(None)], json!({}), 3)).expect_err("no breaker");
    assert!(
        message.contains("pg_replication_is_replica") && message.contains("add value mappings"),
        "{message}"
    );
    assert!(!message.contains('\n'));
    // Several such series: the message names three values, not every one.
    let (mut first, mut second) = (gauge(None), gauge(None));
    first["fields"][1]["values"] = json!([0, 1, 2]);
    second["fields"][1]["labels"]["instance"] = json!("db-2:9187");
    second["fields"][1]["values"] = json!([3, 4, 5]);
    let message = try_view(&input(vec![first, second], json!({}), 3)).expect_err("no breaker");
    assert!(message.contains(" has values 0, 1, 2 that are not states"), "{message}");
    let mapped = json!([{"type": "value", "options": {
        "0": {"text": "primary", "index": 0}, "1": {"text": "replica", "index": 1}}}]);
    let v = view(&input(vec![gauge(Some(mapped))], json!({}), 3));
    assert_eq!(v.machines[0].state.as_deref(), Some("replica"));

    // Beside a breaker, the gauge is a warning and the breaker is drawn.
    let v = view(&input(
        vec![gauge(None), envoy_open_gauge("payments", &[0, 1, 1])],
        json!({}),
        3,
    ));
    let got: Vec<_> = v
        .machines
        .iter()
        .map(|m| (v.kinds[m.kind_index].name.as_str(), m.state.as_deref()))
        .collect();
    assert_eq!(got, [("circuit_breaker", Some("open"))]);
    assert!(v.warnings[0].contains("add value mappings"), "{:?}", v.warnings);
}

/// A breaker first reported through an unlabelled `call` event, then with
/// `provider`/`key_id`: Prometheus holds its series twice (without and with
/// the labels), the counters too. One machine, counted across the change.
#[test]
fn a_machine_whose_labels_changed_is_one_machine() {
    let states = [
        "closed",
        "closed",
        "open",
        "open",
        "half_open",
        "closed",
        "closed",
        "open",
    ];
    let t = times(states.len());
    let (before, after) = (0..4, 4..states.len());
    let mut frames = Vec::new();
    for (range, extra) in [(before.clone(), None), (after.clone(), Some(("openai", "key-3")))] {
        let mut labels = vec![
            ("instance", "exporter:9733"),
            ("job", "statescope"),
            ("kind", "circuit_breaker"),
            ("machine", "payments"),
        ];
        if let Some((p, k)) = extra {
            labels.extend([("key_id", k), ("provider", p)]);
        }
        for s in BREAKER {
            let mut l = labels.clone();
            l.extend([("__name__", "statescope_state"), ("state", s)]);
            let values = states[range.clone()].iter().map(|x| json!(u8::from(*x == s))).collect();
            frames.push(prom_frame("A", &l, &t[range.clone()], values));
        }
        // The exporter's counters as they stood at each sample: between the
        // second and third, closed -> open -> closed (an operator's close())
        // -> open.
        for ((from, to), values) in [
            (("closed", "open"), [0, 0, 2, 2, 2, 2, 2, 3]),
            (("open", "half_open"), [0, 0, 0, 0, 1, 1, 1, 1]),
            (("half_open", "closed"), [0, 0, 0, 0, 0, 1, 1, 1]),
            (("open", "closed"), [0, 0, 1, 1, 1, 1, 1, 1]),
        ] {
            let mut l = labels.clone();
            l.extend([("__name__", "statescope_transitions_total"), ("from", from), ("to", to)]);
            frames.push(prom_frame(
                "B",
                &l,
                &t[range.clone()],
                values[range.clone()].iter().map(|v| json!(v)).collect(),
            ));
        }
    }
    let v = view(&input(frames, json!({}), states.len()));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert_eq!(v.machines.len(), 1);
    let m = machine(&v, "payments");
    assert_eq!(m.state.as_deref(), Some("open"));
    assert_eq!(m.transitions_in_range, 3 + 1 + 1 + 1);
    assert!(
        m.labels.contains(&("provider".to_owned(), "openai".to_owned())),
        "the labels it has now: {:?}",
        m.labels
    );
}

/// The same with an enum gauge and detected identity: `name` first alone,
/// then with `team`. `team` tells no machines apart, so it is shown, not
/// used to split.
#[test]
fn a_label_added_later_to_an_enum_gauge_does_not_split_the_machine() {
    let t = times(6);
    let frames = vec![
        prom_frame(
            "A",
            &[("__name__", "circuit_breaker_state"), ("name", "payments")],
            &t[..3],
            vec![json!(0), json!(0), json!(1)],
        ),
        prom_frame(
            "A",
            &[
                ("__name__", "circuit_breaker_state"),
                ("name", "payments"),
                ("team", "billing"),
            ],
            &t[3..],
            vec![json!(1), json!(2), json!(0)],
        ),
        prom_frame(
            "A",
            &[("__name__", "circuit_breaker_state"), ("name", "search")],
            &t,
            vec![json!(0); 6],
        ),
    ];
    let v = view(&input(frames, json!({"sort": "name"}), 6));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    let got: Vec<_> = v
        .machines
        .iter()
        .map(|m| (&*m.id, m.state.as_deref(), m.transitions_in_range))
        .collect();
    assert_eq!(got, [("payments", Some("closed"), 3), ("search", Some("closed"), 0)]);
}

/// `circuit_breaker_state{provider,key_id}`: a person reads
/// `deepseek/key-a`, the broad label first, whatever the alphabet says;
/// the Identity labels option sets another order.
#[test]
fn enum_gauge_machines_are_named_broad_label_first() {
    let frames = |providers: &[&str], keys: &[&str]| -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for p in providers {
            for k in keys {
                out.push(prom_frame(
                    "A",
                    &[
                        ("__name__", "circuit_breaker_state"),
                        ("instance", "app:9000"),
                        ("job", "app"),
                        ("key_id", k),
                        ("provider", p),
                    ],
                    &times(2),
                    vec![json!(0), json!(0)],
                ));
            }
        }
        out
    };
    let ids = |v: &statescope_panel::PanelView| v.machines.iter().map(|m| m.id.to_string()).collect::<Vec<_>>();
    let v = view(&input(
        frames(&["deepseek", "openai"], &["key-a", "key-b", "key-c"]),
        json!({}),
        2,
    ));
    assert_eq!(ids(&v)[0], "deepseek/key-a");
    // Fewer providers than keys or not, provider reads first.
    let v = view(&input(
        frames(&["deepseek", "openai", "mistral"], &["key-a", "key-b"]),
        json!({}),
        2,
    ));
    assert_eq!(ids(&v)[0], "deepseek/key-a");
    let v = view(&input(
        frames(&["deepseek", "openai"], &["key-a", "key-b", "key-c"]),
        json!({"identityLabels": ["key_id", "provider"]}),
        2,
    ));
    assert_eq!(ids(&v)[0], "key-a/deepseek");

    // Labels of the user's own: the one with fewer values reads first.
    let mut out = Vec::new();
    for team in ["billing", "search"] {
        for shard in ["s1", "s2", "s3"] {
            out.push(prom_frame(
                "A",
                &[("__name__", "circuit_breaker_state"), ("shard", shard), ("team", team)],
                &times(2),
                vec![json!(0), json!(0)],
            ));
        }
    }
    let v = view(&input(out, json!({"sort": "name"}), 2));
    assert_eq!(ids(&v)[0], "billing/s1");
}
