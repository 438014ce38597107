//! The reactive state every part of the panel shares: what the screen says,
//! the clock, the size, the user's search and filter, and what the pointer is
//! over. Components read it through [`Ctx`]; none of them define state that
//! another imports, so the UI's modules form a tree (app -> parts -> state).
//!
//! Data flows one way: `wasm.rs` hands the decoded [`PanelInput`] (frames kept
//! between refreshes by `store.rs`) to [`Ctx::set_input`], which keeps it and runs the data core's
//! [`build_view_cached`] (reusing what earlier builds derived from the same frame descriptions); the components draw the resulting [`PanelView`]. Clicking
//! a state or typing in the search box only changes the options kept with the
//! input and runs `build_view` again, so search, filter and counts always
//! agree with what the data core computes.

use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;

use crate::input::{PanelInput, Theme};
use crate::options::{TileSize, ViewMode};
use crate::ui::chips::{self, Header};
use crate::ui::panes::{self, Panes};
use crate::view::{PanelView, ViewCache, build_view_cached};

/// How long typing in the search box waits before filtering again.
const SEARCH_DEBOUNCE: Duration = Duration::from_millis(150);

/// A view ready to draw.
#[derive(Clone, Debug)]
pub struct Ready {
    pub view: Arc<PanelView>,
    /// Changes with every new view, so keyed lists know their items are stale.
    pub generation: u64,
}

/// What the panel shows.
#[derive(Clone, Debug)]
pub enum Screen {
    Waiting,
    /// A one-line explanation instead of a drawing.
    Problem(String),
    Ready(Ready),
}

impl Screen {
    pub fn ready(&self) -> Option<&Ready> {
        match self {
            Screen::Ready(ready) => Some(ready),
            _ => None,
        }
    }
}

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
    /// The header's chips for the current view and width.
    pub header: Memo<Option<Header>>,
    /// Where the panes go for the current size, mode, header and warnings.
    pub panes: Memo<Panes>,
    input: StoredValue<Option<PanelInput>>,
    /// What the last builds derived from the frames' descriptions, reused
    /// while a refresh only brings new samples.
    cache: StoredValue<ViewCache>,
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
        let screen = RwSignal::new(Screen::Waiting);
        let size = RwSignal::new((0.0, 0.0));
        let mode = RwSignal::new(ViewMode::default());
        let header = Memo::new(move |_| {
            let width = size.get().0;
            screen.with(|s| s.ready().map(|r| chips::header(&r.view, width)))
        });
        let panes = Memo::new(move |_| {
            let (w, h) = size.get();
            let header = header.with(|h| h.as_ref().map_or(panes::HEADER_LINE, |h| h.height));
            screen.with(|s| {
                let view = s.ready().map(|r| &r.view);
                let warnings = view.is_some_and(|v| !v.warnings.is_empty());
                let top = header + if warnings { panes::WARNINGS_HEIGHT } else { 0.0 };
                panes::split(mode.get(), w, h, top, |area| {
                    view.is_some_and(|v| panes::diagram_fits(&v.kinds, area))
                })
            })
        });
        Ctx {
            screen,
            now: RwSignal::new(js_sys::Date::now()),
            size,
            theme: RwSignal::new(Theme::default()),
            mode,
            tiles: RwSignal::new(TileSize::default()),
            search: RwSignal::new(String::new()),
            filter: RwSignal::new(None),
            hover: RwSignal::new(None),
            header,
            panes,
            input: StoredValue::new(None),
            cache: StoredValue::new(ViewCache::default()),
            saved: StoredValue::new((String::new(), None)),
            generation: StoredValue::new(0),
            search_typed: StoredValue::new(0),
        }
    }

    /// Reads the ready view (tracked): `None` while waiting or on a problem.
    pub fn with_ready<T>(&self, f: impl FnOnce(&Ready) -> T) -> Option<T> {
        self.screen.with(|s| s.ready().map(f))
    }

    /// The ready view, without subscribing to it.
    pub fn ready_untracked(&self) -> Option<Ready> {
        self.screen.with_untracked(|s| s.ready().cloned())
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
        let built = self.input.try_update_value(|input| {
            input.as_mut().map(|input| {
                input.options.search = search.trim().to_owned();
                input.options.state_filter = filter;
                self.cache
                    .try_update_value(|cache| build_view_cached(input, cache))
                    .expect("the cache lives as long as the input")
            })
        });
        let screen = match built {
            None => return,
            Some(None) => Screen::Waiting,
            Some(Some(Err(problem))) => Screen::Problem(problem.to_string()),
            Some(Some(Ok(view))) => {
                let generation = self.generation.with_value(|g| g + 1);
                self.generation.set_value(generation);
                Screen::Ready(Ready {
                    view: Arc::new(view),
                    generation,
                })
            }
        };
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
}
