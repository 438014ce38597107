//! The panel's root component: the theme and stylesheet, then either a
//! message (loading, or why nothing can be drawn) or the header, warnings,
//! diagrams, machine grid and tooltip. The state they share is in
//! [`crate::ui::state`].

use leptos::prelude::*;

use crate::ui::diagram::Diagrams;
use crate::ui::header::Header;
use crate::ui::machines::Machines;
use crate::ui::state::Screen;
use crate::ui::style;
use crate::ui::tooltip::Tooltip;

// The entry point mounts `App` with a `Ctx` it made.
pub use crate::ui::state::Ctx;

/// The panel root: theme variables, stylesheet, and what the screen says.
#[component]
pub fn App(ctx: Ctx) -> impl IntoView {
    let is_ready = move || ctx.screen.with(|s| s.ready().is_some());
    let message = move || {
        ctx.screen.with(|s| match s {
            Screen::Waiting => Some("Loading…".to_owned()),
            Screen::Problem(text) => Some(text.clone()),
            Screen::Ready(_) => None,
        })
    };
    view! {
        <div class="ss-root" style=move || ctx.theme.with(style::theme_vars)>
            <style>{style::CSS}</style>
            <Show
                when=is_ready
                fallback=move || {
                    message().map(|text| view! { <div class="ss-message" role="status">{text}</div> })
                }
            >
                <Header ctx=ctx/>
                <Warnings ctx=ctx/>
                <Body ctx=ctx/>
                <Tooltip ctx=ctx/>
            </Show>
        </div>
    }
}

#[component]
fn Warnings(ctx: Ctx) -> impl IntoView {
    move || {
        let warnings = ctx.with_ready(|r| r.view.warnings.clone()).unwrap_or_default();
        (!warnings.is_empty()).then(|| {
            let all = warnings.join("\n");
            let first = if warnings.len() > 1 {
                format!("⚠ {} (+{} more)", warnings[0], warnings.len() - 1)
            } else {
                format!("⚠ {}", warnings[0])
            };
            view! { <div class="ss-warnings" title=all>{first}</div> }
        })
    }
}

#[component]
fn Body(ctx: Ctx) -> impl IntoView {
    let panes = ctx.panes;
    let class = move || {
        if panes.get().side_by_side {
            "ss-body"
        } else {
            "ss-body ss-column"
        }
    };
    view! {
        <div class=class>
            {move || panes.get().diagram.map(|area| view! { <Diagrams ctx=ctx area=area/> })}
            {move || {
                panes.with(|p| p.chips_only && p.machines.is_none()).then(|| {
                    view! { <div class="ss-empty">"The panel is too small for the diagram: the counts are in the chips above."</div> }
                })
            }}
            <Show when=move || panes.with(|p| p.machines.is_some())>
                <Machines ctx=ctx panes=panes/>
            </Show>
        </div>
    }
}
