//! The body as a scraper reads it: families, samples and formats.

use super::*;
use crate::events::{Action, Event};
use crate::store::{Catalog, Limits};
use statescope_model::builtin;
use statescope_model::contract::{CallOutcome, JobResult};

fn demo_store() -> Store {
    let mut s = Store::new(Catalog::new(builtin::all()).unwrap(), Limits::default());
    let cb = |m: &str, a| Event::new("circuit_breaker", m, a).with_labels(&[("provider", "openai"), ("key_id", m)]);
    s.apply(
        &[
            cb("k1", Action::Transition { to: "open".into() }),
            cb(
                "k1",
                Action::Call {
                    outcome: CallOutcome::Failure,
                    failure_count: Some(5),
                },
            ),
            cb("k2", Action::Heartbeat),
            Event::new(
                "worker",
                "w\"1",
                Action::Job {
                    result: JobResult::Succeeded,
                    duration_seconds: 2.0,
                    queue_seconds: None,
                },
            ),
        ],
        100.0,
    )
    .unwrap();
    s
}

#[test]
fn one_hot_states_transitions_and_compat_series_follow_the_contract() {
    let text = encode(&demo_store(), &Telemetry::default(), Compat::Full, Format::Prometheus);
    for want in [
        r#"statescope_state{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",state="open"} 1"#,
        r#"statescope_state{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",state="closed"} 0"#,
        r#"statescope_transitions_total{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",from="closed",to="open"} 1"#,
        r#"statescope_transition_allowed{kind="worker",from="busy",to="draining",flow="normal"} 1"#,
        r#"statescope_breaker_failures{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai"} 5"#,
        r#"circuit_breaker_state{provider="openai",key_id="k1",machine="k1"} 1"#,
        r#"circuit_breaker_trips_total{provider="openai",key_id="k1",machine="k1"} 1"#,
        r#"circuit_breaker_failure_count{provider="openai",key_id="k1",machine="k1"} 5"#,
        r#"statescope_worker_jobs_total{kind="worker",machine="w\"1",result="succeeded"} 1"#,
        r#"statescope_worker_job_duration_seconds_bucket{kind="worker",worker_type="",le="2.5"} 1"#,
        r#"statescope_exporter_machines{kind="worker"} 1"#,
        "# TYPE statescope_transitions_total counter",
        "# TYPE statescope_exporter_events_total counter",
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
    }
    assert!(!text.contains("# EOF"));
    assert!(
        !text.contains("statescope_worker_queue_wait_seconds"),
        "no queue waits were reported"
    );
}

#[test]
fn counters_exist_at_zero_from_creation_and_openmetrics_says_when_they_were_created() {
    let text = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::Prometheus);
    // k2 was created by a heartbeat: every normal-flow edge, outcome and
    // the unexpected counter are there at 0 before anything happened.
    let k2 = r#"kind="circuit_breaker",machine="k2",key_id="k2",provider="openai""#;
    for want in [
        format!(r#"statescope_transitions_total{{{k2},from="closed",to="open"}} 0"#),
        format!(r#"statescope_transitions_total{{{k2},from="open",to="half_open"}} 0"#),
        format!(r#"statescope_transitions_total{{{k2},from="half_open",to="closed"}} 0"#),
        format!(r#"statescope_transitions_total{{{k2},from="half_open",to="open"}} 0"#),
        format!(r#"statescope_breaker_calls_total{{{k2},outcome="success"}} 0"#),
        r#"statescope_unexpected_transitions_total{kind="circuit_breaker",machine="k2"} 0"#.into(),
        r#"statescope_worker_jobs_total{kind="worker",machine="w\"1",result="failed"} 0"#.into(),
        r#"circuit_breaker_trips_total{provider="openai",key_id="k2",machine="k2"} 0"#.into(),
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
    }
    // Manual moves appear when taken, not before.
    assert!(!text.contains(&format!(r#"{k2},from="open",to="closed""#)));
    assert!(!text.contains("_created"), "Prometheus text has no _created");
    let om = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::OpenMetrics);
    for want in [
        format!(r#"statescope_transitions_created{{{k2},from="closed",to="open"}} 100"#),
        r#"statescope_unexpected_transitions_created{kind="circuit_breaker",machine="k2"} 100"#.into(),
        r#"circuit_breaker_trips_created{provider="openai",key_id="k2",machine="k2"} 100"#.into(),
    ] {
        assert!(om.lines().any(|l| l == want), "missing {want}\n{om}");
    }
    // Each counter sample has its _created sample, right after it.
    let lines: Vec<&str> = om.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("statescope_transitions_total{") {
            let created = l.replacen("_total{", "_created{", 1);
            let created = created.rsplit_once(' ').unwrap().0;
            assert!(lines[i + 1].starts_with(created), "{l} then {}", lines[i + 1]);
        }
    }
}

#[test]
fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
    let text = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::OpenMetrics);
    assert!(text.contains("# TYPE statescope_transitions counter\n"));
    assert!(text.contains("# TYPE statescope_exporter_events counter\n"));
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.contains("circuit_breaker_failure_count"));
    let off = encode(&demo_store(), &Telemetry::default(), Compat::Off, Format::OpenMetrics);
    assert!(!off.contains("circuit_breaker_state"));
}

#[test]
fn a_body_in_pieces_is_the_body_whole() {
    // Process figures (CPU, memory) change between two encodings; the rest must not.
    let stable = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.contains("process_"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // One registry for both: the order of its label sets is its own.
    let telemetry = Telemetry::default();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let whole = encode(&demo_store(), &telemetry, Compat::Full, format);
        let mut pieces = Vec::new();
        encode_chunked(&demo_store(), &telemetry, Compat::Full, format, 300, &mut |p| {
            pieces.push(p);
            String::new()
        });
        assert!(
            pieces.len() > 5,
            "a 300-byte chunk size splits the body: {} pieces",
            pieces.len()
        );
        assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() >= 300));
        assert_eq!(stable(&pieces.concat()), stable(&whole));
    }
}

#[test]
fn a_scrape_writes_the_store_as_it_was_when_its_snapshot_was_taken() {
    // /metrics takes the snapshot under the store's read lock and encodes after
    // releasing it: events applied meanwhile must not tear the body.
    let mut store = demo_store();
    let telemetry = Telemetry::default();
    let snapshot = Snapshot::take(&store, Compat::On);
    let body_then = encode(&store, &telemetry, Compat::On, Format::Prometheus);
    store
        .apply(
            &[Event::new(
                "circuit_breaker",
                "k1",
                Action::Transition { to: "half_open".into() },
            )],
            200.0,
        )
        .unwrap();
    let mut body = String::new();
    snapshot.encode_chunked(&telemetry, Format::Prometheus, usize::MAX, &mut |p| {
        body.push_str(&p);
        p
    });
    let without_process = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.contains("process_"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_process(&body), without_process(&body_then));
    let k1_open =
        r#"statescope_state{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",state="open"} 1"#;
    assert!(body.lines().any(|l| l == k1_open), "{body}");
    let now = encode(&store, &telemetry, Compat::On, Format::Prometheus);
    assert!(!now.lines().any(|l| l == k1_open), "the store itself moved on");
}
