//! The machine grid: a tile per machine, worst first (the data core sorts),
//! VIRTUALISED: only the rows in the scrolled-to window plus a little
//! overscan exist in the DOM, so 10,000 machines cost what 40 do.
//!
//! A large fleet gets dense cells, over a thousand in view. Those are plain
//! elements, first written as one piece of HTML and kept from view to view
//! ([`sync_cells`]): a refresh writes only the attributes that changed, where building every cell again (as the
//! keyed list does for full tiles) took most of the DOM stage. One pair of
//! listeners on their container serves all of them.

use std::ops::Range;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::ui::format;
use crate::ui::geometry::Area;
use crate::ui::grid::Grid;
use crate::ui::panes::{Panes, SCROLLBAR};
use crate::ui::state::{Ctx, Hover};
use crate::ui::strip::{self, STRIP_UNITS};
use crate::ui::{safe_color, safe_href};
use crate::view::{CountSource, MachineView, PanelView};

/// Identifies a rendered tile: a new view, column count or tile width makes
/// every tile stale.
type TileKey = (u64, usize, u32, usize);

#[component]
pub fn Machines(ctx: Ctx, panes: Memo<Panes>) -> impl IntoView {
    let scroll_top = RwSignal::new(0.0_f64);
    let area = move || {
        panes.get().machines.unwrap_or(Area {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0,
        })
    };
    let count = move || ctx.with_ready(|r| r.view.machines.len()).unwrap_or(0);
    let generation = move || ctx.with_ready(|r| r.generation).unwrap_or(0);
    let grid = Memo::new(move |_| {
        let a = area();
        Grid::for_pane(ctx.tiles.get(), count(), a.w - SCROLLBAR, a.h)
    });
    let visible = move || -> Vec<TileKey> {
        let g = grid.get();
        let range = g.visible(count(), scroll_top.get(), area().h);
        let (current, width) = (generation(), g.tile_width.round() as u32);
        range.map(|i| (current, g.cols, width, i)).collect()
    };
    let style = move || {
        let a = area();
        format!("flex:none;width:{}px;height:{}px;scrollbar-gutter:stable", a.w, a.h)
    };
    let content_height = move || format!("height:{}px", grid.get().content_height(count()));
    // Full tiles go through the keyed list, dense cells through `sync_cells`.
    let full_tiles = move || if grid.get().is_dense() { Vec::new() } else { visible() };
    let cells_box = NodeRef::<leptos::html::Div>::new();
    let cells = StoredValue::new_local(Vec::<Cell>::new());
    Effect::new(move |_| {
        let Some(container) = cells_box.get() else { return };
        let g = grid.get();
        let range = if g.is_dense() {
            g.visible(count(), scroll_top.get(), area().h)
        } else {
            0..0
        };
        let view = ctx.with_ready(|r| r.view.clone());
        cells.update_value(|cells| sync_cells(&container, cells, view.as_deref(), range, g));
    });
    // The cell under the pointer, from its place in the grid.
    let over_cell = move |ev: web_sys::MouseEvent| {
        let cell = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
            .filter(|el| el.class_list().contains("ss-cell"));
        let (Some(cell), Some(ready)) = (cell, ctx.ready_untracked()) else {
            ctx.hover.set(None);
            return;
        };
        let g = grid.get_untracked();
        let col = (f64::from(cell.offset_left()) / (g.tile_width + g.gap)).round() as usize;
        let row = (f64::from(cell.offset_top()) / g.row_pitch).round() as usize;
        let index = row * g.cols + col;
        match pointer(&ev) {
            Some((x, y)) if index < ready.view.machines.len() => ctx.hover.set(Some(Hover {
                generation: ready.generation,
                index,
                x,
                y,
                at_ms: None,
            })),
            _ => ctx.hover.set(None),
        }
    };
    let empty = move || {
        (count() == 0).then(|| {
            let filtered = !ctx.search.get().trim().is_empty() || ctx.filter.get().is_some();
            let text = if filtered {
                "No machine matches the search and state filter."
            } else {
                "No machines to show."
            };
            view! { <div class="ss-empty">{text}</div> }
        })
    };
    view! {
        <div
            class="ss-machines"
            style=style
            on:scroll=move |ev| {
                let el: web_sys::Element = event_target(&ev);
                scroll_top.set(f64::from(el.scroll_top()));
            }
        >
            {empty}
            <div class="ss-tiles" style=content_height>
                <div
                    class="ss-cells"
                    node_ref=cells_box
                    on:mouseover=over_cell
                    on:mouseleave=move |_| ctx.hover.set(None)
                ></div>
                <For
                    each=full_tiles
                    key=|k| *k
                    children=move |(tile_generation, _, _, index)| {
                        let ready = ctx.ready_untracked().filter(|r| r.generation == tile_generation)?;
                        let view = ready.view;
                        view.machines.get(index).map(|_| tile(ctx, &view, index, tile_generation, grid.get_untracked()))
                    }
                />
            </div>
        </div>
    }
}

