//! Properties of `build_view` over generated input: it never panics, and when
//! it draws, what it draws adds up.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use statescope_panel::input::{Field, FieldConfig, FieldType, Frame, TimeRange, Value, Values};
use statescope_panel::options::{PanelOptions, ShapeChoice};
use statescope_panel::view::PanelView;
use statescope_panel::{PanelInput, build_view};

const RANGE: TimeRange = TimeRange {
    from: 0.0,
    to: 100_000.0,
};

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u8..4).prop_map(|v| Value::Number(f64::from(v))),
        1 => Just(Value::Null),
        1 => Just(Value::Number(f64::NAN)),
        1 => Just(Value::Number(f64::INFINITY)),
        1 => any::<f64>().prop_map(Value::Number),
        1 => prop_oneof![Just("open"), Just("CLOSED"), Just(""), Just("7"), Just("NaN"), Just("héllo wörld")]
            .prop_map(|s| Value::Text(s.to_owned())),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
}

fn arb_field() -> impl Strategy<Value = Field> {
    let field_type = prop_oneof![
        Just(FieldType::Time),
        Just(FieldType::Number),
        Just(FieldType::String),
        Just(FieldType::Boolean),
        Just(FieldType::Other)
    ];
    let label = prop_oneof![
        Just("__name__"),
        Just("state"),
        Just("kind"),
        Just("machine"),
        Just("name"),
        Just("job"),
        Just("from"),
        Just("to")
    ];
    let label_value = prop_oneof![
        Just("statescope_state"),
        Just("statescope_transitions_total"),
        Just("statescope_transition_allowed"),
        Just("statescope_state_severity"),
        Just("statescope_state_since_timestamp_seconds"),
        Just("resilience4j_circuitbreaker_state"),
        Just("circuit_breaker"),
        Just("worker"),
        Just("open"),
        Just("closed"),
        Just("Half Open"),
        Just("m1"),
        Just("m2"),
        Just(""),
    ];
    let times = proptest::collection::vec(
        prop_oneof![
            8 => (-20i32..120).prop_map(|t| Value::Number(f64::from(t) * 1000.0)),
            1 => Just(Value::Null),
            1 => Just(Value::Number(f64::NAN)),
        ],
        0..30,
    );
    (
        field_type,
        proptest::collection::btree_map(label, label_value, 0..5),
        proptest::collection::vec(arb_value(), 0..30),
        times,
        any::<bool>(),
    )
        .prop_map(|(field_type, labels, values, times, beside)| {
            let values = if field_type == FieldType::Time { times } else { values };
            // Time and number fields come either as JSON cells or, as frames.ts
            // sends them, as a run of numbers (a Float64Array).
            let numeric = matches!(field_type, FieldType::Time | FieldType::Number);
            Field {
                name: "Value".into(),
                field_type,
                labels: Arc::new(labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()),
                config: FieldConfig::default().into(),
                values: if beside && numeric {
                    numbers_beside(&values)
                } else {
                    values.into()
                },
                ..Field::default()
            }
        })
}

/// `values` as module.ts sends a number field: a run of one shared array,
/// NaN for whatever is not a number.
fn numbers_beside(values: &[Value]) -> Values {
    let mut all = vec![42.0; 3];
    all.extend(values.iter().map(|v| match v {
        Value::Number(n) => *n,
        _ => f64::NAN,
    }));
    all.push(7.0);
    Values::numbers_in(all, 3, values.len())
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    (
        proptest::collection::vec(arb_field(), 0..5),
        proptest::option::of(prop_oneof![Just("A".to_owned()), Just("B".to_owned())]),
    )
        .prop_map(|(fields, ref_id)| Frame {
            ref_id: ref_id.map(Into::into),
            name: None,
            fields,
        })
}

fn arb_options() -> impl Strategy<Value = PanelOptions> {
    (
        prop_oneof![
            Just(ShapeChoice::Auto),
            Just(ShapeChoice::OneHot),
            Just(ShapeChoice::Enum)
        ],
        prop_oneof![
            Just(vec![]),
            Just(vec!["machine".to_owned()]),
            Just(vec!["job".to_owned()])
        ],
        prop_oneof![Just(String::new()), Just("m1".to_owned()), Just("OPEN".to_owned())],
        prop_oneof![Just(None), Just(Some("open".to_owned()))],
        proptest::option::of(1usize..4),
    )
        .prop_map(
            |(shape, identity_labels, search, state_filter, max_tiles)| PanelOptions {
                shape,
                identity_labels,
                search,
                state_filter,
                max_tiles,
                ..PanelOptions::default()
            },
        )
}

