//! The view model: everything the UI draws, as plain data (no UI types, so
//! it is tested natively). The `view` module's `build_view` computes it; the
//! stages it runs (`derive`, `kinds`, `links`, `timeline`) produce parts of
//! it. A leaf: it imports no stage, so every stage can import it.
//!
//! Indices tie the parts together: a machine's `kind_index` points into
//! [`PanelView::kinds`], and every `state_index` (current state, history
//! segments, shares) points into that kind's `nodes`.

use std::sync::Arc;

use serde::Serialize;
use statescope_model::{Flow, Severity};

use crate::input::TimeRange;
use crate::layout;

/// What the panel draws.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PanelView {
    /// One state diagram per kind present, in order of first appearance.
    pub kinds: Vec<KindView>,
    /// Machine tiles after search, state filter, sort and `max_tiles`.
    pub machines: Vec<MachineView>,
    /// Machines that matched search and filter but were cut by `max_tiles`.
    pub machines_hidden: usize,
    /// Counts over all machines matching the search (the state filter is not
    /// applied, so clicking a state does not empty the diagram).
    pub totals: Totals,
    /// The range history segments are clipped to, epoch ms.
    pub time_range: TimeRange,
    /// Non-fatal issues for a small banner, one line each.
    pub warnings: Vec<String>,
}

/// A kind's state diagram.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindView {
    pub name: String,
    /// Where the states and transitions came from.
    pub source: KindSource,
    /// The kind's states, in the kind's order.
    pub nodes: Vec<NodeView>,
    /// Allowed transitions, and transitions seen in range though not allowed.
    pub edges: Vec<EdgeView>,
    /// Index of the initial state in `nodes`.
    pub initial: usize,
    /// Each node's cell in the diagram, from `layout`.
    pub grid: layout::Grid,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSource {
    /// `circuit_breaker` or `worker`, as the model defines them.
    #[default]
    BuiltIn,
    /// Rebuilt from `statescope_transition_allowed` / `statescope_state_severity`.
    FromMetrics,
    /// States and transitions seen in the data; no transition is "allowed".
    FromData,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeView {
    pub state: String,
    pub severity: Severity,
    /// CSS colour.
    pub color: String,
    /// The colour for text naming this state: `color`, or close to it where
    /// `color` would not read on the theme's backgrounds.
    pub text_color: String,
    /// Machines (matching the search) in this state now.
    pub count_now: usize,
    /// Their ids, in machine order.
    pub machines_now: Vec<Arc<str>>,
    /// Centre of the node's cell in a unit box (0..1, y down), from `layout`.
    pub x: f64,
    pub y: f64,
    /// Set by an operator rather than reached by the machine itself
    /// ([`layout::is_manual`]): drawn apart, sorted after organic trouble.
    pub manual: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EdgeView {
    /// Indices into the kind's `nodes`.
    pub from: usize,
    pub to: usize,
    /// How the kind expects it: its normal flow (drawn solid), a manual move
    /// (an operator's: allowed, drawn apart, and only when taken), or `None`:
    /// only seen in the data, a move the kind does not expect (drawn dashed).
    pub flow: Option<Flow>,
    /// Times taken in range, over machines matching the search.
    pub taken_in_range: u64,
}

/// One machine tile.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MachineView {
    /// Display id: the `machine` label, Resilience4j's `name`, or the identity
    /// label values joined by `/`.
    pub id: Arc<str>,
    /// Labels worth showing (identity and other per-machine labels): the
    /// same list for every build while the machine's series are described alike.
    pub labels: Arc<[(String, String)]>,
    pub kind_index: usize,
    /// Current state (at the end of the range); `None` when the machine has
    /// no sample there.
    pub state_index: Option<usize>,
    pub state: Option<Arc<str>>,
    /// CSS colour of the current state (the theme's text colour when unknown).
    pub color: Arc<str>,
    /// Severity of the current state; `None` when unknown.
    pub severity: Option<Severity>,
    pub since: Option<Since>,
    pub transitions_in_range: u64,
    pub transitions_source: CountSource,
    /// Share of known time per state, state index and fraction; fractions of
    /// the states present sum to 1 (empty when no time is known).
    pub share: Vec<(usize, f64)>,
    /// Run-length history over the time range, ordered, touching, covering it.
    pub history: Vec<Segment>,
    pub flapping: bool,
    pub links: Vec<LinkView>,
}

/// When the current state began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Since {
    pub start_ms: f64,
    /// The state began at or before `start_ms` (it was already current at the
    /// start of the data), so "in state for" is at least `now - start_ms`.
    pub lower_bound: bool,
    /// Read from `statescope_state_since_timestamp_seconds` rather than the timeline.
    pub exact: bool,
}

/// Where a transition count came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// Changes between samples; flaps between two samples are missed.
    #[default]
    Samples,
    /// Increase of `statescope_transitions_total`, counted at the source.
    Counter,
}

/// A stretch of time in one state; `state_index: None` is a gap (no sample).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Segment {
    pub start_ms: f64,
    pub end_ms: f64,
    pub state_index: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub title: String,
    pub url: String,
    pub target_blank: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub machines: usize,
    /// Machines whose current state is unknown.
    pub unknown: usize,
    /// (kind index, state index, count), for every node with a count.
    pub per_state: Vec<(usize, usize, usize)>,
    /// Machines per severity of their current state, ok to critical.
    pub per_severity: [usize; 4],
    pub flapping: usize,
}
