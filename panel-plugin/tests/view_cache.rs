//! `build_view_cached` reuses what it derived from the frames' descriptions
//! (machines, kinds, auxiliary series) across refreshes, and never a result
//! that the new input contradicts: whatever changes, it equals `build_view`
//! from scratch. A stale cache would show a machine in a state it has left.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use statescope_panel::input::{Cell, Values};
use statescope_panel::view::{ViewCache, build_view_cached};
use statescope_panel::{PanelInput, build_view};
use support::{BREAKER, input, statescope_machine};

/// The input as the panel's store hands it over: time and number fields as
/// runs of numbers (NaN for a null), labels and config shared.
fn decoded(json: &Value) -> PanelInput {
    let mut input = PanelInput::from_json(&json.to_string()).expect("test input decodes");
    for frame in &mut input.frames {
        for field in &mut frame.fields {
            let numbers: Vec<f64> = field
                .values
                .cells()
                .map(|c| match c {
                    Cell::Number(n) => n,
                    _ => f64::NAN,
                })
                .collect();
            let len = numbers.len();
            field.values = Values::Numbers {
                all: Arc::new(numbers),
                at: 0,
                len,
            };
        }
    }
    input
}

/// A refresh of `before`: the same descriptions (shared, as the store keeps
/// them), the samples of `after`.
fn refresh(before: &PanelInput, after: &PanelInput) -> PanelInput {
    let mut next = before.clone();
    for (frame, new) in next.frames.iter_mut().zip(&after.frames) {
        for (field, new) in frame.fields.iter_mut().zip(&new.fields) {
            field.values = new.values.clone();
        }
    }
    next.options = after.options.clone();
    next.time_range = after.time_range;
    next
}

fn fleet(states: &[&[&str]], options: Value) -> Value {
    let frames = states
        .iter()
        .enumerate()
        .flat_map(|(m, s)| statescope_machine("circuit_breaker", &format!("m{m}"), &BREAKER, s))
        .collect();
    input(frames, options, states[0].len())
}

fn same(cache: &mut ViewCache, input: &PanelInput) {
    let cached = build_view_cached(input, cache).map_err(|e| e.to_string());
    let fresh = build_view(input).map_err(|e| e.to_string());
    assert_eq!(cached, fresh, "a cached build differs from one from scratch");
}

#[test]
fn a_refresh_with_the_same_descriptions_reuses_what_they_derive() {
    let first = decoded(&fleet(&[&["closed", "closed"], &["closed", "open"]], json!({})));
    let mut cache = ViewCache::default();
    same(&mut cache, &first);
    // m0 trips, m1 closes again: new samples only.
    let later = decoded(&fleet(&[&["closed", "open"], &["open", "closed"]], json!({})));
    let next = refresh(&first, &later);
    same(&mut cache, &next);
    assert_eq!(cache.reused(), 1);
    let view = build_view_cached(&next, &mut cache).unwrap();
    let state = |id: &str| view.machines.iter().find(|m| m.id == id).and_then(|m| m.state.clone());
    assert_eq!(state("m0").as_deref(), Some("open"));
    assert_eq!(state("m1").as_deref(), Some("closed"));
}

#[test]
fn frames_described_anew_are_recognised_anew() {
    let first = decoded(&fleet(&[&["closed", "open"], &["closed", "closed"]], json!({})));
    let mut cache = ViewCache::default();
    same(&mut cache, &first);
    // The same samples, but m1's series now name machine m7: the store
    // describes such a frame anew (new labels), whatever its samples.
    let mut next = first.clone();
    for frame in &mut next.frames {
        let field = &mut frame.fields[1];
        if field.labels.get("machine").map(String::as_str) == Some("m1") {
            let mut labels: BTreeMap<String, String> = (*field.labels).clone();
            labels.insert("machine".into(), "m7".into());
            field.labels = Arc::new(labels);
        }
    }
    same(&mut cache, &next);
    assert_eq!(cache.reused(), 0);
    let view = build_view(&next).unwrap();
    assert!(view.machines.iter().any(|m| m.id == "m7"));
    assert!(view.machines.iter().all(|m| m.id != "m1"));
}

