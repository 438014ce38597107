//! State diagrams, one SVG per kind: states as nodes with the number of
//! machines in each now, allowed transitions as edges as wide as they were
//! busy in the time range. The worst occupied states pulse; clicking a node
//! filters the machine grid to that state, clicking it again clears.

use leptos::prelude::*;

use crate::ui::geometry::{self, Area};
use crate::ui::panes;
use crate::ui::state::Ctx;
use crate::view::KindView;
use statescope_model::Flow;

/// An SVG `<title>` (the hover text of its parent). Written out because
/// `view!` makes `<title>` an HTML element unless its direct parent in the
/// same macro is `<svg>`, and an HTML `<title>` anywhere in the page becomes
/// the browser tab's title.
fn svg_title(text: String) -> impl IntoView {
    leptos::tachys::svg::title().child(text)
}

/// Gap between an edge's end and its target node, for the arrowhead.
const ARROW_GAP: f64 = 3.0;

#[component]
pub fn Diagrams(ctx: Ctx, area: Area) -> impl IntoView {
    let style = format!("width:{}px;height:{}px", area.w, area.h);
    let diagrams = move || {
        let view = ctx.with_ready(|r| r.view.clone())?;
        let filter = ctx.filter.get();
        let parts = panes::per_kind(Area { x: 0.0, y: 0.0, ..area }, view.kinds.len());
        Some(
            view.kinds
                .iter()
                .zip(parts)
                .enumerate()
                .map(|(i, (kind, part))| diagram(ctx, i, kind, part, filter.as_deref()))
                .collect_view(),
        )
    };
    view! { <div class="ss-diagrams" style=style>{diagrams}</div> }
}

fn diagram(ctx: Ctx, index: usize, kind: &KindView, part: Area, filter: Option<&str>) -> impl IntoView + use<> {
    // Each diagram is its own SVG, positioned in the pane; coordinates inside
    // it are relative to the part. `Body` only draws the pane when every kind fits.
    let placed = panes::place_kind(kind, part);
    let (r, centres, band) = match &placed {
        Some(p) => (
            p.radius,
            p.nodes.iter().map(|n| (n.cx, n.cy)).collect::<Vec<_>>(),
            p.band_top.map(|top| (top, p.grid, p.band_label.clone())),
        ),
        None => (0.0, Vec::new(), None),
    };
    let max_taken = kind.edges.iter().map(|e| e.taken_in_range).max().unwrap_or(0);
    // The worst severity among occupied states stands out, when it is worse than ok.
    let worst = kind
        .nodes
        .iter()
        .filter(|n| n.count_now > 0 && !n.manual)
        .map(|n| n.severity)
        .max()
        .filter(|s| *s > statescope_model::Severity::Ok);
    let marker_id = format!("ss-arrow-{index}");
    let marker_ref = format!("url(#{marker_id})");
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
            let title = format!(
                "{} → {}: taken {} time{} in the time range{}",
                kind.nodes[e.from].state,
                kind.nodes[e.to].state,
                e.taken_in_range,
                if e.taken_in_range == 1 { "" } else { "s" },
                note
            );
            let label = (e.taken_in_range > 0).then(|| {
                view! {
                    <text class="ss-edge-label" x=format!("{:.1}", shape.label.0) y=format!("{:.1}", shape.label.1)>
                        {format!("{}×", e.taken_in_range)}
                    </text>
                }
            });
            view! {
                <g>
                    {svg_title(title)}
                    <path class=class d=shape.d stroke-width=format!("{width:.1}") marker-end=marker_ref.clone()></path>
                    {label}
                </g>
            }
        })
        .collect_view();
    let band = band.map(|(top, grid, label)| {
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
        let idle = moves.is_empty();
        view! {
            <g class=if idle { "ss-band ss-idle" } else { "ss-band" }>
                {svg_title(title)}
                <line class="ss-band-line" x1=grid.x y1=top x2=grid.right() y2=top></line>
                {label.map(|(text, rect)| view! {
                    <text class="ss-band-label" x=rect.x y=rect.y + rect.h - 2.0>{text}</text>
                })}
            </g>
        }
    });

    let nodes = kind
        .nodes
        .iter()
        .zip(placed.iter().flat_map(|p| p.nodes.iter()))
        .map(|(node, at)| {
            let (cx, cy) = (at.cx, at.cy);
            let selected = filter == Some(node.state.as_str());
            let dim = filter.is_some() && !selected;
            let class = match (selected, dim) {
                (true, _) => "ss-node ss-selected",
                (_, true) => "ss-node ss-dim",
                _ => "ss-node",
            };
            let state = node.state.clone();
            let state_key = node.state.clone();
            let label = format!(
                "{}: {} machine{} now ({}{}). Click to {} the machines.",
                node.state,
                node.count_now,
                if node.count_now == 1 { "" } else { "s" },
                node.severity,
                if node.manual { ", set by hand" } else { "" },
                if selected { "stop filtering" } else { "filter" }
            );
            let ring = (Some(node.severity) == worst && node.count_now > 0 && !node.manual).then(|| {
                view! {
                    <circle class="ss-worst" cx=cx cy=cy r=r + 4.0 fill="none" stroke=node.color.clone() stroke-width="3"></circle>
                }
            });
            let outline = if selected { "var(--ss-text)" } else { node.color.as_str() };
            let title = label.clone();
            view! {
                <g
                    class=class
                    tabindex="0"
                    role="button"
                    data-state=node.state.clone()
                    aria-pressed={if selected { "true" } else { "false" }}
                    aria-label=label
                    on:click=move |_| ctx.toggle_filter(&state)
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" || ev.key() == " " {
                            ev.prevent_default();
                            ctx.toggle_filter(&state_key);
                        }
                    }
                >
                    {svg_title(title)}
                    {ring}
                    <circle
                        class="ss-node-body"
                        cx=cx
                        cy=cy
                        r=r
                        fill=node.color.clone()
                        fill-opacity={if node.count_now > 0 { "0.25" } else { "0.08" }}
                        stroke=outline.to_owned()
                        stroke-width={if selected { "3" } else { "2" }}
                    ></circle>
                    <text
                        class="ss-node-count"
                        x=cx
                        y=cy
                        text-anchor="middle"
                        dominant-baseline="central"
                        style=format!("font-size:{:.1}px", at.count_font)
                    >
                        {node.count_now.to_string()}
                    </text>
                    <text class="ss-node-name" x=cx y=at.label_box.y + at.label_box.h - 2.0 text-anchor="middle">
                        {at.label.clone()}
                    </text>
                </g>
            }
        })
        .collect_view();

    let style = format!(
        "position:absolute;left:{}px;top:{}px;width:{}px;height:{}px",
        part.x, part.y, part.w, part.h
    );
    view! {
        <div class="ss-diagram" style=style>
            <span class="ss-kind-name">{kind.name.clone()}</span>
            <svg width=part.w height=part.h role="img" aria-label=format!("State diagram of {}", kind.name)>
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
                {edges}
                {band}
                {nodes}
            </svg>
        </div>
    }
}