/// What any drawn view must satisfy.
fn check_view(view: &PanelView) -> Result<(), TestCaseError> {
    let now: usize = view.kinds.iter().flat_map(|k| &k.nodes).map(|n| n.count_now).sum();
    prop_assert_eq!(
        now + view.totals.unknown,
        view.totals.machines,
        "every machine is in one state or unknown"
    );
    prop_assert_eq!(
        view.totals.per_severity.iter().sum::<usize>() + view.totals.unknown,
        view.totals.machines
    );
    prop_assert!(view.machines.len() + view.machines_hidden <= view.totals.machines);
    for kind in &view.kinds {
        for n in &kind.nodes {
            prop_assert_eq!(n.machines_now.len(), n.count_now);
            prop_assert!((0.0..=1.0).contains(&n.x) && (0.0..=1.0).contains(&n.y));
        }
        for e in &kind.edges {
            prop_assert!(e.from < kind.nodes.len() && e.to < kind.nodes.len());
        }
    }
    for m in &view.machines {
        let nodes = view.kinds[m.kind_index].nodes.len();
        prop_assert_eq!(m.history.first().map(|s| s.start_ms), Some(view.time_range.from));
        prop_assert_eq!(m.history.last().map(|s| s.end_ms), Some(view.time_range.to));
        for w in m.history.windows(2) {
            prop_assert_eq!(w[0].end_ms, w[1].start_ms);
        }
        for s in &m.history {
            prop_assert!(s.end_ms > s.start_ms);
            prop_assert!(s.state_index.is_none_or(|i| i < nodes));
        }
        prop_assert!(m.state_index.is_none_or(|i| i < nodes));
        prop_assert_eq!(m.state.is_some(), m.severity.is_some());
        if !m.share.is_empty() {
            let sum: f64 = m.share.iter().map(|s| s.1).sum();
            prop_assert!((sum - 1.0).abs() < 1e-9, "shares sum to {}", sum);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn build_view_never_panics_on_arbitrary_frames(
        frames in proptest::collection::vec(arb_frame(), 0..6),
        options in arb_options(),
    ) {
        let input = PanelInput { frames, options, time_range: RANGE, now: RANGE.to, ..PanelInput::default() };
        match build_view(&input) {
            Ok(view) => check_view(&view)?,
            Err(problem) => {
                let text = problem.to_string();
                prop_assert!(!text.is_empty() && !text.contains('\n'), "{}", text);
            }
        }
    }

    /// Random breaker timelines in the statescope shape: every machine is
    /// read, and the counts add up to the fleet.
    #[test]
    fn random_fleets_add_up(
        fleet in proptest::collection::vec(proptest::collection::vec(proptest::option::weighted(0.9, 0usize..5), 1..40), 1..12),
    ) {
        let states = ["closed", "open", "half_open", "forced_open", "disabled"];
        let mut frames = Vec::new();
        for (m, timeline) in fleet.iter().enumerate() {
            let times: Vec<Value> = (0..timeline.len()).map(|i| Value::Number(i as f64 * 15_000.0)).collect();
            for (s, state) in states.iter().enumerate() {
                let labels: BTreeMap<String, String> = [
                    ("__name__", "statescope_state".to_owned()),
                    ("kind", "circuit_breaker".to_owned()),
                    ("machine", format!("m{m}")),
                    ("state", (*state).to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
                let values = timeline.iter().map(|x| Value::Number(if *x == Some(s) { 1.0 } else { 0.0 })).collect::<Vec<_>>().into();
                frames.push(Frame {
                    ref_id: Some("A".into()),
                    name: None,
                    fields: vec![
                        Field { name: "Time".into(), field_type: FieldType::Time, values: times.clone().into(), ..Field::default() },
                        Field { name: "Value".into(), field_type: FieldType::Number, labels: labels.into(), values, ..Field::default() },
                    ],
                });
            }
        }
        let longest = fleet.iter().map(Vec::len).max().unwrap_or(1);
        let range = TimeRange { from: 0.0, to: (longest.max(2) - 1) as f64 * 15_000.0 };
        let input = PanelInput { frames, time_range: range, now: range.to, ..PanelInput::default() };
        let view = build_view(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_view(&view)?;
        prop_assert_eq!(view.machines.len(), fleet.len());
        prop_assert_eq!(view.totals.machines, fleet.len());
        for (m, timeline) in fleet.iter().enumerate() {
            let tile = view.machines.iter().find(|t| *t.id == *format!("m{m}")).unwrap();
            // A machine whose series end more than a step early has no state at
            // the end of the range; a single sample (no step known) holds throughout.
            let expected = if timeline.len() == 1 || timeline.len() + 1 >= longest.max(2) {
                *timeline.last().unwrap()
            } else {
                None
            };
            prop_assert_eq!(tile.state_index, expected, "machine m{} {:?}", m, timeline);
            let changes = timeline
                .iter()
                .flatten()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] != w[1])
                .count() as u64;
            prop_assert_eq!(tile.transitions_in_range, changes);
        }
    }
}
