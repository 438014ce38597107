//! `build_view_cached` reuses what it derived from the frames' descriptions
//! (machines, kinds, auxiliary series) across refreshes, and never a result
//! that the new input contradicts: whatever changes, it equals `build_view`
//! from scratch. A stale cache would show a machine in a state it has left.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use statescope_bench::frames::Sender;
use statescope_panel::input::{Cell, Slid, Values};
use statescope_panel::store::FrameStore;
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
            field.values = Values::numbers(numbers);
        }
    }
    input
}

/// A refresh of `before`: the same descriptions (shared, as the store keeps
/// them), the samples of `after`, each column marked slid as the store marks
/// what `frames.ts` found slid (see [`slid`]).
fn refresh(before: &PanelInput, after: &PanelInput) -> PanelInput {
    let mut next = before.clone();
    for (frame, new) in next.frames.iter_mut().zip(&after.frames) {
        // How far the frame's range slid: where its first instant is in the times before.
        let k = match (frame.fields[0].values.as_numbers(), new.fields[0].values.as_numbers()) {
            (Some(old), Some(new)) => new.first().and_then(|t| old.iter().position(|o| o == t)),
            _ => None,
        };
        for (field, new) in frame.fields.iter_mut().zip(&new.fields) {
            field.slid = k.and_then(|k| slid(&field.values, &new.values, k));
            field.values = new.values.clone();
        }
    }
    next.options = after.options.clone();
    next.time_range = after.time_range;
    next
}

/// `new` as the store marks it when `frames.ts` sent it slid: `old` without
/// its first `k` samples, the same bit for bit (NaN for a null), then new
/// ones; `None` (sent whole) for anything else, such as a late correction.
fn slid(old: &Values, new: &Values, k: usize) -> Option<Slid> {
    let (before, after) = (old.as_numbers()?, new.as_numbers()?);
    let overlap = before.len().checked_sub(k).filter(|&o| o > 0 && o <= after.len())?;
    let same = |a: &f64, b: &f64| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
    before[k..]
        .iter()
        .zip(&after[..overlap])
        .all(|(a, b)| same(a, b))
        .then(|| Slid {
            from: old.id().expect("numbers"),
            k,
            m: after.len() - overlap,
        })
}

fn fleet(states: &[&[&str]], options: Value) -> Value {
    let frames = states
        .iter()
        .enumerate()
        .flat_map(|(m, s)| statescope_machine("circuit_breaker", &format!("m{m}"), &BREAKER, s))
        .collect();
    input(frames, options, states[0].len())
}