#[test]
fn options_that_read_the_descriptions_are_part_of_the_key() {
    let first = decoded(&fleet(&[&["closed", "open"], &["closed", "closed"]], json!({})));
    let mut cache = ViewCache::default();
    same(&mut cache, &first);
    for options in [
        json!({"search": "m1"}),
        json!({"identityLabels": ["job"]}),
        json!({"kind": "worker"}),
        json!({"stateLabel": "machine"}),
    ] {
        let changed = decoded(&fleet(&[&["closed", "open"], &["closed", "closed"]], options));
        same(&mut cache, &refresh(&first, &changed));
    }
    // Only the search (options no description depends on) reused.
    assert_eq!(cache.reused(), 1);
}

proptest! {
    /// Whatever a run of refreshes changes (samples, a frame's labels, an
    /// option that reads labels, a series emptied), the cached build equals
    /// the build from scratch.
    #[test]
    fn cached_equals_from_scratch(
        steps in prop::collection::vec((0usize..5, prop::collection::vec(0usize..5, 3), 0usize..3), 1..8),
    ) {
        let mut cache = ViewCache::default();
        let names = |s: &[usize]| s.iter().map(|&i| BREAKER[i]).collect::<Vec<_>>();
        let mut current = decoded(&fleet(&[&["closed"; 3], &["closed"; 3], &["closed"; 3]], json!({})));
        for (change, states, machine) in steps {
            let samples = names(&states);
            let other = names(&[states[2], states[0], states[1]]);
            let json = fleet(&[&samples, &other, &samples], json!({}));
            let next = decoded(&json);
            current = match change {
                // A refresh: new samples, descriptions kept.
                0 | 1 => refresh(&current, &next),
                // One machine's frames described anew, under another name.
                2 => {
                    let mut n = refresh(&current, &next);
                    for frame in &mut n.frames {
                        let labels = &frame.fields[1].labels;
                        if labels.get("machine").is_some_and(|m| m.starts_with(&format!("m{machine}"))) {
                            let mut relabelled: BTreeMap<String, String> = (**labels).clone();
                            relabelled.insert("machine".into(), format!("{}x", labels["machine"]));
                            frame.fields[1].labels = Arc::new(relabelled);
                        }
                    }
                    n
                }
                // An option that reads labels: one identity for all machines.
                3 => {
                    let mut n = refresh(&current, &next);
                    n.options.identity_labels = if machine == 0 { vec!["job".into()] } else { Vec::new() };
                    n
                }
                // One series emptied.
                _ => {
                    let mut n = refresh(&current, &next);
                    n.frames[machine * BREAKER.len() + 1].fields[1].values = Values::Numbers {
                        all: Arc::new(Vec::new()),
                        at: 0,
                        len: 0,
                    };
                    n
                }
            };
            let cached = build_view_cached(&current, &mut cache).map_err(|e| e.to_string());
            let fresh = build_view(&current).map_err(|e| e.to_string());
            prop_assert_eq!(cached, fresh);
        }
    }
}

#[test]
fn a_kind_defined_by_metrics_follows_their_latest_values() {
    let t = support::times(2);
    let allowed = |from: &str, to: &str, value: u8| {
        support::prom_frame(
            "B",
            &[
                ("__name__", "statescope_transition_allowed"),
                ("kind", "door"),
                ("from", from),
                ("to", to),
            ],
            &t,
            vec![json!(1), json!(value)],
        )
    };
    let door = |shut_allowed: u8| {
        let mut frames = statescope_machine("door", "front", &["closed", "open"], &["closed", "open"]);
        frames.push(allowed("closed", "open", 1));
        frames.push(allowed("open", "closed", shut_allowed));
        input(frames, json!({}), 2)
    };
    let first = decoded(&door(1));
    let mut cache = ViewCache::default();
    same(&mut cache, &first);
    // The exporter's kind changed: open -> closed is no longer allowed.
    let next = refresh(&first, &decoded(&door(0)));
    same(&mut cache, &next);
    assert_eq!(cache.reused(), 0);
    let edges = |input: &PanelInput| build_view(input).unwrap().kinds[0].edges.len();
    assert_eq!((edges(&first), edges(&next)), (2, 1));
}
