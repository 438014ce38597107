//! No two states of a diagram overlap, nor their names, for the built-in
//! kinds, Resilience4j's six breaker states and any kind of up to 12 states,
//! at every panel size the panel draws a diagram at (issue 11, point 5).

use proptest::prelude::*;
use statescope_model::{Flow, builtin};
use statescope_panel::layout::{self, Placed, Rect};
use statescope_panel::options::ViewMode;
use statescope_panel::ui::panes;
use statescope_panel::view::{EdgeView, KindView, NodeView};

const RESILIENCE4J: [&str; 6] = ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"];
const WORKER: [&str; 5] = ["starting", "idle", "busy", "draining", "offline"];
/// The header of a one-line chip row plus a warnings line.
const TOP: f64 = 50.0;

fn kind(name: &str, states: &[String], initial: usize, edges: &[(usize, usize)], counts: &[usize]) -> KindView {
    let names: Vec<&str> = states.iter().map(String::as_str).collect();
    KindView {
        name: name.to_owned(),
        nodes: states
            .iter()
            .zip(counts)
            .map(|(s, &n)| NodeView {
                state: s.clone(),
                count_now: n,
                manual: layout::is_manual(name, s),
                ..NodeView::default()
            })
            .collect(),
        edges: edges
            .iter()
            .map(|&(from, to)| EdgeView {
                from,
                to,
                flow: Some(Flow::Normal),
                taken_in_range: 548,
            })
            .collect(),
        initial,
        grid: layout::grid(name, &names, initial, edges),
        ..KindView::default()
    }
}

fn owned(states: &[&str]) -> Vec<String> {
    states.iter().map(|s| (*s).to_owned()).collect()
}

/// Gap between a rectangle and a circle (negative when they overlap).
fn rect_circle_gap(r: &Rect, (cx, cy): (f64, f64), radius: f64) -> f64 {
    let dx = (r.x - cx).max(cx - r.right()).max(0.0);
    let dy = (r.y - cy).max(cy - r.bottom()).max(0.0);
    dx.hypot(dy) - radius
}

/// What a person needs of a drawn diagram: every node and name inside the
/// pane, nodes apart, names apart and off other nodes, counts inside nodes.
fn check(kind: &KindView, part: Rect, p: &Placed) -> Result<(), TestCaseError> {
    let bounds = Rect { x: 0.0, y: 0.0, ..part };
    let r = p.radius;
    prop_assert!(r >= layout::MIN_RADIUS);
    let circle = |i: usize| (p.nodes[i].cx, p.nodes[i].cy);
    for (i, a) in p.nodes.iter().enumerate() {
        let node_box = Rect {
            x: a.cx - r,
            y: a.cy - r,
            w: 2.0 * r,
            h: 2.0 * r,
        };
        prop_assert!(
            bounds.contains(&node_box),
            "{} outside {part:?}: {node_box:?}",
            kind.nodes[i].state
        );
        prop_assert!(
            bounds.contains(&a.label_box),
            "name of {} outside: {:?}",
            kind.nodes[i].state,
            a.label_box
        );
        prop_assert!(!a.label.is_empty());
        let digits = kind.nodes[i].count_now.to_string().len() as f64;
        prop_assert!(a.count_font >= layout::MIN_COUNT_FONT);
        prop_assert!(
            digits * layout::DIGIT_WIDTH_PER_PX * a.count_font <= 2.0 * r - 6.0 + 1e-9,
            "count wider than its node"
        );
        for (j, b) in p.nodes.iter().enumerate().skip(i + 1) {
            let d = (a.cx - b.cx).hypot(a.cy - b.cy);
            prop_assert!(
                d >= 2.0 * r + 4.0,
                "{} and {} overlap: {d} < 2 x {r}",
                kind.nodes[i].state,
                kind.nodes[j].state
            );
            prop_assert!(
                !a.label_box.intersects(&b.label_box),
                "names of {} and {} overlap",
                kind.nodes[i].state,
                kind.nodes[j].state
            );
        }
        for j in 0..p.nodes.len() {
            if j != i {
                prop_assert!(
                    rect_circle_gap(&a.label_box, circle(j), r) > 0.0,
                    "name of {} over node {}",
                    kind.nodes[i].state,
                    kind.nodes[j].state
                );
            }
        }
        if let Some((_, band)) = &p.band_label {
            prop_assert!(!band.intersects(&a.label_box));
            prop_assert!(rect_circle_gap(band, circle(i), r) > 0.0);
        }
    }
    if let Some((_, band)) = &p.band_label {
        prop_assert!(bounds.contains(band));
    }
    Ok(())
}

