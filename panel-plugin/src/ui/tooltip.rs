//! The tooltip over a machine tile: labels, since when it is in its state,
//! transitions, share of time per state, and (over the history strip) the
//! stretch under the pointer. Times read as "12 min ago" with the date
//! beside them. One element for the whole panel, kept inside it.

use leptos::prelude::*;

use crate::ui::format;
use crate::ui::safe_color;
use crate::ui::state::Ctx;
use crate::ui::strip;

const WIDTH: f64 = 340.0;
const OFFSET: f64 = 14.0;
/// Space kept between the tooltip and the panel's edges.
const MARGIN: f64 = 4.0;
/// A tooltip line (12 px text, line height 1.35) and the box's padding.
const LINE: f64 = 16.5;
const CHROME: f64 = 12.0 + 2.0 + 6.0;

/// Labels that say where the data came from, not which machine it is.
const NOISE_LABELS: [&str; 3] = ["instance", "job", "__name__"];

/// Local date and time, as the browser formats it.
fn local_time(ms: f64) -> String {
    let d = js_sys::Date::new(&ms.into());
    String::from(d.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

/// Where a box `w` x `h` goes for a pointer at `x`, `y` in a panel `pw` x
/// `ph`: beside the pointer, flipped to the other side where it would leave
/// the panel, and never outside it.
fn position(x: f64, y: f64, w: f64, h: f64, pw: f64, ph: f64) -> (f64, f64) {
    let left = if x + OFFSET + w + MARGIN <= pw {
        x + OFFSET
    } else {
        x - OFFSET - w
    };
    let top = if y + OFFSET + h + MARGIN <= ph {
        y + OFFSET
    } else {
        y - OFFSET - h
    };
    let clamp = |v: f64, size: f64, room: f64| v.min(room - size - MARGIN).max(MARGIN);
    (clamp(left, w, pw), clamp(top, h, ph))
}

#[component]
pub fn Tooltip(ctx: Ctx) -> impl IntoView {
    move || {
        let hover = ctx.hover.get()?;
        let view = ctx.ready_untracked().filter(|r| r.generation == hover.generation)?.view;
        let m = view.machines.get(hover.index)?;
        let kind = view.kinds.get(m.kind_index);
        let node = |i: usize| kind.and_then(|k| k.nodes.get(i));
        let now = ctx.now.get_untracked();
        // (name, value, full date beside it)
        let mut rows: Vec<(String, String, Option<String>)> = Vec::new();
        if let Some(k) = kind {
            rows.push(("kind".into(), k.name.clone(), None));
        }
        rows.extend(
            m.labels
                .iter()
                .filter(|(k, _)| !NOISE_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone(), None)),
        );
        rows.push((
            "state".into(),
            m.state.as_deref().unwrap_or("unknown (no sample)").to_owned(),
            None,
        ));
        if let Some(s) = m.since {
            // Whether the start was read from samples goes with the date.
            let prefix = if s.lower_bound { "before " } else { "" };
            let exact = if s.exact { "" } else { " (sampled)" };
            rows.push((
                "since".into(),
                format!("{prefix}{}", format::ago(now, s.start_ms)),
                Some(format!("{}{exact}", local_time(s.start_ms))),
            ));
        }
        rows.push((
            "transitions".into(),
            format!("{} in range", m.transitions_in_range),
            None,
        ));
        if m.flapping {
            rows.push(("flapping".into(), "yes: it keeps tripping".into(), None));
        }
        // Over the strip: the stretch under the pointer, when it began and how long it lasted.
        let at = hover.at_ms.map(|t| {
            let seg = strip::segment_at(&m.history, t);
            let state = seg
                .and_then(|s| s.state_index)
                .and_then(node)
                .map_or("no data".to_owned(), |n| n.state.clone());
            match seg {
                Some(s) => (
                    format!(
                        "{state} from {} for {}",
                        format::ago(now, s.start_ms),
                        format::duration(s.end_ms - s.start_ms)
                    ),
                    local_time(s.start_ms),
                ),
                None => (state, local_time(t)),
            }
        });
        let share = m
            .share
            .iter()
            .filter_map(|&(i, f)| node(i).map(|n| (n.state.clone(), safe_color(&n.color).to_owned(), f)))
            .map(|(name, color, f)| {
                let dot = format!("background:{color}");
                view! {
                    <span class="ss-share-item"><span class="ss-sev" style=dot></span>{name}" "{format::percent(f)}</span>
                }
            })
            .collect_view();

        let (pw, ph) = ctx.size.get_untracked();
        let w = WIDTH.min(pw - 2.0 * MARGIN).max(0.0);
        let dates = rows.iter().filter(|r| r.2.is_some()).count();
        let lines = 1 + usize::from(at.is_some()) * 2 + rows.len() + dates + 1 + m.share.len().div_ceil(3);
        let h = (CHROME + lines as f64 * LINE).min(ph - 2.0 * MARGIN).max(0.0);
        let (left, top) = position(hover.x, hover.y, w, h, pw, ph);
        let style = format!("left:{left}px;top:{top}px;width:{w}px;max-height:{h}px");
        Some(view! {
            <div class="ss-tooltip" style=style role="tooltip">
                <div class="ss-title">{m.id.to_string()}</div>
                {at.map(|(a, date)| view! { <div class="ss-at">{a}<div class="ss-weak">{date}</div></div> })}
                <table>
                    {rows
                        .into_iter()
                        .map(|(k, v, date)| {
                            let full = v.clone();
                            // The full date goes on a line of its own under the time, so it is never cut.
                            view! {
                                <tr>
                                    <td class="ss-weak">{k}</td>
                                    <td title=full>{v}</td>
                                </tr>
                                {date.map(|d| view! { <tr><td></td><td class="ss-weak ss-date">{d}</td></tr> })}
                            }
                        })
                        .collect_view()}
                </table>
                <div class="ss-shares"><span class="ss-weak">"share: "</span>{share}</div>
            </div>
        })
    }
}