/// Panel-relative pointer position and the root's size, for the tooltip.
fn pointer(ev: &web_sys::MouseEvent) -> Option<(f64, f64)> {
    let target: web_sys::Element = ev.current_target()?.dyn_into().ok()?;
    let root = target.closest(".ss-root").ok()??;
    let rect = root.get_bounding_client_rect();
    Some((
        f64::from(ev.client_x()) - rect.left(),
        f64::from(ev.client_y()) - rect.top(),
    ))
}

/// Time under the pointer on a history strip.
fn time_under(ev: &web_sys::MouseEvent, from: f64, to: f64) -> Option<f64> {
    let target: web_sys::Element = ev.current_target()?.dyn_into().ok()?;
    let rect = target.get_bounding_client_rect();
    if rect.width() <= 0.0 {
        return None;
    }
    let f = ((f64::from(ev.client_x()) - rect.left()) / rect.width()).clamp(0.0, 1.0);
    Some(from + f * (to - from))
}

/// Place, size and state colours of tile or cell `index`.
fn tile_style(view: &PanelView, index: usize, grid: Grid) -> String {
    let m = &view.machines[index];
    let kind = view.kinds.get(m.kind_index);
    let node = m.state_index.and_then(|i| kind.and_then(|k| k.nodes.get(i)));
    let (x, y) = grid.position(index);
    format!(
        "left:{x}px;top:{y}px;width:{}px;height:{}px;--ss-state:{};--ss-state-text:{}",
        grid.tile_width,
        grid.tile_height,
        safe_color(&m.color),
        node.map_or("var(--ss-text)", |n| safe_color(&n.text_color)),
    )
}

/// A dense cell's attributes as last written, so a refresh writes only what
/// differs. The cell is the container's child at the same place.
struct Cell {
    class: &'static str,
    style: String,
    label: String,
}

/// Makes `container` hold one cell per machine of `range` (none without a
/// view), reusing the cells it has and writing only changed attributes.
/// Cells it lacks (all of them on the first view) are written as HTML in one
/// call: creating each element and attribute from wasm is a call into the
/// browser each, six per cell, which was most of a first render's DOM time.
fn sync_cells(
    container: &web_sys::Element,
    cells: &mut Vec<Cell>,
    view: Option<&PanelView>,
    range: Range<usize>,
    grid: Grid,
) {
    let range = match view {
        Some(v) => range.start.min(v.machines.len())..range.end.min(v.machines.len()),
        None => 0..0,
    };
    let children = container.children();
    while cells.len() > range.len() {
        cells.pop();
        if let Some(stale) = children.item(cells.len() as u32) {
            stale.remove();
        }
    }
    let Some(view) = view else { return };
    let mut added = String::new();
    for (slot, index) in range.enumerate() {
        let m = &view.machines[index];
        let class = if m.flapping { "ss-cell ss-flapping" } else { "ss-cell" };
        let style = tile_style(view, index, grid);
        let label = format!("{}: {}", m.id, m.state.as_deref().unwrap_or("unknown"));
        let Some(cell) = cells.get_mut(slot) else {
            added.push_str("<div role=\"img\" class=\"");
            added.push_str(class);
            added.push_str("\" style=\"");
            format::html_attribute(&mut added, &style);
            added.push_str("\" aria-label=\"");
            format::html_attribute(&mut added, &label);
            added.push_str("\"></div>");
            cells.push(Cell { class, style, label });
            continue;
        };
        if cell.class == class && cell.style == style && cell.label == label {
            continue;
        }
        let Some(element) = children.item(slot as u32) else {
            continue;
        };
        if cell.class != class {
            let _ = element.set_attribute("class", class);
            cell.class = class;
        }
        if cell.style != style {
            let _ = element.set_attribute("style", &style);
            cell.style = style;
        }
        if cell.label != label {
            let _ = element.set_attribute("aria-label", &label);
            cell.label = label;
        }
    }
    if !added.is_empty() {
        let _ = container.insert_adjacent_html("beforeend", &added);
    }
}

