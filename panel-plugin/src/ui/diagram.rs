//! State diagrams, one SVG per kind: states as nodes with the number of
//! machines in each now, allowed transitions as edges as wide as they were
//! busy in the time range. The worst occupied states pulse; clicking a node
//! filters the machine grid to that state, clicking it again clears.
//!
//! A refresh keeps every element: each kind's diagram, node and edge reads
//! its part of a [`Model`] computed from the view, so only the counts, widths
//! and titles that changed are written.

use leptos::prelude::*;

use crate::ui::geometry::{self, Area};
use crate::ui::panes;
use crate::ui::state::Ctx;
use crate::view::KindView;
use statescope_model::{Flow, Severity};

/// An SVG `<title>` (the hover text of its parent). Written out because
/// `view!` makes `<title>` an HTML element unless its direct parent in the
/// same macro is `<svg>`, and an HTML `<title>` anywhere in the page becomes
/// the browser tab's title.
fn svg_title(text: impl Fn() -> Option<String> + Send + Sync + 'static) -> impl IntoView {
    leptos::tachys::svg::title().child(text)
}

/// Gap between an edge's end and its target node, for the arrowhead.
const ARROW_GAP: f64 = 3.0;

/// A kind's diagram as drawn: placed nodes and edges with their texts.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    radius: f64,
    nodes: Vec<NodeModel>,
    edges: Vec<EdgeModel>,
    band: Option<BandModel>,
}

