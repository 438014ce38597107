//! [`build_view`]: a [`PanelInput`] to the [`PanelView`] the UI draws, as a
//! pipeline of named stages. The view model's types live in
//! [`crate::view_model`] and are re-exported here.

use std::collections::BTreeMap;
use std::sync::Arc;

use statescope_model::{Flow, Severity, contract};

use crate::derive::{self, Derived, FlappingRule, Kept, MachineAux};
use crate::input::{DataLink, FieldConfig, PanelInput, Theme, TimeRange};
use crate::kinds::Kinds;
use crate::options::{KindChoice, PanelOptions, ShapeChoice, SortOrder};
use crate::problem::DataProblem;
use crate::series::{self, Series};
use crate::shape::Recognised;
use crate::{color, kinds, layout, links, shape};

pub use crate::view_model::{
    CountSource, EdgeView, KindSource, KindView, LinkView, MachineView, NodeView, PanelView, Segment, Since, Totals,
};

/// Turns frames and options into the view. Fails only when nothing useful can
/// be drawn; lesser issues become [`PanelView::warnings`].
pub fn build_view(input: &PanelInput) -> Result<PanelView, DataProblem> {
    build_view_cached(input, &mut ViewCache::default())
}

/// [`build_view`], reusing what `cache` derived from the same frame
/// descriptions in an earlier build: a refresh hands the panel the frames it
/// keeps (`store.rs`) with new samples but the same labels and config, and
/// which machines there are, their kinds and their auxiliary series follow
/// from those alone; and each machine's series merged into states, of which
/// a refresh only adds the new samples (see [`derive::Kept`]). The result
/// always equals [`build_view`]'s.
pub fn build_view_cached(input: &PanelInput, cache: &mut ViewCache) -> Result<PanelView, DataProblem> {
    let range = checked_range(input.time_range)?;
    let options = &input.options;
    let series = series::collect(&input.frames, range.to);
    if series.iter().all(Series::is_empty) {
        return Err(DataProblem::NoData);
    }
    let (Described { rec, kinds, aux, tiles }, kept, order) = cache.described(&series, options)?;
    let mut warnings: Vec<String> = options.problems.clone();
    warnings.extend(rec.warnings.iter().cloned());
    warnings.extend(kinds.warnings.iter().cloned());

    let derived = derive_machines(rec, kinds, aux, &series, options, range, kept, &mut warnings)?;
    let fleet = Fleet {
        rec,
        kinds,
        tiles,
        derived,
    };
    let colors = state_colors(kinds, options, &input.theme);
    let searched = fleet.search(&options.search);
    let mut kind_views = diagrams(kinds, &colors, &input.theme);
    let mut totals = fleet.count(&searched, &mut kind_views);
    place(&mut kind_views, &mut totals);
    let (shown, machines_hidden) = fleet.tiles(searched, options, &kind_views, &mut warnings, order);
    let machines = fleet.machine_views(shown, &series, &kind_views, &colors, &input.theme);
    Ok(PanelView {
        kinds: kind_views,
        machines,
        machines_hidden,
        totals,
        time_range: range,
        warnings,
    })
}

fn checked_range(range: TimeRange) -> Result<TimeRange, DataProblem> {
    if range.from.is_finite() && range.to.is_finite() && range.to > range.from {
        Ok(range)
    } else {
        Err(DataProblem::EmptyTimeRange {
            from: range.from,
            to: range.to,
        })
    }
}