/// Machine `m`'s frames described anew, under another name.
fn relabel(input: &mut PanelInput, m: usize) {
    for frame in &mut input.frames {
        let labels = &frame.fields[1].labels;
        if labels
            .get("machine")
            .is_some_and(|name| name.starts_with(&format!("m{m}")))
        {
            let mut relabelled: BTreeMap<String, String> = (**labels).clone();
            relabelled.insert("machine".into(), format!("{}x", labels["machine"]));
            frame.fields[1].labels = Arc::new(relabelled);
        }
    }
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
    let state = |id: &str| {
        view.machines
            .iter()
            .find(|m| &*m.id == id)
            .and_then(|m| m.state.clone())
    };
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
    assert!(view.machines.iter().any(|m| &*m.id == "m7"));
    assert!(view.machines.iter().all(|m| &*m.id != "m1"));
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
                    relabel(&mut n, machine);
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
                    n.frames[machine * BREAKER.len() + 1].fields[1].values = Values::numbers(Vec::new());
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

/// Per machine, per instant: the value of each of the breaker's five
/// one-hot series there.
type Truth = Vec<Vec<[f64; 5]>>;

/// One instant's values: `code` 0..5 that state; 5 none at 1 (a gap); 6 two
/// series at 1 (a scrape caught both sides of a change); 7 a state with its
/// neighbour's series null.
fn instant(code: u8) -> [f64; 5] {
    let mut v = [0.0; 5];
    match code {
        0..5 => v[usize::from(code)] = 1.0,
        5 => {}
        6 => (v[0], v[1]) = (1.0, 1.0),
        _ => (v[1], v[2]) = (1.0, f64::NAN),
    }
    v
}

/// What a range query over instants `start..start + len` of `truth` gives,
/// as the store hands it over: `refresh`ed from `before` (descriptions kept)
/// when there is one. `edges`: how far the range's ends sit past the first
/// and last sample, in steps; `declared`: whether the time field carries
/// the query's step.
fn window(truth: &Truth, start: usize, len: usize, edges: (f64, f64), declared: bool) -> PanelInput {
    let times: Vec<f64> = (start..start + len)
        .map(|i| support::T0 + i as f64 * support::STEP)
        .collect();
    let frames = truth
        .iter()
        .enumerate()
        .flat_map(|(m, instants)| {
            let times = &times;
            BREAKER.iter().enumerate().map(move |(s, state)| {
                let values = instants[start..start + len]
                    .iter()
                    .map(|v| if v[s].is_nan() { Value::Null } else { json!(v[s]) })
                    .collect();
                let mut frame = support::prom_frame(
                    "A",
                    &[
                        ("__name__", "statescope_state"),
                        ("instance", "exporter:9733"),
                        ("job", "statescope"),
                        ("kind", "circuit_breaker"),
                        ("machine", &format!("m{m}")),
                        ("state", state),
                    ],
                    times,
                    values,
                );
                if !declared {
                    frame["fields"][0]["config"] = json!({});
                }
                frame
            })
        })
        .collect();
    let mut json = input(frames, json!({}), len);
    let first = times.first().copied().unwrap_or(support::T0);
    let last = times.last().copied().unwrap_or(support::T0);
    json["timeRange"] = json!({"from": first + edges.0 * support::STEP, "to": last + edges.1 * support::STEP});
    json["now"] = json["timeRange"]["to"].clone();
    let mut input = decoded(&json);
    // One times column for all, as the store shares repeated times.
    let times = input.frames[0].fields[0].values.clone();
    for frame in &mut input.frames {
        frame.fields[0].values = times.clone();
    }
    input
}

fn truth(machines: usize, codes: &[u8]) -> Truth {
    (0..machines)
        .map(|m| {
            (0..codes.len())
                .map(|i| instant(codes[(i * (m + 1) + m) % codes.len()]))
                .collect()
        })
        .collect()
}

/// Builds `first` as a first render and its first refresh (the same
/// samples): the cache keeps the machines' merges from then on.
fn primed(cache: &mut ViewCache, first: &PanelInput) {
    both(cache, first);
    both(cache, first);
}

/// Builds `next` cached and from scratch; returns the view.
fn both(cache: &mut ViewCache, next: &PanelInput) -> statescope_panel::PanelView {
    let fresh = build_view(next).expect("the fleet draws");
    assert_eq!(build_view_cached(next, cache).expect("the fleet draws"), fresh);
    fresh
}

#[test]
fn a_slid_range_merges_only_the_new_samples_and_counts_as_from_scratch() {
    // m0 closed, trips at instant 6, half_open at 8, closed from 9.
    let codes = [0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0];
    let truth: Truth = vec![codes.iter().map(|&c| instant(c)).collect()];
    let mut cache = ViewCache::default();
    let first = window(&truth, 0, 6, (0.0, 0.0), true);
    both(&mut cache, &first);
    assert_eq!(cache.folded(), 0, "a first build folds nothing");
    // The first refresh folds what the first build kept.
    let mut before = first;
    for start in 1..=6 {
        let next = refresh(&before, &window(&truth, start, 6, (0.0, 0.0), true));
        let view = both(&mut cache, &next);
        assert_eq!(cache.folded(), 1, "slid to {start}: merged from what was kept");
        let m0 = &view.machines[0];
        let expected = match start {
            1 | 2 => 1,
            3 => 2,
            4 | 5 => 3,
            _ => 2,
        };
        assert_eq!(m0.transitions_in_range, expected, "slid to {start}");
        before = next;
    }
    // Slid to 6: the window starts at the trip; open is the first sample's
    // state, not a transition in range, and half_open's share starts later.
    let view = both(&mut cache, &before);
    assert_eq!(view.machines[0].transitions_in_range, 2);
    assert_eq!(view.machines[0].history[0].state_index, Some(1));
}

#[test]
fn a_late_correction_in_the_shared_samples_is_merged_again() {
    let mut truth = truth(1, &[0, 0, 0, 0, 0, 0, 0, 0]);
    let mut cache = ViewCache::default();
    let first = window(&truth, 0, 6, (0.0, 0.0), true);
    primed(&mut cache, &first);
    // The refresh slides by one, and Prometheus now has instant 3 as open
    // (a late scrape): the samples both ranges hold differ.
    truth[0][3] = instant(1);
    let next = refresh(&first, &window(&truth, 1, 6, (0.0, 0.0), true));
    let view = both(&mut cache, &next);
    assert_eq!(cache.folded(), 0, "a corrected sample is no slide");
    assert_eq!(view.machines[0].transitions_in_range, 2, "closed -> open -> closed");
}

#[test]
fn a_time_that_became_null_in_the_shared_samples_is_merged_again() {
    let truth = truth(1, &[0, 0, 1, 1, 1, 1, 1]);
    let mut cache = ViewCache::default();
    let first = window(&truth, 0, 5, (0.0, 0.0), true);
    primed(&mut cache, &first);
    // The same values slid by one, but the instant of the trip has no time
    // now: that sample is dropped, closed holds a step, then a gap, and
    // open starts a step later.
    let mut next = refresh(&first, &window(&truth, 1, 5, (0.0, 0.0), true));
    let mut times = next.frames[0].fields[0].values.as_numbers().expect("numbers").to_vec();
    times[1] = f64::NAN;
    // One column for all, as the store shares a machine's repeated times.
    let times = Values::numbers(times);
    for frame in &mut next.frames {
        frame.fields[0].values = times.clone();
        // A time column that differs from the one before goes whole.
        frame.fields[0].slid = None;
    }
    let view = both(&mut cache, &next);
    assert_eq!(cache.folded(), 0);
    let history = &view.machines[0].history;
    assert_eq!((history[1].state_index, history[2].state_index), (None, Some(1)));
    assert_eq!(history[2].start_ms, support::T0 + 3.0 * support::STEP);
}

#[test]
fn two_series_at_one_are_not_folded_past_the_state_before_them() {
    // At instant 1 closed and open are both 1: open wins since closed came
    // before it. Once instant 0 leaves the range, closed wins (no state
    // before it to differ from).
    let codes = [0, 6, 0, 0, 0, 0, 0];
    let truth: Truth = vec![codes.iter().map(|&c| instant(c)).collect()];
    let mut cache = ViewCache::default();
    let first = window(&truth, 0, 4, (0.0, 0.0), true);
    assert_eq!(both(&mut cache, &first).machines[0].transitions_in_range, 2);
    both(&mut cache, &first);
    let next = refresh(&first, &window(&truth, 1, 4, (0.0, 0.0), true));
    let view = both(&mut cache, &next);
    assert_eq!(view.machines[0].transitions_in_range, 0, "closed throughout");
}

#[test]
fn the_range_edges_are_read_from_the_new_range() {
    // Without a declared step, the step is the smallest spacing: instant 0
    // and 1 are close, the rest a step apart. A range whose start sits half
    // a step before the first sample leaves a gap at its start.
    let codes = [1, 1, 1, 0, 0, 0, 0, 0, 0];
    let truth: Truth = vec![codes.iter().map(|&c| instant(c)).collect()];
    let mut cache = ViewCache::default();
    let first = window(&truth, 0, 5, (-0.5, 0.0), false);
    primed(&mut cache, &first);
    let next = refresh(&first, &window(&truth, 3, 5, (-0.5, 0.6), false));
    let view = both(&mut cache, &next);
    assert_eq!(cache.folded(), 1);
    let m0 = &view.machines[0];
    assert_eq!(m0.transitions_in_range, 0, "open -> closed happened before the range");
    assert_eq!(m0.history[0].state_index, None, "nothing known before the first sample");
    assert!(
        m0.since.is_some_and(|s| s.lower_bound),
        "closed since before the range, at least"
    );
}

/// `window`'s range query as JSON, every `stride`-th instant.
fn window_json(truth: &Truth, start: usize, len: usize, stride: usize, edges: (f64, f64), declared: bool) -> Value {
    let instants: Vec<usize> = (start..).step_by(stride).take(len).collect();
    let times: Vec<f64> = instants
        .iter()
        .map(|&i| support::T0 + i as f64 * support::STEP)
        .collect();
    let frames = truth
        .iter()
        .enumerate()
        .flat_map(|(m, values)| {
            let (times, instants) = (&times, &instants);
            BREAKER.iter().enumerate().map(move |(s, state)| {
                let values = instants
                    .iter()
                    .map(|&i| {
                        if values[i][s].is_nan() {
                            Value::Null
                        } else {
                            json!(values[i][s])
                        }
                    })
                    .collect();
                let labels = [
                    ("__name__", "statescope_state"),
                    ("kind", "circuit_breaker"),
                    ("machine", &format!("m{m}")),
                    ("state", state),
                ];
                let mut frame = support::prom_frame("A", &labels, times, values);
                frame["fields"][0]["config"] = if declared {
                    json!({"interval": support::STEP * stride as f64})
                } else {
                    json!({})
                };
                frame
            })
        })
        .collect();
    let mut json = input(frames, json!({}), len);
    let first = times.first().copied().unwrap_or(support::T0);
    let last = times.last().copied().unwrap_or(support::T0);
    let step = support::STEP * stride as f64;
    json["timeRange"] = json!({"from": first + edges.0 * step, "to": last + edges.1 * step});
    json["now"] = json["timeRange"]["to"].clone();
    json
}

proptest! {
    /// Whatever a run of refreshes does (slides by any number of steps,
    /// past every kept sample too, a step changed, late corrections,
    /// relabels, options, emptied series, a range edge off the samples, a
    /// step declared or not, an update never built), sent as `frames.ts`
    /// sends it and decoded by the panel's store, the build from what the
    /// builds before kept (each machine's runs, folded into history,
    /// current state, run start, transition counts and totals) equals the
    /// build from scratch of the same data decoded from scratch.
    #[test]
    fn folded_refreshes_equal_from_scratch(
        codes in prop::collection::vec(prop_oneof![8 => 0u8..5, 1 => 5u8..8], 40),
        len in 1usize..8,
        declared in any::<bool>(),
        steps in prop::collection::vec(
            (0usize..9, 0usize..12, 0usize..3, 0u8..8, prop::bool::weighted(0.2), any::<bool>()),
            1..12,
        ),
    ) {
        let mut truth = truth(3, &codes);
        let mut cache = ViewCache::default();
        // What frames.ts sends, as the bench's sender writes it.
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let (mut start, mut stride, mut edges) = (0, 1, (0.0, 0.0));
        let fits = |start: usize, stride: usize| start.min(codes.len() - 1 - (len - 1) * stride);
        for (op, k, machine, code, unseen, same_arrays) in steps {
            let doc = match op {
                // Slides by k steps (0: the same instants), past the kept ones too.
                0..=2 => {
                    start = fits(start + k, stride);
                    window_json(&truth, start, len, stride, edges, declared)
                }
                // A late correction at any instant in range, and a slide by one or none.
                3 => {
                    truth[machine][start + (k % len) * stride] = instant(code);
                    start = fits(start + k % 2, stride);
                    window_json(&truth, start, len, stride, edges, declared)
                }
                // The range's ends off the samples.
                4 => {
                    edges = ([-0.5, 0.0, 0.4][machine], [0.0, 0.3, 2.0][k % 3]);
                    window_json(&truth, start, len, stride, edges, declared)
                }
                // The query's step changed: every other instant, or each.
                5 => {
                    stride = 1 + k % 2;
                    start = fits(start, stride);
                    window_json(&truth, start, len, stride, edges, declared)
                }
                // One machine's frames described anew, under another name.
                6 => {
                    let mut doc = window_json(&truth, start, len, stride, edges, declared);
                    for frame in doc["frames"].as_array_mut().unwrap() {
                        if frame["fields"][1]["labels"]["machine"] == format!("m{machine}") {
                            frame["fields"][1]["labels"]["machine"] = json!(format!("m{machine}x"));
                        }
                    }
                    doc
                }
                // Options: one identity for all machines, or a flapping rule.
                7 => {
                    let mut doc = window_json(&truth, start, len, stride, edges, declared);
                    doc["options"] = json!({
                        "identityLabels": if machine == 0 { json!(["kind"]) } else { json!([]) },
                        "flappingThreshold": 1 + k % 3,
                    });
                    doc
                }
                // One series emptied.
                _ => {
                    let mut doc = window_json(&truth, start, len, stride, edges, declared);
                    doc["frames"][machine * BREAKER.len() + usize::from(code) % 5]["fields"][1]["values"] = json!([]);
                    doc
                }
            };
            sender.same_arrays = same_arrays;
            let (meta, describe, layout, numbers) = sender.update(&doc.to_string());
            let (input, _) = store.update(&meta, &describe, &layout, &numbers).expect("the store takes what frames.ts sends");
            if unseen {
                // An update the view never built: the next one slid from
                // columns the cache does not hold, and must not fold.
                continue;
            }
            let cached = build_view_cached(&input, &mut cache).map_err(|e| e.to_string());
            let fresh = build_view(&decoded(&doc)).map_err(|e| e.to_string());
            prop_assert_eq!(cached, fresh);
        }
    }
}
