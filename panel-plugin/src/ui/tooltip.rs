//! The tooltip over a machine tile: labels, since when it is in its state,
//! transitions, share of time per state, and (over the history strip) the
//! state at the time under the pointer. One element for the whole panel.

use leptos::prelude::*;

use crate::ui::app::{Ctx, Screen};
use crate::ui::format;
use crate::ui::safe_color;
use crate::ui::strip;

/// What the pointer is over, in panel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hover {
    pub generation: u64,
    pub index: usize,
    pub x: f64,
    pub y: f64,
    /// Time under the pointer on the history strip.
    pub at_ms: Option<f64>,
}

const WIDTH: f64 = 320.0;
const OFFSET: f64 = 14.0;

/// Local date and time, as the browser formats it.
fn local_time(ms: f64) -> String {
    let d = js_sys::Date::new(&ms.into());
    String::from(d.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

#[component]
pub fn Tooltip(ctx: Ctx) -> impl IntoView {
    move || {
        let hover = ctx.hover.get()?;
        let Screen::Ready { view, generation } = ctx.screen.get_untracked() else {
            return None;
        };
        if generation != hover.generation {
            return None;
        }
        let m = view.machines.get(hover.index)?;
        let kind = view.kinds.get(m.kind_index);
        let node = |i: usize| kind.and_then(|k| k.nodes.get(i));
        let (w, h) = ctx.size.get_untracked();
        let left = if hover.x + OFFSET + WIDTH > w {
            (hover.x - OFFSET - WIDTH).max(0.0)
        } else {
            hover.x + OFFSET
        };
        let vertical = if hover.y > h / 2.0 {
            format!("bottom:{}px", (h - hover.y + OFFSET).max(0.0))
        } else {
            format!("top:{}px", hover.y + OFFSET)
        };
        let style = format!("left:{left}px;{vertical};width:{WIDTH}px");

        let mut rows: Vec<(String, String)> = Vec::new();
        if let Some(k) = kind {
            rows.push(("kind".into(), k.name.clone()));
        }
        rows.extend(m.labels.iter().cloned());
        rows.push((
            "state".into(),
            m.state.clone().unwrap_or_else(|| "unknown (no sample)".into()),
        ));
        if let Some(s) = m.since {
            let prefix = if s.lower_bound { "before " } else { "" };
            let exact = if s.exact { "" } else { " (from samples)" };
            rows.push(("since".into(), format!("{prefix}{}{exact}", local_time(s.start_ms))));
        }
        rows.push(("transitions".into(), m.transitions_in_range.to_string()));
        if m.flapping {
            rows.push(("flapping".into(), "yes".into()));
        }
        let at = hover.at_ms.map(|t| {
            let state = strip::segment_at(&m.history, t)
                .and_then(|s| s.state_index)
                .and_then(node)
                .map_or("no data".to_owned(), |n| n.state.clone());
            format!("{}: {state}", local_time(t))
        });
        let share = m
            .share
            .iter()
            .filter_map(|&(i, f)| node(i).map(|n| (n.state.clone(), safe_color(&n.color).to_owned(), f)))
            .map(|(name, color, f)| {
                let dot = format!("background:{color}");
                view! {
                    <tr>
                        <td><span class="ss-sev" style=dot></span>{name}</td>
                        <td>{format::percent(f)}</td>
                    </tr>
                }
            })
            .collect_view();
        Some(view! {
            <div class="ss-tooltip" style=style role="tooltip">
                <div class="ss-title">{m.id.clone()}</div>
                {at.map(|a| view! { <div class="ss-title">{a}</div> })}
                <table>
                    {rows
                        .into_iter()
                        .map(|(k, v)| {
                            let full = v.clone();
                            view! { <tr><td class="ss-weak">{k}</td><td title=full>{v}</td></tr> }
                        })
                        .collect_view()}
                </table>
                <div class="ss-weak" style="margin-top:4px">"Share of time in range"</div>
                <table>{share}</table>
            </div>
        })
    }
}
