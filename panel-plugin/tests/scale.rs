//! A fleet of 10,000 breakers with an hour of 15 s samples (240 each) is
//! drawn in full: structure only here; speed is measured by the criterion
//! bench in bench/benches/panel.rs.

use statescope_panel::input::{Field, FieldType, Frame, TimeRange, Value};
use statescope_panel::view::Segment;
use statescope_panel::{PanelInput, build_view};

const MACHINES: usize = 10_000;
const SAMPLES: usize = 240;
const STEP: f64 = 15_000.0;

/// Machine `i` is closed until sample `i % 240`, then closed, open or
/// half_open (by `i % 3`) to the end: enum values as `circuit_breaker_state`.
fn value(i: usize, sample: usize) -> f64 {
    if sample < i % SAMPLES { 0.0 } else { (i % 3) as f64 }
}

#[test]
fn ten_thousand_machines_of_240_samples_are_all_drawn() {
    let times: Vec<Value> = (0..SAMPLES).map(|j| Value::Number(j as f64 * STEP)).collect();
    let frames: Vec<Frame> = (0..MACHINES)
        .map(|i| Frame {
            ref_id: Some("A".into()),
            name: None,
            fields: vec![
                Field {
                    name: "Time".into(),
                    field_type: FieldType::Time,
                    values: times.clone().into(),
                    ..Field::default()
                },
                Field {
                    name: "Value".into(),
                    field_type: FieldType::Number,
                    labels: [
                        ("__name__", "circuit_breaker_state".to_owned()),
                        ("provider", format!("p{}", i / 100)),
                        ("key_id", format!("key-{}", i % 100)),
                        ("job", "app".to_owned()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into(),
                    values: (0..SAMPLES)
                        .map(|j| Value::Number(value(i, j)))
                        .collect::<Vec<_>>()
                        .into(),
                    ..Field::default()
                },
            ],
        })
        .collect();
    let range = TimeRange {
        from: 0.0,
        to: (SAMPLES - 1) as f64 * STEP,
    };
    let input = PanelInput {
        frames,
        time_range: range,
        now: range.to,
        ..PanelInput::default()
    };
    let view = build_view(&input).unwrap();

    assert_eq!(view.machines.len(), MACHINES);
    assert_eq!(view.kinds.len(), 1);
    let counts: Vec<usize> = view.kinds[0].nodes.iter().map(|n| n.count_now).collect();
    assert_eq!(counts, [3334, 3333, 3333, 0, 0, 0]);
    // Worst first: the 3,333 open ones lead.
    assert!(view.machines[..3333].iter().all(|m| m.state.as_deref() == Some("open")));
    let expected_transitions = (0..MACHINES).filter(|i| i % 3 != 0 && i % SAMPLES != 0).count() as u64;
    let total: u64 = view.machines.iter().map(|m| m.transitions_in_range).sum();
    assert_eq!(total, expected_transitions);
    let closed_open = view.kinds[0].edges.iter().find(|e| e.from == 0 && e.to == 1).unwrap();
    assert_eq!(
        closed_open.taken_in_range,
        (0..MACHINES).filter(|i| i % 3 == 1 && i % SAMPLES != 0).count() as u64
    );
    for m in &view.machines {
        // Run-length history: at most two segments for these machines, however many samples.
        assert!(m.history.len() <= 2, "{} has {} segments", m.id, m.history.len());
        let covered: f64 = m.history.iter().map(|s: &Segment| s.end_ms - s.start_ms).sum();
        assert_eq!(covered, range.to - range.from);
    }
    let m = view.machines.iter().find(|m| &*m.id == "p12/key-7").unwrap();
    // Machine 1207: 1207 % 240 = 7, 1207 % 3 = 1: open from sample 7.
    assert_eq!(m.state.as_deref(), Some("open"));
    assert_eq!(m.since.unwrap().start_ms, 7.0 * STEP);
    assert_eq!(m.share, [(0, 7.0 / 239.0), (1, 232.0 / 239.0)]);
}