#[derive(Clone, Debug, PartialEq)]
struct NodeModel {
    state: String,
    cx: f64,
    cy: f64,
    count: usize,
    count_font: f64,
    /// The name, cut to fit, and the baseline it is drawn on.
    label: String,
    label_y: f64,
    color: String,
    severity: Severity,
    manual: bool,
    /// Among the occupied states of the worst severity (pulses).
    worst: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct EdgeModel {
    from: usize,
    to: usize,
    d: String,
    width: String,
    class: &'static str,
    title: String,
    /// Position and text of the "3×" label, when taken.
    label: Option<(String, String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
struct BandModel {
    top: f64,
    x1: f64,
    x2: f64,
    label: Option<(String, f64, f64)>,
    title: String,
    idle: bool,
}

impl Model {
    // Each diagram is its own SVG, positioned in the pane; coordinates inside
    // it are relative to the part. `Body` only draws the pane when every kind fits.
    fn of(kind: &KindView, part: Area) -> Model {
        let Some(placed) = panes::place_kind(kind, part) else {
            return Model::default();
        };
        let r = placed.radius;
        let centres: Vec<(f64, f64)> = placed.nodes.iter().map(|n| (n.cx, n.cy)).collect();
        let max_taken = kind.edges.iter().map(|e| e.taken_in_range).max().unwrap_or(0);
        // The worst severity among occupied states stands out, when it is worse than ok.
        let worst = kind
            .nodes
            .iter()
            .filter(|n| n.count_now > 0 && !n.manual)
            .map(|n| n.severity)
            .max()
            .filter(|s| *s > Severity::Ok);
        let manual = |i: usize| kind.nodes.get(i).is_some_and(|n| n.manual);

        // Edges to and from the states set by hand are one "from any state" line
        // over the band, not a web across the diagram.
        let edges = kind
            .edges
            .iter()
            .filter(|e| e.from < centres.len() && e.to < centres.len() && e.from != e.to)
            .filter(|e| !manual(e.from) && !manual(e.to))
            .map(|e| {
                let reverse = kind.edges.iter().any(|o| o.from == e.to && o.to == e.from);
                let shape = geometry::edge(centres[e.from], centres[e.to], r, ARROW_GAP, reverse);
                let width = geometry::edge_width(e.taken_in_range, max_taken);
                let (class, note) = match (e.flow, e.taken_in_range > 0) {
                    (Some(Flow::Normal), true) => ("ss-edge", ""),
                    (Some(Flow::Normal), false) => ("ss-edge ss-idle", ""),
                    (Some(Flow::Manual), _) => ("ss-edge ss-manual", " (a manual move)"),
                    (None, _) => ("ss-edge ss-unseen", " (not an allowed transition)"),
                };
                EdgeModel {
                    from: e.from,
                    to: e.to,
                    d: shape.d,
                    width: format!("{width:.1}"),
                    class,
                    title: format!(
                        "{} → {}: taken {} time{} in the time range{}",
                        kind.nodes[e.from].state,
                        kind.nodes[e.to].state,
                        e.taken_in_range,
                        if e.taken_in_range == 1 { "" } else { "s" },
                        note
                    ),
                    label: (e.taken_in_range > 0).then(|| {
                        (
                            format!("{:.1}", shape.label.0),
                            format!("{:.1}", shape.label.1),
                            format!("{}×", e.taken_in_range),
                        )
                    }),
                }
            })
            .collect();
        let band = placed.band_top.map(|top| {
            let moves: Vec<String> = kind
                .edges
                .iter()
                .filter(|e| manual(e.from) || manual(e.to))
                .filter(|e| e.taken_in_range > 0)
                .map(|e| {
                    format!(
                        "{} → {}: {}×",
                        kind.nodes[e.from].state, kind.nodes[e.to].state, e.taken_in_range
                    )
                })
                .collect();
            let title = if moves.is_empty() {
                "States an operator sets by hand, from any state. None was set in the time range.".to_owned()
            } else {
                format!(
                    "States an operator sets by hand, from any state. In the time range:\n{}",
                    moves.join("\n")
                )
            };
            BandModel {
                top,
                x1: placed.grid.x,
                x2: placed.grid.right(),
                label: placed
                    .band_label
                    .clone()
                    .map(|(text, rect)| (text, rect.x, rect.y + rect.h - 2.0)),
                title,
                idle: moves.is_empty(),
            }
        });
        let nodes = kind
            .nodes
            .iter()
            .zip(&placed.nodes)
            .map(|(node, at)| NodeModel {
                state: node.state.clone(),
                cx: at.cx,
                cy: at.cy,
                count: node.count_now,
                count_font: at.count_font,
                label: at.label.clone(),
                label_y: at.label_box.y + at.label_box.h - 2.0,
                color: node.color.clone(),
                severity: node.severity,
                manual: node.manual,
                worst: Some(node.severity) == worst && node.count_now > 0 && !node.manual,
            })
            .collect();
        Model {
            radius: r,
            nodes,
            edges,
            band,
        }
    }
}

#[component]
pub fn Diagrams(ctx: Ctx, area: Area) -> impl IntoView {
    let style = format!("width:{}px;height:{}px", area.w, area.h);
    // A diagram per kind, kept while the kinds and their states stay the same.
    let kinds = Memo::new(move |_| {
        ctx.with_ready(|r| {
            r.view
                .kinds
                .iter()
                .map(|k| {
                    (
                        k.name.clone(),
                        k.nodes.iter().map(|n| n.state.clone()).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    });
    let each = move || {
        kinds.with(|kinds| {
            let parts = panes::per_kind(Area { x: 0.0, y: 0.0, ..area }, kinds.len());
            kinds
                .iter()
                .cloned()
                .zip(parts)
                .enumerate()
                .map(|(i, ((name, states), part))| (i, name, states, PartKey(part)))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <div class="ss-diagrams" style=style>
            <For
                each=each
                key=|k| k.clone()
                children=move |(index, name, _, PartKey(part))| diagram(ctx, index, name, part)
            />
        </div>
    }
}

/// An area as part of a key (compared bit for bit).
#[derive(Clone, Copy, Debug)]
struct PartKey(Area);

impl PartialEq for PartKey {
    fn eq(&self, other: &PartKey) -> bool {
        let bits = |a: &Area| [a.x, a.y, a.w, a.h].map(f64::to_bits);
        bits(&self.0) == bits(&other.0)
    }
}

impl Eq for PartKey {}

impl std::hash::Hash for PartKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        [self.0.x, self.0.y, self.0.w, self.0.h].map(f64::to_bits).hash(state);
    }
}

fn diagram(ctx: Ctx, index: usize, name: String, part: Area) -> impl IntoView {
    let model = Memo::new(move |_| {
        ctx.with_ready(|r| r.view.kinds.get(index).map(|k| Model::of(k, part)))
            .flatten()
            .unwrap_or_default()
    });
    let marker_id = format!("ss-arrow-{index}");
    let marker_ref = format!("url(#{marker_id})");
    let node_keys = move || model.with(|m| m.nodes.iter().map(|n| n.state.clone()).enumerate().collect::<Vec<_>>());
    let edge_keys = move || model.with(|m| m.edges.iter().map(|e| (e.from, e.to)).collect::<Vec<_>>());
    let band = Memo::new(move |_| model.with(|m| m.band.clone()));
    let style = format!(
        "position:absolute;left:{}px;top:{}px;width:{}px;height:{}px",
        part.x, part.y, part.w, part.h
    );
    let label = format!("State diagram of {name}");
    view! {
        <div class="ss-diagram" style=style>
            <span class="ss-kind-name">{name}</span>
            <svg width=part.w height=part.h role="img" aria-label=label>
                <defs>
                    <marker
                        id=marker_id
                        viewBox="0 0 10 10"
                        refX="10"
                        refY="5"
                        markerWidth="9"
                        markerHeight="9"
                        markerUnits="userSpaceOnUse"
                        orient="auto-start-reverse"
                    >
                        <path d="M0 0L10 5L0 10z" fill="var(--ss-text-weak)"></path>
                    </marker>
                </defs>
                <For
                    each=edge_keys
                    key=|k| *k
                    children=move |(from, to)| edge(model, from, to, marker_ref.clone())
                />
                {move || band.get().map(band_view)}
                <For each=node_keys key=|k| k.clone() children=move |(i, state)| node(ctx, model, i, state)/>
            </svg>
        </div>
    }
}

fn edge(model: Memo<Model>, from: usize, to: usize, marker_ref: String) -> impl IntoView {
    let e = Memo::new(move |_| model.with(|m| m.edges.iter().find(|e| (e.from, e.to) == (from, to)).cloned()));
    let get = move |f: fn(&EdgeModel) -> String| move || e.with(|e| e.as_ref().map(f));
    let label = Memo::new(move |_| e.with(|e| e.as_ref().and_then(|e| e.label.clone())));
    view! {
        <g>
            {svg_title(get(|e| e.title.clone()))}
            <path
                class=move || e.with(|e| e.as_ref().map_or("ss-edge", |e| e.class))
                d=get(|e| e.d.clone())
                stroke-width=get(|e| e.width.clone())
                marker-end=marker_ref
            ></path>
            {move || {
                label.get().map(|(x, y, text)| view! { <text class="ss-edge-label" x=x y=y>{text}</text> })
            }}
        </g>
    }
}

fn band_view(band: BandModel) -> impl IntoView {
    let title = band.title;
    view! {
        <g class=if band.idle { "ss-band ss-idle" } else { "ss-band" }>
            {svg_title(move || Some(title.clone()))}
            <line class="ss-band-line" x1=band.x1 y1=band.top x2=band.x2 y2=band.top></line>
            {band.label.map(|(text, x, y)| view! { <text class="ss-band-label" x=x y=y>{text}</text> })}
        </g>
    }
}

fn node(ctx: Ctx, model: Memo<Model>, i: usize, state: String) -> impl IntoView {
    let n = Memo::new(move |_| model.with(|m| m.nodes.get(i).cloned()));
    let radius = Memo::new(move |_| model.with(|m| m.radius));
    let selected = {
        let state = state.clone();
        Memo::new(move |_| ctx.filter.with(|f| f.as_deref() == Some(state.as_str())))
    };
    let class = move || match (selected.get(), ctx.filter.with(Option::is_some)) {
        (true, _) => "ss-node ss-selected",
        (_, true) => "ss-node ss-dim",
        _ => "ss-node",
    };
    let label = move || {
        let selected = selected.get();
        n.with(|n| {
            n.as_ref().map(|n| {
                format!(
                    "{}: {} machine{} now ({}{}). Click to {} the machines.",
                    n.state,
                    n.count,
                    if n.count == 1 { "" } else { "s" },
                    n.severity,
                    if n.manual { ", set by hand" } else { "" },
                    if selected { "stop filtering" } else { "filter" }
                )
            })
        })
    };
    let num = move |f: fn(&NodeModel) -> f64| move || n.with(|n| n.as_ref().map_or(0.0, f));
    let text = move |f: fn(&NodeModel) -> String| move || n.with(|n| n.as_ref().map(f));
    let ring = move || {
        n.get().filter(|n| n.worst).map(|n| {
            view! {
                <circle class="ss-worst" cx=n.cx cy=n.cy r=radius.get() + 4.0 fill="none" stroke=n.color stroke-width="3"></circle>
            }
        })
    };
    let (click_state, key_state) = (state.clone(), state.clone());
    view! {
        <g
            class=class
            tabindex="0"
            role="button"
            data-state=state
            aria-pressed=move || if selected.get() { "true" } else { "false" }
            aria-label=label
            on:click=move |_| ctx.toggle_filter(&click_state)
            on:keydown=move |ev| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    ctx.toggle_filter(&key_state);
                }
            }
        >
            {svg_title(label)}
            {ring}
            <circle
                class="ss-node-body"
                cx=num(|n| n.cx)
                cy=num(|n| n.cy)
                r=move || radius.get()
                fill=text(|n| n.color.clone())
                fill-opacity=move || if n.with(|n| n.as_ref().is_some_and(|n| n.count > 0)) { "0.25" } else { "0.08" }
                stroke=move || if selected.get() { Some("var(--ss-text)".to_owned()) } else { n.with(|n| n.as_ref().map(|n| n.color.clone())) }
                stroke-width=move || if selected.get() { "3" } else { "2" }
            ></circle>
            <text
                class="ss-node-count"
                x=num(|n| n.cx)
                y=num(|n| n.cy)
                text-anchor="middle"
                dominant-baseline="central"
                style=move || n.with(|n| n.as_ref().map(|n| format!("font-size:{:.1}px", n.count_font)))
            >
                {text(|n| n.count.to_string())}
            </text>
            <text class="ss-node-name" x=num(|n| n.cx) y=num(|n| n.label_y) text-anchor="middle">
                {text(|n| n.label.clone())}
            </text>
        </g>
    }
}