fn tile(ctx: Ctx, view: &PanelView, index: usize, generation: u64, grid: Grid) -> AnyView {
    let m: &MachineView = &view.machines[index];
    let kind = view.kinds.get(m.kind_index);
    let style = tile_style(view, index, grid);
    let hover = move |ev: web_sys::MouseEvent, at_ms: Option<f64>| {
        if let Some((x, y)) = pointer(&ev) {
            ctx.hover.set(Some(Hover {
                generation,
                index,
                x,
                y,
                at_ms,
            }));
        }
    };
    let state_color = |i: usize| {
        kind.and_then(|k| k.nodes.get(i))
            .map_or("var(--ss-text-weak)", |n| safe_color(&n.color))
            .to_owned()
    };
    let class = if m.flapping { "ss-tile ss-flapping" } else { "ss-tile" };

    let since = m.since;
    let in_state = move || {
        since.map(|s| {
            format!(
                "for {}",
                format::time_in_state(ctx.now.get(), s.start_ms, s.lower_bound)
            )
        })
    };
    let transitions_title = format!(
        "{} transition{} in the time range ({})",
        m.transitions_in_range,
        if m.transitions_in_range == 1 { "" } else { "s" },
        match m.transitions_source {
            CountSource::Counter => "counted by the exporter",
            CountSource::Samples => "seen between samples; flaps between samples are missed",
        }
    );
    let (from, to) = (view.time_range.from, view.time_range.to);
    let paths = strip::paths(&m.history, from, to)
        .into_iter()
        .map(|(i, d)| view! { <path d=d fill=state_color(i)></path> })
        .collect_view();
    // Where the pointer is on this tile's strip, as a line across it.
    let cursor = move || {
        let h = ctx
            .hover
            .get()
            .filter(|h| h.index == index && h.generation == generation)?;
        let x = (h.at_ms? - from) / (to - from) * STRIP_UNITS;
        Some(view! { <line class="ss-strip-cursor" x1=x y1="0" x2=x y2="1"></line> })
    };
    let links = m
        .links
        .iter()
        .filter(|l| safe_href(&l.url))
        .map(|l| {
            let target = l.target_blank.then_some("_blank");
            view! {
                <a href=l.url.clone() target=target rel="noopener noreferrer" title=l.url.clone()>
                    {if l.title.is_empty() { "link".to_owned() } else { l.title.clone() }}
                </a>
            }
        })
        .collect_view();

    view! {
        <div
            class=class
            style=style
            on:mouseenter=move |ev| hover(ev, None)
            on:mouseleave=move |_| ctx.hover.set(None)
        >
            <div class="ss-row">
                <span class="ss-id" title=m.id.to_string()>{m.id.to_string()}</span>
            </div>
            <div class="ss-row">
                <span class="ss-state">{m.state.as_deref().unwrap_or("unknown").to_owned()}</span>
                <span class="ss-weak">{in_state}</span>
                {m.flapping.then(|| view! { <span class="ss-flap" title="Flapping: it keeps tripping (see the flapping options)">"⚡"</span> })}
                <span class="ss-weak" title=transitions_title>{format!("↻ {}", format::count(m.transitions_in_range))}</span>
                <span class="ss-links">{links}</span>
            </div>
            <svg
                class="ss-strip"
                viewBox=format!("0 0 {STRIP_UNITS} 1")
                preserveAspectRatio="none"
                on:mousemove=move |ev| {
                    let at = time_under(&ev, from, to);
                    hover(ev, at)
                }
                on:mouseleave=move |ev| hover(ev, None)
            >
                {paths}
                {cursor}
            </svg>
        </div>
    }
    .into_any()
}
