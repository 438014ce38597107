//! The panel's root component and the reactive state every part shares.
//!
//! Data flows one way: `wasm.rs` hands the decoded [`PanelInput`] to
//! [`Ctx::set_input`], which keeps it and runs the data core's
//! [`build_view`]; the components draw the resulting [`PanelView`]. Clicking
//! a state or typing in the search box only changes the options kept with the
//! input and runs `build_view` again, so search, filter and counts always
//! agree with what the data core computes.

use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;

use crate::input::{PanelInput, Theme};
use crate::options::{TileSize, ViewMode};
use crate::ui::chips::{self, ChipRole};
use crate::ui::diagram::Diagrams;
use crate::ui::machines::Machines;
use crate::ui::panes::{self, Panes};
use crate::ui::safe_color;
use crate::ui::style;
use crate::ui::tooltip::{Hover, Tooltip};
use crate::view::{PanelView, build_view};

/// How long typing in the search box waits before filtering again.
const SEARCH_DEBOUNCE: Duration = Duration::from_millis(150);

/// What the panel shows.
#[derive(Clone, Debug)]
pub enum Screen {
    Waiting,
    /// A one-line explanation instead of a drawing.
    Problem(String),
    /// `generation` changes with every new view, so keyed lists know their
    /// items are stale.
    Ready {
        view: Arc<PanelView>,
        generation: u64,
    },
}

/// Reactive state shared by the components. Copy: it is a bundle of arena
/// handles, owned by the panel's reactive owner.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub screen: RwSignal<Screen>,
    /// Wall clock for "time in state", epoch ms; ticks every second.
    pub now: RwSignal<f64>,
    /// Panel size in CSS pixels.
    pub size: RwSignal<(f64, f64)>,
    pub theme: RwSignal<Theme>,
    pub mode: RwSignal<ViewMode>,
    pub tiles: RwSignal<TileSize>,
    /// Search text and state filter as the user set them in the panel; start
    /// from the saved options.
    pub search: RwSignal<String>,
    pub filter: RwSignal<Option<String>>,
    pub hover: RwSignal<Option<Hover>>,
    input: StoredValue<Option<PanelInput>>,
    /// The saved options' search and filter last seen, so a data refresh does
    /// not undo what the user typed, but editing the saved options does.
    saved: StoredValue<(String, Option<String>)>,
    generation: StoredValue<u64>,
    search_typed: StoredValue<u64>,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx::new()
    }
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            screen: RwSignal::new(Screen::Waiting),
            now: RwSignal::new(js_sys::Date::now()),
            size: RwSignal::new((0.0, 0.0)),
            theme: RwSignal::new(Theme::default()),
            mode: RwSignal::new(ViewMode::default()),
            tiles: RwSignal::new(TileSize::default()),
            search: RwSignal::new(String::new()),
            filter: RwSignal::new(None),
            hover: RwSignal::new(None),
            input: StoredValue::new(None),
            saved: StoredValue::new((String::new(), None)),
            generation: StoredValue::new(0),
            search_typed: StoredValue::new(0),
        }
    }

    /// A new input from Grafana (data, options, time range, size or theme).
    pub fn set_input(&self, input: Result<PanelInput, String>) {
        let input = match input {
            Ok(input) => input,
            Err(message) => {
                self.input.set_value(None);
                self.screen.set(Screen::Problem(message));
                return;
            }
        };
        let saved = (input.options.search.clone(), input.options.state_filter.clone());
        if self.saved.with_value(|s| *s != saved) {
            self.search.set(saved.0.clone());
            self.filter.set(saved.1.clone());
            self.saved.set_value(saved);
        }
        self.size.set((input.width, input.height));
        self.now.set(input.now);
        self.mode.set(input.options.view);
        self.tiles.set(input.options.tiles);
        self.theme.set(input.theme.clone());
        self.input.set_value(Some(input));
        self.rebuild();
    }

    /// Runs the data core again with the current search and filter.
    pub fn rebuild(&self) {
        self.hover.set(None);
        let search = self.search.get_untracked();
        let filter = self.filter.get_untracked();
        let screen = self.input.try_update_value(|input| match input {
            None => Screen::Waiting,
            Some(input) => {
                input.options.search = search.trim().to_owned();
                input.options.state_filter = filter;
                match build_view(input) {
                    Ok(view) => Screen::Ready {
                        view: Arc::new(view),
                        generation: 0,
                    },
                    Err(problem) => Screen::Problem(problem.to_string()),
                }
            }
        });
        let Some(mut screen) = screen else { return };
        if let Screen::Ready { generation, .. } = &mut screen {
            *generation = self.generation.with_value(|g| g + 1);
            self.generation.set_value(*generation);
        }
        self.screen.set(screen);
    }

    /// Toggles the state filter (a click on a diagram node).
    pub fn toggle_filter(&self, state: &str) {
        let next = match self.filter.get_untracked() {
            Some(current) if current == state => None,
            _ => Some(state.to_owned()),
        };
        self.filter.set(next);
        self.rebuild();
    }

    pub fn set_filter(&self, state: Option<String>) {
        self.filter.set(state);
        self.rebuild();
    }

    /// Search text typed: filter again once typing pauses.
    pub fn type_search(&self, text: String) {
        self.search.set(text);
        let ticket = self.search_typed.with_value(|t| t + 1);
        self.search_typed.set_value(ticket);
        let ctx = *self;
        set_timeout(
            move || {
                // A later keystroke has its own timer; only the last one rebuilds.
                if ctx.search_typed.try_with_value(|t| *t == ticket) == Some(true) {
                    ctx.rebuild();
                }
            },
            SEARCH_DEBOUNCE,
        );
    }

    /// The current view, if there is one (not tracked).
    pub fn view_untracked(&self) -> Option<Arc<PanelView>> {
        self.screen.with_untracked(|s| match s {
            Screen::Ready { view, .. } => Some(view.clone()),
            _ => None,
        })
    }

    /// The header's chips for the current view and width.
    pub fn header(&self) -> Option<chips::Header> {
        let width = self.size.get().0;
        self.screen.with(|s| match s {
            Screen::Ready { view, .. } => Some(chips::header(view, width)),
            _ => None,
        })
    }

    /// Where the panes go for the current size, mode, header and warnings.
    pub fn panes(&self) -> Panes {
        let (w, h) = self.size.get();
        let header = self.header().map_or(panes::HEADER_LINE, |h| h.height);
        self.screen.with(|s| {
            let view = match s {
                Screen::Ready { view, .. } => Some(view),
                _ => None,
            };
            let warnings = view.is_some_and(|v| !v.warnings.is_empty());
            let top = header + if warnings { panes::WARNINGS_HEIGHT } else { 0.0 };
            panes::split(self.mode.get(), w, h, top, |area| {
                view.is_some_and(|v| panes::diagram_fits(&v.kinds, area))
            })
        })
    }
}