/// Each machine's timeline, counts and flags. Values that name no state are
/// a warning, or the error when no machine has a single known state.
#[allow(clippy::too_many_arguments)]
fn derive_machines(
    rec: &Recognised,
    kinds: &Kinds,
    aux: &[MachineAux],
    series: &[Series],
    options: &PanelOptions,
    range: TimeRange,
    kept: &mut [Option<Kept>],
    warnings: &mut Vec<String>,
) -> Result<Vec<Derived>, DataProblem> {
    let targets_first = derive::targets_first(rec, aux, series);
    let flapping = FlappingRule {
        trips: options.flapping_threshold,
        window_ms: options.flapping_window_minutes as f64 * 60_000.0,
    };
    let mut buf = Vec::new();
    let mut unmapped = Vec::new();
    let mut gaps = None;
    let derived: Vec<Derived> = rec
        .machines
        .iter()
        .zip(aux)
        .zip(targets_first)
        .enumerate()
        .map(|(m, ((machine, aux), target_first))| {
            let inputs = derive::MachineInputs {
                shape: rec.groups[machine.group].shape,
                inputs: &machine.inputs,
                aux,
                target_first,
            };
            let kind = &kinds.list[kinds.of_machine[m]].kind;
            derive::machine(
                &inputs,
                series,
                kind,
                range,
                flapping,
                &mut buf,
                &mut unmapped,
                &mut gaps,
                kept.get_mut(m),
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
    Ok(derived)
}

/// CSS colour of every state of every kind: the options' override, else the
/// data's (value mapping, field colour), else the kind's, else its severity's.
fn state_colors(kinds: &Kinds, options: &PanelOptions, theme: &Theme) -> Vec<Vec<Arc<str>>> {
    kinds
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
                    .into()
                })
                .collect()
        })
        .collect()
}

/// One diagram per kind: its states and allowed transitions, before counting.
fn diagrams(kinds: &Kinds, colors: &[Vec<Arc<str>>], theme: &Theme) -> Vec<KindView> {
    kinds
        .list
        .iter()
        .zip(colors)
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
                    color: color.to_string(),
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
        .collect()
}

/// Lays out each diagram and lists the counted nodes in the totals.
fn place(kind_views: &mut [KindView], totals: &mut Totals) {
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
}

/// The recognised machines with their kinds and what was derived for each,
/// indexed alike.
struct Fleet<'f> {
    rec: &'f Recognised,
    kinds: &'f Kinds,
    tiles: &'f [TileParts],
    derived: Vec<Derived>,
}

