//! The header's components: the search box, then the chips [`chips::header`]
//! placed, one button each.

use leptos::prelude::*;

use crate::ui::chips::{Chip, ChipRole};
use crate::ui::panes;
use crate::ui::state::Ctx;

/// Search box and state chips, at places that do not move.
#[component]
pub fn Header(ctx: Ctx) -> impl IntoView {
    let height = move || {
        let height = ctx.header.with(|h| h.as_ref().map_or(panes::HEADER_LINE, |h| h.height));
        format!("height:{height}px")
    };
    view! {
        <div class="ss-header" style=height role="toolbar" aria-label="States">
            <SearchBox ctx=ctx/>
            <Chips ctx=ctx/>
        </div>
    }
}

/// Filters the machines by id, kind, label or state once typing pauses.
#[component]
fn SearchBox(ctx: Ctx) -> impl IntoView {
    view! {
        <input
            class="ss-search"
            type="search"
            placeholder="Search machines"
            aria-label="Search machines"
            prop:value=move || ctx.search.get()
            on:input=move |ev| ctx.type_search(event_target_value(&ev))
        />
    }
}

/// One button per chip: all, each state, then the notes.
#[component]
fn Chips(ctx: Ctx) -> impl IntoView {
    move || {
        let header = ctx.header.get()?;
        let filter = ctx.filter.get();
        Some(
            header
                .chips
                .into_iter()
                .map(|chip| chip_button(ctx, chip, filter.as_deref()))
                .collect_view(),
        )
    }
}

/// A chip: a click on a state filters to it (or stops filtering), on "all"
/// clears the filter; notes only inform.
fn chip_button(ctx: Ctx, chip: Chip, filter: Option<&str>) -> impl IntoView + use<> {
    let pressed = chip.pressed(filter);
    let dot = chip.color.is_some().then(|| view! { <span class="ss-dot"></span> });
    let state = match &chip.role {
        ChipRole::State(s) => Some(s.clone()),
        _ => None,
    };
    let role = chip.role.clone();
    let (class, style) = (chip.class(pressed), chip.style());
    view! {
        <button
            class=class
            style=style
            title=chip.title
            data-state=state
            aria-pressed={if pressed { "true" } else { "false" }}
            disabled=matches!(role, ChipRole::Note)
            on:click=move |_| {
                match &role {
                    ChipRole::All => ctx.set_filter(None),
                    ChipRole::State(s) => ctx.toggle_filter(s),
                    ChipRole::Note => {}
                }
            }
        >
            {dot}
            <span class="ss-chip-name">{chip.name}</span>
            <span class="ss-chip-count">{chip.count.to_string()}</span>
        </button>
    }
}