/// The panel root: theme variables, stylesheet, and what the screen says.
#[component]
pub fn App(ctx: Ctx) -> impl IntoView {
    let is_ready = move || ctx.screen.with(|s| matches!(s, Screen::Ready { .. }));
    let message = move || {
        ctx.screen.with(|s| match s {
            Screen::Waiting => Some(("ss-message", "Loading…".to_owned())),
            Screen::Problem(text) => Some(("ss-message", text.clone())),
            Screen::Ready { .. } => None,
        })
    };
    view! {
        <div class="ss-root" style=move || ctx.theme.with(style::theme_vars)>
            <style>{style::CSS}</style>
            <Show
                when=is_ready
                fallback=move || {
                    message().map(|(class, text)| view! { <div class=class role="status">{text}</div> })
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

/// Search box and state chips, at places that do not move.
#[component]
fn Header(ctx: Ctx) -> impl IntoView {
    let header = Memo::new(move |_| ctx.header());
    let chips = move || {
        let header = header.get()?;
        let filter = ctx.filter.get();
        Some(
            header
                .chips
                .into_iter()
                .map(|c| {
                    let pressed = match &c.role {
                        ChipRole::All => filter.is_none(),
                        ChipRole::State(s) => filter.as_deref() == Some(s.as_str()),
                        ChipRole::Note => false,
                    };
                    let mut style = format!("left:{}px;top:{}px;width:{}px;", c.x, c.y, c.w);
                    if let Some(color) = &c.color {
                        style.push_str(&format!("--ss-state:{};", safe_color(color)));
                    }
                    if let Some(color) = &c.text_color {
                        style.push_str(&format!("--ss-state-text:{};", safe_color(color)));
                    }
                    let class = match (&c.role, pressed) {
                        (ChipRole::Note, _) => "ss-chip ss-note",
                        (_, true) => "ss-chip ss-pressed",
                        _ => "ss-chip",
                    };
                    let dot = c.color.is_some().then(|| view! { <span class="ss-dot"></span> });
                    let role = c.role.clone();
                    let clickable = !matches!(role, ChipRole::Note);
                    view! {
                        <button
                            class=class
                            style=style
                            title=c.title.clone()
                            data-state={match &c.role {
                                ChipRole::State(s) => Some(s.clone()),
                                _ => None,
                            }}
                            aria-pressed={if pressed { "true" } else { "false" }}
                            disabled={!clickable}
                            on:click=move |_| {
                                match &role {
                                    ChipRole::All => ctx.set_filter(None),
                                    ChipRole::State(s) => ctx.toggle_filter(s),
                                    ChipRole::Note => {}
                                }
                            }
                        >
                            {dot}
                            <span class="ss-chip-name">{c.name.clone()}</span>
                            <span class="ss-chip-count">{c.count.to_string()}</span>
                        </button>
                    }
                })
                .collect_view(),
        )
    };
    let height = move || format!("height:{}px", header.get().map_or(panes::HEADER_LINE, |h| h.height));
    view! {
        <div class="ss-header" style=height role="toolbar" aria-label="States">
            <input
                class="ss-search"
                type="search"
                placeholder="Search machines"
                aria-label="Search machines"
                prop:value=move || ctx.search.get()
                on:input=move |ev| ctx.type_search(event_target_value(&ev))
            />
            {chips}
        </div>
    }
}

#[component]
fn Warnings(ctx: Ctx) -> impl IntoView {
    move || {
        let warnings = ctx.screen.with(|s| match s {
            Screen::Ready { view, .. } => view.warnings.clone(),
            _ => Vec::new(),
        });
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
    let panes = Memo::new(move |_| ctx.panes());
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