/// Every diagram the panel would draw in a `w` x `h` panel satisfies `check`;
/// returns whether any was drawn.
fn check_panel(kinds: &[KindView], w: f64, h: f64) -> Result<bool, TestCaseError> {
    let mut drawn = false;
    for mode in [ViewMode::Both, ViewMode::Diagram] {
        let p = panes::split(mode, w, h, TOP, |a| panes::diagram_fits(kinds, a));
        let Some(area) = p.diagram else { continue };
        for (kind, part) in kinds.iter().zip(panes::per_kind(area, kinds.len())) {
            let placed = panes::place_kind(kind, part);
            prop_assert!(placed.is_some(), "the pane was drawn but {} does not fit", kind.name);
            check(kind, part, &placed.unwrap())?;
            drawn = true;
        }
    }
    Ok(drawn)
}

fn custom_kind() -> impl Strategy<Value = KindView> {
    (1usize..=12)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec("[a-z_]{1,24}", n),
                0..n,
                proptest::collection::vec((0..n, 0..n), 0..3 * n),
                proptest::collection::vec(prop_oneof![0usize..10, 0usize..100_000], n),
            )
        })
        .prop_map(|(names, initial, edges, counts)| {
            // State names are unique within a kind.
            let states: Vec<String> = names.iter().enumerate().map(|(i, s)| format!("{s}{i}")).collect();
            kind("payment_job", &states, initial, &edges, &counts)
        })
}

fn builtin_kind() -> impl Strategy<Value = KindView> {
    (proptest::collection::vec(0usize..100_000, 6), 0usize..3).prop_map(|(counts, which)| match which {
        0 => kind(
            builtin::CIRCUIT_BREAKER,
            &owned(&RESILIENCE4J[..5]),
            0,
            &[(0, 1), (1, 2), (2, 0), (0, 3), (3, 0)],
            &counts,
        ),
        1 => kind(
            builtin::CIRCUIT_BREAKER,
            &owned(&RESILIENCE4J),
            0,
            &[(0, 1), (1, 2), (2, 0), (2, 5)],
            &counts,
        ),
        _ => kind(
            builtin::WORKER,
            &owned(&WORKER),
            0,
            &[(0, 1), (1, 2), (2, 1), (2, 3)],
            &counts,
        ),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn builtin_states_never_overlap(k in builtin_kind(), w in 100.0..2400.0f64, h in 80.0..1400.0f64) {
        check_panel(&[k], w, h)?;
    }

    #[test]
    fn custom_kinds_of_up_to_12_states_never_overlap(k in custom_kind(), w in 100.0..2400.0f64, h in 80.0..1400.0f64) {
        check_panel(&[k], w, h)?;
    }

    #[test]
    fn several_kinds_in_one_pane_never_overlap(
        a in builtin_kind(), b in custom_kind(), w in 100.0..2400.0f64, h in 80.0..1400.0f64,
    ) {
        check_panel(&[a, b], w, h)?;
    }
}

/// The sizes the issue names draw the Resilience4j diagram (not chips), so
/// the property above is not satisfied by drawing nothing.
#[test]
fn resilience4j_is_drawn_at_the_default_size_and_at_1200x800() {
    let k = kind(
        builtin::CIRCUIT_BREAKER,
        &owned(&RESILIENCE4J),
        0,
        &[(0, 1), (1, 2), (2, 0)],
        &[9586, 14, 3, 13, 10, 1],
    );
    for (w, h) in [(960.0, 560.0), (1200.0, 800.0), (600.0, 800.0)] {
        assert!(
            check_panel(std::slice::from_ref(&k), w, h).unwrap(),
            "{w}x{h}: no diagram"
        );
    }
    // metrics_only sits in the band with the other manual states, not on half_open.
    let placed = panes::place_kind(
        &k,
        Rect {
            x: 0.0,
            y: 0.0,
            w: 360.0,
            h: 700.0,
        },
    )
    .unwrap();
    let band = placed.band_top.unwrap();
    assert!(placed.nodes[5].cy > band && placed.nodes[2].cy < band);
}