impl Fleet<'_> {
    fn kind(&self, m: usize) -> &statescope_model::Kind {
        &self.kinds.list[self.kinds.of_machine[m]].kind
    }

    fn state_name(&self, m: usize) -> Option<&str> {
        self.derived[m]
            .timeline
            .current
            .map(|s| self.kind(m).states()[s].name.as_str())
    }

    fn id(&self, m: usize) -> &str {
        &self.rec.machines[m].id
    }

    /// Machines whose id, kind, a label or current state contains `search`
    /// (case-insensitive), in machine order.
    fn search(&self, search: &str) -> Vec<usize> {
        let needle = search.to_lowercase();
        let matches = |m: usize| {
            if needle.is_empty() {
                return true;
            }
            let machine = &self.rec.machines[m];
            let hit = |text: &str| text.to_lowercase().contains(&needle);
            hit(&machine.id)
                || hit(self.kind(m).name())
                || machine.labels.iter().any(|(_, v)| hit(v))
                || self.state_name(m).is_some_and(hit)
        };
        (0..self.rec.machines.len()).filter(|&m| matches(m)).collect()
    }

    /// Counts the searched machines into the diagrams (machines per state,
    /// transitions taken, unexpected ones added as edges) and the totals.
    fn count(&self, searched: &[usize], kind_views: &mut [KindView]) -> Totals {
        let mut totals = Totals {
            machines: searched.len(),
            ..Totals::default()
        };
        for &m in searched {
            let d = &self.derived[m];
            let kind = self.kind(m);
            let view = &mut kind_views[self.kinds.of_machine[m]];
            match d.timeline.current {
                Some(s) => {
                    let node = &mut view.nodes[s];
                    node.count_now += 1;
                    node.machines_now.push(Arc::clone(&self.tiles[m].id));
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
        totals
    }

    /// The tiles: the searched machines in the state filter, sorted, cut to
    /// `max_tiles`; and how many the cut hid.
    fn tiles(
        &self,
        searched: Vec<usize>,
        options: &PanelOptions,
        kind_views: &[KindView],
        warnings: &mut Vec<String>,
        last: &mut Vec<usize>,
    ) -> (Vec<usize>, usize) {
        let shown: Vec<usize> = match &options.state_filter {
            None => searched,
            Some(filter) => {
                if !kind_views.iter().any(|k| k.nodes.iter().any(|n| n.state == *filter)) {
                    warnings.push(format!(
                        "Options: state filter `{filter}` is not a state of any kind shown, so no machine matches."
                    ));
                }
                searched
                    .into_iter()
                    .filter(|&m| self.state_name(m) == Some(filter.as_str()))
                    .collect()
            }
        };
        // From the last build's order, which a refresh barely changes: the
        // sort finds it nearly sorted, and its order is total (see
        // `Fleet::sort`), so the start changes nothing but the work.
        let mut fresh = vec![false; self.derived.len()];
        for &m in &shown {
            fresh[m] = true;
        }
        let mut start: Vec<usize> = last
            .iter()
            .copied()
            .filter(|&m| fresh.get_mut(m).is_some_and(std::mem::take))
            .collect();
        start.extend(shown.into_iter().filter(|&m| fresh[m]));
        let mut shown = start;
        self.sort(&mut shown, options.sort);
        last.clone_from(&shown);
        let limit = options.max_tiles.unwrap_or(usize::MAX);
        let hidden = shown.len().saturating_sub(limit);
        shown.truncate(limit);
        (shown, hidden)
    }

    /// One comparison for every order: each `sort_by` closure is a copy of
    /// the whole sort in the wasm.
    fn sort(&self, shown: &mut [usize], order: SortOrder) {
        use std::cmp::Ordering;
        let derived = &self.derived;
        let since = |m: usize| derived[m].since.map_or(f64::INFINITY, |s| s.start_ms);
        let of_machine = &self.kinds.of_machine;
        // Worst first ranks by whether the state is manual, a lookup by
        // name: once per machine rather than once per comparison.
        let mut ranks = Vec::new();
        if order == SortOrder::WorstFirst {
            ranks.resize(self.derived.len(), (0, false));
            for &m in shown.iter() {
                let severity = derived[m].timeline.current.map(|s| self.kind(m).states()[s].severity);
                let manual = self
                    .state_name(m)
                    .is_some_and(|s| layout::is_manual(self.kind(m).name(), s));
                ranks[m] = (rank(severity, manual), derived[m].flapping);
            }
        }
        series::sort_indices(shown, &|a, b| {
            let first = match order {
                SortOrder::WorstFirst => ranks[b].cmp(&ranks[a]).then(since(a).total_cmp(&since(b))),
                SortOrder::Name => Ordering::Equal,
                SortOrder::TimeInState => since(a).total_cmp(&since(b)),
                SortOrder::Transitions => derived[b].transitions.cmp(&derived[a].transitions),
            };
            first
                .then_with(|| natural_cmp(self.id(a), self.id(b)))
                .then_with(|| match order {
                    SortOrder::Name => of_machine[a].cmp(&of_machine[b]),
                    _ => Ordering::Equal,
                })
                // Machine order last: a total order, whatever the sort starts from.
                .then(a.cmp(&b))
        });
    }

    /// One tile per shown machine, in order.
    fn machine_views(
        mut self,
        shown: Vec<usize>,
        series: &[Series],
        kind_views: &[KindView],
        colors: &[Vec<Arc<str>>],
        theme: &Theme,
    ) -> Vec<MachineView> {
        let text_color: Arc<str> = color::text_color(theme).into();
        // Each state's name once per build, for every tile in it to share.
        let names: Vec<Vec<Arc<str>>> = kind_views
            .iter()
            .map(|k| k.nodes.iter().map(|n| n.state.as_str().into()).collect())
            .collect();
        shown
            .into_iter()
            .map(|m| {
                let machine = &self.rec.machines[m];
                let k = self.kinds.of_machine[m];
                let d = std::mem::take(&mut self.derived[m]);
                let current = d.timeline.current;
                let tile = &self.tiles[m];
                let state = current.map(|s| Arc::clone(&names[k][s]));
                let links = tile
                    .links_from
                    .map(|i| {
                        tile_links(
                            machine,
                            series,
                            &series[i].field.config.links,
                            current,
                            state.as_deref(),
                        )
                    })
                    .unwrap_or_default();
                MachineView {
                    id: Arc::clone(&tile.id),
                    labels: Arc::clone(&tile.labels),
                    kind_index: k,
                    state_index: current,
                    color: Arc::clone(current.map_or(&text_color, |s| &colors[k][s])),
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
            .collect()
    }
}

/// The machine's data links (`links`, its first series' that has any), filled in.
fn tile_links(
    machine: &shape::Machine,
    series: &[Series],
    links: &[DataLink],
    current: Option<usize>,
    state: Option<&str>,
) -> Vec<LinkView> {
    let first = &series[machine.inputs[0].0];
    let raw = current.map(|s| s.to_string()).unwrap_or_default();
    let labels: Vec<(&str, &str)> = machine.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ctx = links::LinkContext {
        labels: &labels,
        field_name: first.field.config.display_name.as_deref().unwrap_or(&first.field.name),
        value_text: state.unwrap_or(""),
        value_raw: &raw,
    };
    links::build(links, &ctx)
}

/// The machine's first series that has data links: found once per description.
fn links_from(machine: &shape::Machine, series: &[Series]) -> Option<usize> {
    machine
        .inputs
        .iter()
        .map(|&(i, _)| i)
        .find(|&i| !series[i].field.config.links.is_empty())
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
fn display_labels(machine: &shape::Machine) -> Arc<[(String, String)]> {
    machine
        .labels
        .iter()
        .filter(|(k, v)| {
            *k != contract::LABEL_KIND && !((*k == contract::LABEL_MACHINE || *k == "name") && *v == machine.id)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<Vec<_>>()
        .into()
}

/// What [`build_view_cached`] keeps between builds.
#[derive(Default)]
pub struct ViewCache {
    entry: Option<Entry>,
    reused: u64,
    /// Per machine of `entry`, its merge as the last build left it.
    kept: Vec<Option<Kept>>,
    /// The tiles' order in the last build, before the cut (see `Fleet::tiles`).
    order: Vec<usize>,
}

/// What a build takes from the cache: the descriptions' derivations, and
/// the machines' kept histories and the tiles' order to update.
type Reused<'c> = (&'c Described, &'c mut Vec<Option<Kept>>, &'c mut Vec<usize>);

/// What follows from the series' descriptions (labels, config, names) and
/// the options that read them.
struct Described {
    rec: Recognised,
    kinds: Kinds,
    aux: Vec<MachineAux>,
    /// What each machine's tile shows that only its description decides.
    tiles: Vec<TileParts>,
}

/// The parts of a machine's tile that follow from its series' descriptions:
/// made once and shared by every build's view of it rather than copied
/// (copying its labels was a tenth of a refresh's view, its id and links
/// about as much at 10k machines).
struct TileParts {
    id: Arc<str>,
    labels: Arc<[(String, String)]>,
    /// The series whose data links the tile shows, if any has some.
    links_from: Option<usize>,
}

struct Entry {
    /// `None`: not to be reused (see [`DescriptionKey::of`]).
    key: Option<DescriptionKey>,
    described: Described,
}

/// What [`Described`] was derived from. Labels and config are compared by
/// address: the store hands out the same `Arc`s for as long as a frame is
/// described the same, a new description gets new ones, and the key holds
/// them so that no other can take their address.
struct DescriptionKey {
    series: Vec<SeriesKey>,
    shape: ShapeChoice,
    kind: KindChoice,
    state_label: String,
    identity_labels: Vec<String>,
    /// The last value of each `statescope_transition_allowed` and
    /// `statescope_state_severity` series: samples that define kinds.
    kind_values: Vec<Option<u64>>,
}

struct SeriesKey {
    labels: Arc<BTreeMap<String, String>>,
    config: Arc<FieldConfig>,
    metric: Option<String>,
    field_name: Arc<str>,
    empty: bool,
}

impl ViewCache {
    /// How many builds reused what an earlier one derived.
    pub fn reused(&self) -> u64 {
        self.reused
    }

    /// How many machines the last build merged from what the one before
    /// kept (see [`derive::Kept`]).
    pub fn folded(&self) -> usize {
        self.kept.iter().flatten().filter(|k| k.folded()).count()
    }

    /// The recognised machines, kinds and auxiliary series: the kept ones
    /// when the series are described as before, else derived again (and
    /// kept when they depend on descriptions alone); with the machines'
    /// kept histories, none when they are recognised anew. A first build
    /// keeps them too (the runs are built anyway; keeping holds the
    /// columns), so the first refresh folds.
    fn described(&mut self, series: &[Series], options: &PanelOptions) -> Result<Reused<'_>, DataProblem> {
        let kept = self.entry.take().filter(|e| {
            e.key
                .as_ref()
                .is_some_and(|key| key.matches(series, options, &e.described.rec))
        });
        let entry = match kept {
            Some(entry) => {
                self.reused += 1;
                entry
            }
            None => {
                self.kept.clear();
                self.order.clear();
                let rec = shape::recognise(series, options)?;
                let kinds = kinds::resolve(&rec, series, options)?;
                let aux = derive::attach(&rec, series);
                let tiles = rec
                    .machines
                    .iter()
                    .map(|m| TileParts {
                        id: m.id.as_str().into(),
                        labels: display_labels(m),
                        links_from: links_from(m, series),
                    })
                    .collect();
                Entry {
                    key: DescriptionKey::of(series, options, &rec),
                    described: Described { rec, kinds, aux, tiles },
                }
            }
        };
        // Histories are kept only for an entry the next build may reuse.
        if entry.key.is_some() {
            self.kept.resize_with(entry.described.rec.machines.len(), || None);
        }
        Ok((&self.entry.insert(entry).described, &mut self.kept, &mut self.order))
    }
}

impl DescriptionKey {
    /// `None` for series whose recognition reads more than descriptions:
    /// text or table cells (labels taken from rows), or a `rec` that read
    /// samples.
    fn of(series: &[Series], options: &PanelOptions, rec: &Recognised) -> Option<DescriptionKey> {
        if rec.reads_samples || !series.iter().all(Series::described_by_labels) {
            return None;
        }
        Some(DescriptionKey {
            series: series
                .iter()
                .map(|s| SeriesKey {
                    labels: Arc::clone(&s.field.labels),
                    config: Arc::clone(&s.field.config),
                    metric: s.metric.map(str::to_owned),
                    field_name: s.field.name.clone(),
                    empty: s.is_empty(),
                })
                .collect(),
            shape: options.shape,
            kind: options.kind.clone(),
            state_label: options.state_label.clone(),
            identity_labels: options.identity_labels.clone(),
            kind_values: kind_values(rec, series),
        })
    }

    fn matches(&self, series: &[Series], options: &PanelOptions, rec: &Recognised) -> bool {
        self.shape == options.shape
            && self.kind == options.kind
            && self.state_label == options.state_label
            && self.identity_labels == options.identity_labels
            && self.series.len() == series.len()
            && self.series.iter().zip(series).all(|(k, s)| {
                s.described_by_labels()
                    && Arc::ptr_eq(&k.labels, &s.field.labels)
                    && Arc::ptr_eq(&k.config, &s.field.config)
                    && k.empty == s.is_empty()
                    && k.metric.as_deref() == s.metric
                    && k.field_name == s.field.name
            })
            && self.kind_values == kind_values(rec, series)
    }
}

/// The last values of the series that define kinds from metrics (see `kinds.rs`).
fn kind_values(rec: &Recognised, series: &[Series]) -> Vec<Option<u64>> {
    rec.allowed
        .iter()
        .chain(&rec.severity)
        .map(|&i| series[i].last_number().map(f64::to_bits))
        .collect()
}
