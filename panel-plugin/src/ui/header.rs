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

/// One button per chip: all, each state, then the notes. A refresh keeps the
/// buttons and writes only the counts and titles that changed.
#[component]
fn Chips(ctx: Ctx) -> impl IntoView {
    let keys = move || {
        ctx.header.with(|h| {
            h.iter()
                .flat_map(|h| h.chips.iter())
                .enumerate()
                .map(|(i, c)| (i, c.role.clone(), c.name.clone()))
                .collect::<Vec<_>>()
        })
    };
    view! { <For each=keys key=|k| k.clone() children=move |(i, role, name)| chip_button(ctx, i, role, name)/> }
}

/// A chip: a click on a state filters to it (or stops filtering), on "all"
/// clears the filter; notes only inform.
fn chip_button(ctx: Ctx, index: usize, role: ChipRole, name: String) -> impl IntoView {
    let chip: Memo<Option<Chip>> = Memo::new(move |_| {
        ctx.header
            .with(|h| h.as_ref().and_then(|h| h.chips.get(index).cloned()))
    });
    let pressed = Memo::new(move |_| {
        let filter = ctx.filter.get();
        chip.with(|c| c.as_ref().is_some_and(|c| c.pressed(filter.as_deref())))
    });
    let field = move |f: fn(&Chip) -> String| move || chip.with(|c| c.as_ref().map(f));
    let dot = chip.with_untracked(|c| c.as_ref().is_some_and(|c| c.color.is_some()));
    let state = match &role {
        ChipRole::State(s) => Some(s.clone()),
        _ => None,
    };
    let note = matches!(role, ChipRole::Note);
    view! {
        <button
            class=move || chip.with(|c| c.as_ref().map_or("ss-chip", |c| c.class(pressed.get())))
            style=field(Chip::style)
            title=field(|c| c.title.clone())
            data-state=state
            aria-pressed=move || if pressed.get() { "true" } else { "false" }
            disabled=note
            on:click=move |_| {
                match &role {
                    ChipRole::All => ctx.set_filter(None),
                    ChipRole::State(s) => ctx.toggle_filter(s),
                    ChipRole::Note => {}
                }
            }
        >
            {dot.then(|| view! { <span class="ss-dot"></span> })}
            <span class="ss-chip-name">{name}</span>
            <span class="ss-chip-count">{field(|c| c.count.to_string())}</span>
        </button>
    }
}
