//! The machine grid: a tile per machine, worst first (the data core sorts),
//! VIRTUALISED: only the rows in the scrolled-to window plus a little
//! overscan exist in the DOM, so 10,000 machines cost what 40 do.
//!
//! Tiles are keyed by their place in the grid, not by view: a refresh keeps
//! every tile element still in the window and writes only the attributes and
//! text whose values changed (see [`crate::ui::tile`]). Places, not machines:
//! worst first, a machine that changes state moves and shifts every tile
//! between its old and new place, which keyed by machine would rewrite all
//! their positions; by place, a run of tiles in one state stays as it was.
//! "For 2 min" counts up from the clock without rebuilding the tile.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::ui::format;
use crate::ui::geometry::Area;
use crate::ui::grid::Grid;
use crate::ui::panes::{Panes, SCROLLBAR};
use crate::ui::state::{Ctx, Hover};
use crate::ui::strip::STRIP_UNITS;
use crate::ui::tile::{self, Tile};
use crate::view::LinkView;

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
    let grid = Memo::new(move |_| {
        let a = area();
        Grid::for_pane(ctx.tiles.get(), count(), a.w - SCROLLBAR, a.h)
    });
    // The places in view, and whether they are cells or full tiles.
    let window = move || {
        let g = grid.get();
        let dense = g.is_dense();
        g.visible(count(), scroll_top.get(), area().h)
            .map(move |index| (dense, index))
    };
    let style = move || {
        let a = area();
        format!("flex:none;width:{}px;height:{}px;scrollbar-gutter:stable", a.w, a.h)
    };
    let content_height = move || format!("height:{}px", grid.get().content_height(count()));
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
                <For
                    each=window
                    key=|k| *k
                    children=move |(dense, index)| {
                        if dense { cell(ctx, index, grid).into_any() } else { full_tile(ctx, index, grid).into_any() }
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

/// Points the tooltip at the machine now at `index` (and the strip's time
/// under the pointer).
fn hover(ctx: Ctx, index: usize, ev: &web_sys::MouseEvent, at_ms: Option<f64>) {
    let Some(ready) = ctx.ready_untracked() else {
        return;
    };
    if let Some((x, y)) = pointer(ev) {
        ctx.hover.set(Some(Hover {
            generation: ready.generation,
            index,
            x,
            y,
            at_ms,
        }));
    }
}

/// A dense cell: one square in the state's colour.
fn cell(ctx: Ctx, index: usize, grid: Memo<Grid>) -> impl IntoView {
    let cell = Memo::new(move |_| {
        let g = grid.get();
        ctx.with_ready(|r| tile::cell(&r.view, index, &g)).flatten()
    });
    view! {
        <div
            class=move || cell.with(|c| c.as_ref().map_or("ss-cell", |c| c.class))
            style=move || cell.with(|c| c.as_ref().map(|c| c.style.clone()))
            role="img"
            aria-label=move || cell.with(|c| c.as_ref().map(|c| c.label.clone()))
            on:mouseenter=move |ev| hover(ctx, index, &ev, None)
            on:mouseleave=move |_| ctx.hover.set(None)
        ></div>
    }
}

/// A memo of one part of a tile, so the DOM that shows it is only touched
/// when that part changed.
fn part<T>(tile: Memo<Option<Tile>>, f: impl Fn(&Tile) -> T + Send + Sync + 'static) -> Memo<Option<T>>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    Memo::new(move |_| tile.with(|t| t.as_ref().map(&f)))
}

/// A full tile: id, state and for how long, flapping mark, transitions,
/// links, and the history strip.
fn full_tile(ctx: Ctx, index: usize, grid: Memo<Grid>) -> impl IntoView {
    let tile = Memo::new(move |_| {
        let g = grid.get();
        ctx.with_ready(|r| tile::tile(&r.view, index, &g)).flatten()
    });
    let id = part(tile, |t| t.id.clone());
    let since = part(tile, |t| t.since);
    let in_state = move || {
        since.get().flatten().map(|s| {
            format!(
                "for {}",
                format::time_in_state(ctx.now.get(), s.start_ms, s.lower_bound)
            )
        })
    };
    let flapping = part(tile, |t| t.flapping);
    let links = part(tile, |t| t.links.clone());
    let range = part(tile, |t| t.range);
    // The strip's paths, one per state, each keeping its element while its `d` changes.
    let states = part(tile, |t| {
        t.strip.iter().map(|p| (p.state, p.color.clone())).collect::<Vec<_>>()
    });
    let strip = move || states.get().unwrap_or_default();
    let path = move |(state, color): (usize, String)| {
        let d = move || {
            tile.with(|t| {
                t.as_ref()
                    .and_then(|t| t.strip.iter().find(|p| p.state == state))
                    .map(|p| p.d.clone())
            })
        };
        view! { <path d=d fill=color></path> }
    };
    // Where the pointer is on this tile's strip, as a line across it.
    let cursor = move || {
        let h = ctx.hover.get()?;
        let generation = ctx.with_ready(|r| r.generation)?;
        if h.index != index || h.generation != generation {
            return None;
        }
        let (from, to) = range.get()?;
        let x = (h.at_ms? - from) / (to - from) * STRIP_UNITS;
        Some(view! { <line class="ss-strip-cursor" x1=x y1="0" x2=x y2="1"></line> })
    };
    let on_strip = move |ev: web_sys::MouseEvent| {
        let at = range.get_untracked().and_then(|(from, to)| time_under(&ev, from, to));
        hover(ctx, index, &ev, at)
    };
    view! {
        <div
            class=move || tile.with(|t| t.as_ref().map_or("ss-tile", |t| t.class))
            style=move || tile.with(|t| t.as_ref().map(|t| t.style.clone()))
            on:mouseenter=move |ev| hover(ctx, index, &ev, None)
            on:mouseleave=move |_| ctx.hover.set(None)
        >
            <div class="ss-row">
                <span class="ss-id" title=move || id.get()>{move || id.get()}</span>
            </div>
            <div class="ss-row">
                <span class="ss-state">{move || tile.with(|t| t.as_ref().map(|t| t.state.clone()))}</span>
                <span class="ss-weak">{in_state}</span>
                {move || {
                    (flapping.get() == Some(true)).then(|| view! {
                        <span class="ss-flap" title="Flapping: it keeps tripping (see the flapping options)">"⚡"</span>
                    })
                }}
                <span class="ss-weak" title=move || tile.with(|t| t.as_ref().map(|t| t.transitions_title.clone()))>
                    {move || tile.with(|t| t.as_ref().map(|t| t.transitions.clone()))}
                </span>
                <span class="ss-links">{move || links.get().map(|l| l.into_iter().map(link).collect_view())}</span>
            </div>
            <svg
                class="ss-strip"
                viewBox=format!("0 0 {STRIP_UNITS} 1")
                preserveAspectRatio="none"
                on:mousemove=on_strip
                on:mouseleave=move |ev| hover(ctx, index, &ev, None)
            >
                <For each=strip key=|p| p.clone() children=path/>
                {cursor}
            </svg>
        </div>
    }
}

fn link(l: LinkView) -> impl IntoView {
    let target = l.target_blank.then_some("_blank");
    let text = if l.title.is_empty() { "link".to_owned() } else { l.title };
    let href = l.url.clone();
    view! {
        <a href=href target=target rel="noopener noreferrer" title=l.url>
            {text}
        </a>
    }
}
