//! The view model: everything the UI draws, computed from a [`PanelInput`] by
//! [`build_view`]. Plain data, no UI types, so it is tested natively.
//!
//! Indices tie the parts together: a machine's `kind_index` points into
//! [`PanelView::kinds`], and every `state_index` (current state, history
//! segments, shares) points into that kind's `nodes`.

use serde::Serialize;
use statescope_model::{Flow, Severity, contract};

use crate::derive::{self, Derived};
use crate::input::{PanelInput, TimeRange};
use crate::options::SortOrder;
use crate::problem::DataProblem;
use crate::series::{self, Series};
use crate::{color, kinds, layout, links, shape};

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
    pub machines_now: Vec<String>,
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
    pub id: String,
    /// Labels worth showing (identity and other per-machine labels).
    pub labels: Vec<(String, String)>,
    pub kind_index: usize,
    /// Current state (at the end of the range); `None` when the machine has
    /// no sample there.
    pub state_index: Option<usize>,
    pub state: Option<String>,
    /// CSS colour of the current state (the theme's text colour when unknown).
    pub color: String,
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

/// Turns frames and options into the view. Fails only when nothing useful can
/// be drawn; lesser issues become [`PanelView::warnings`].
pub fn build_view(input: &PanelInput) -> Result<PanelView, DataProblem> {
    let range = input.time_range;
    if !(range.from.is_finite() && range.to.is_finite() && range.to > range.from) {
        return Err(DataProblem::EmptyTimeRange {
            from: range.from,
            to: range.to,
        });
    }
    let options = &input.options;
    let theme = &input.theme;
    let series = series::collect(&input.frames, range.to);
    if series.iter().all(Series::is_empty) {
        return Err(DataProblem::NoData);
    }
    let rec = shape::recognise(&series, options)?;
    let kinds = kinds::resolve(&rec, &series, options)?;
    let aux = derive::attach(&rec, &series);
    let mut warnings: Vec<String> = options.problems.clone();
    warnings.extend(rec.warnings.iter().cloned());
    warnings.extend(kinds.warnings.iter().cloned());

    let mut buf = Vec::new();
    let mut unmapped = Vec::new();
    let derived: Vec<Derived> = rec
        .machines
        .iter()
        .zip(&aux)
        .enumerate()
        .map(|(m, (machine, aux))| {
            let inputs = derive::MachineInputs {
                shape: rec.groups[machine.group].shape,
                inputs: &machine.inputs,
                aux,
            };
            let kind = &kinds.list[kinds.of_machine[m]].kind;
            derive::machine(
                &inputs,
                &series,
                kind,
                range,
                derive::FlappingRule {
                    trips: options.flapping_threshold,
                    window_ms: options.flapping_window_minutes as f64 * 60_000.0,
                },
                &mut buf,
                &mut unmapped,
            )
        })
        .collect();
    if let Some((s, values)) = unmapped.first() {
        let problem = DataProblem::UnmappedValues {
            series: series[*s].describe(),
            values: values.join(", "),
        };
        if derived
            .iter()
            .all(|d| d.timeline.segments.iter().all(|seg| seg.state_index.is_none()))
        {
            return Err(problem);
        }
        warnings.push(problem.to_string());
    }

    // CSS colour of every state of every kind.
    let colors: Vec<Vec<String>> = kinds
        .list
        .iter()
        .map(|rk| {
            rk.kind
                .states()
                .iter()
                .zip(&rk.colors)
                .map(|(st, data_color)| {
                    [
                        options.state_colors.get(&st.name),
                        data_color.as_ref(),
                        st.color.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    .find_map(|c| color::resolve(c, theme))
                    .unwrap_or_else(|| color::severity_color(st.severity, theme))
                })
                .collect()
        })
        .collect();

    let needle = options.search.to_lowercase();
    let kind_of = |m: usize| &kinds.list[kinds.of_machine[m]].kind;
    let state_name = |m: usize| {
        derived[m]
            .timeline
            .current
            .map(|s| kind_of(m).states()[s].name.as_str())
    };
    let matches_search = |m: usize| {
        if needle.is_empty() {
            return true;
        }
        let machine = &rec.machines[m];
        let hit = |text: &str| text.to_lowercase().contains(&needle);
        hit(&machine.id)
            || hit(kind_of(m).name())
            || machine.labels.iter().any(|(_, v)| hit(v))
            || state_name(m).is_some_and(hit)
    };
    let searched: Vec<usize> = (0..rec.machines.len()).filter(|&m| matches_search(m)).collect();

    // Diagrams and totals over the searched machines.
    let mut totals = Totals {
        machines: searched.len(),
        ..Totals::default()
    };
    let mut kind_views: Vec<KindView> = kinds
        .list
        .iter()
        .zip(&colors)
        .map(|(rk, colors)| KindView {
            name: rk.kind.name().to_owned(),
            source: rk.source,
            nodes: rk
                .kind
                .states()
                .iter()
                .zip(colors)
                .map(|(st, color)| NodeView {
                    state: st.name.clone(),
                    severity: st.severity,
                    color: color.clone(),
                    text_color: color::readable(color, theme),
                    ..NodeView::default()
                })
                .collect(),
            edges: rk
                .kind
                .transitions()
                .map(|(from, to)| EdgeView {
                    from: from.index(),
                    to: to.index(),
                    flow: Some(Flow::Normal),
                    taken_in_range: 0,
                })
                .collect(),
            initial: rk.kind.initial().index(),
            grid: layout::Grid::default(),
        })
        .collect();
    for &m in &searched {
        let d = &derived[m];
        let kind = &kinds.list[kinds.of_machine[m]].kind;
        let view = &mut kind_views[kinds.of_machine[m]];
        match d.timeline.current {
            Some(s) => {
                let node = &mut view.nodes[s];
                node.count_now += 1;
                node.machines_now.push(rec.machines[m].id.clone());
                totals.per_severity[node.severity.level() as usize] += 1;
            }
            None => totals.unknown += 1,
        }
        totals.flapping += usize::from(d.flapping);
        for &(from, to, n) in &d.edges {
            match view.edges.iter_mut().find(|e| e.from == from && e.to == to) {
                Some(e) => e.taken_in_range += n,
                None => view.edges.push(EdgeView {
                    from,
                    to,
                    flow: kind
                        .manual_transitions()
                        .any(|(f, t)| (f.index(), t.index()) == (from, to))
                        .then_some(Flow::Manual),
                    taken_in_range: n,
                }),
            }
        }
    }
    for (k, view) in kind_views.iter_mut().enumerate() {
        let names: Vec<&str> = view.nodes.iter().map(|n| n.state.as_str()).collect();
        let edges: Vec<(usize, usize)> = view.edges.iter().map(|e| (e.from, e.to)).collect();
        view.grid = layout::grid(&view.name, &names, view.initial, &edges);
        let (cols, rows) = (view.grid.cols as f64, view.grid.rows as f64);
        for (node, cell) in view.nodes.iter_mut().zip(&view.grid.cells) {
            node.x = (cell.col as f64 + 0.5) / cols;
            node.y = (cell.row as f64 + 0.5) / rows;
            node.manual = layout::is_manual(&view.name, &node.state);
        }
        for (s, node) in view.nodes.iter().enumerate() {
            if node.count_now > 0 {
                totals.per_state.push((k, s, node.count_now));
            }
        }
    }

    // Tiles: state filter, sort, cut.
    let mut shown: Vec<usize> = match &options.state_filter {
        None => searched,
        Some(filter) => {
            if !kind_views.iter().any(|k| k.nodes.iter().any(|n| n.state == *filter)) {
                warnings.push(format!(
                    "Options: state filter `{filter}` is not a state of any kind shown, so no machine matches."
                ));
            }
            searched
                .into_iter()
                .filter(|&m| state_name(m) == Some(filter.as_str()))
                .collect()
        }
    };
    let severity = |m: usize| derived[m].timeline.current.map(|s| kind_of(m).states()[s].severity);
    let manual = |m: usize| state_name(m).is_some_and(|s| layout::is_manual(kind_of(m).name(), s));
    let since = |m: usize| derived[m].since.map_or(f64::INFINITY, |s| s.start_ms);
    let id = |m: usize| rec.machines[m].id.as_str();
    match options.sort {
        SortOrder::WorstFirst => shown.sort_by(|&a, &b| {
            rank(severity(b), manual(b))
                .cmp(&rank(severity(a), manual(a)))
                .then(derived[b].flapping.cmp(&derived[a].flapping))
                .then(since(a).total_cmp(&since(b)))
                .then_with(|| natural_cmp(id(a), id(b)))
        }),
        SortOrder::Name => {
            shown.sort_by(|&a, &b| natural_cmp(id(a), id(b)).then(kinds.of_machine[a].cmp(&kinds.of_machine[b])))
        }
        SortOrder::TimeInState => {
            shown.sort_by(|&a, &b| since(a).total_cmp(&since(b)).then_with(|| natural_cmp(id(a), id(b))))
        }
        SortOrder::Transitions => shown.sort_by(|&a, &b| {
            derived[b]
                .transitions
                .cmp(&derived[a].transitions)
                .then_with(|| natural_cmp(id(a), id(b)))
        }),
    }
    let limit = options.max_tiles.unwrap_or(usize::MAX);
    let machines_hidden = shown.len().saturating_sub(limit);
    shown.truncate(limit);

    let text_color = color::text_color(theme);
    let mut derived = derived;
    let machines = shown
        .into_iter()
        .map(|m| {
            let machine = &rec.machines[m];
            let k = kinds.of_machine[m];
            let d = std::mem::take(&mut derived[m]);
            let current = d.timeline.current;
            let state = current.map(|s| kind_views[k].nodes[s].state.clone());
            let first = &series[machine.inputs[0].0];
            let links = machine
                .inputs
                .iter()
                .map(|(i, _)| &series[*i].field.config.links)
                .find(|l| !l.is_empty())
                .map(|l| {
                    let raw = current.map(|s| s.to_string()).unwrap_or_default();
                    let ctx = links::LinkContext {
                        labels: &machine.labels,
                        field_name: first.field.config.display_name.as_deref().unwrap_or(&first.field.name),
                        value_text: state.as_deref().unwrap_or(""),
                        value_raw: &raw,
                    };
                    links::build(l, &ctx)
                })
                .unwrap_or_default();
            MachineView {
                id: machine.id.clone(),
                labels: display_labels(machine),
                kind_index: k,
                state_index: current,
                color: current.map_or_else(|| text_color.clone(), |s| colors[k][s].clone()),
                severity: current.map(|s| kind_views[k].nodes[s].severity),
                state,
                since: d.since,
                transitions_in_range: d.transitions,
                transitions_source: d.source,
                share: d.timeline.shares(),
                history: d.timeline.segments,
                flapping: d.flapping,
                links,
            }
        })
        .collect();
    Ok(PanelView {
        kinds: kind_views,
        machines,
        machines_hidden,
        totals,
        time_range: range,
        warnings,
    })
}

/// Worst-first rank: a machine whose state is unknown (it stopped reporting)
/// ranks just below critical; a state an operator set (forced_open) ranks
/// after every state of trouble the machine reached by itself, since someone
/// already knows about it, but before the ok ones.
fn rank(severity: Option<Severity>, manual: bool) -> u8 {
    match severity {
        Some(Severity::Ok) => 0,
        Some(_) if manual => 1,
        Some(Severity::Critical) => 5,
        None => 4,
        Some(s) => s.level() + 1,
    }
}

/// Name order where `worker-2` comes before `worker-10`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(ca), Some(cb)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let na = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let nb = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (da, db) = (a[..na].trim_start_matches('0'), b[..nb].trim_start_matches('0'));
            let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            if ord.is_ne() {
                return ord;
            }
            (a, b) = (&a[na..], &b[nb..]);
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            (a, b) = (&a[ca.len_utf8()..], &b[cb.len_utf8()..]);
        }
    }
}

/// Labels for the tile: everything but the kind (shown as the diagram) and
/// the label the id was taken from.
fn display_labels(machine: &shape::Machine) -> Vec<(String, String)> {
    machine
        .labels
        .iter()
        .filter(|(k, v)| {
            *k != contract::LABEL_KIND && !((*k == contract::LABEL_MACHINE || *k == "name") && *v == machine.id)
        })
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
