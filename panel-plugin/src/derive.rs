//! Per machine, what Prometheus does not store directly: its sampled states
//! merged into one timeline, time in state, transitions in range (from the
//! source's counter when the query has it, since only the counter sees a flap
//! between two samples), and whether it is flapping.
//!
//! Counting from a counter needs to know where it started. A counter the
//! exporter created inside the range counts from zero: all it holds happened
//! in range. One that existed before the range is a baseline: only its growth
//! counts. A series that only appears inside the range because a new
//! Prometheus (or a new scrape target) started is not created in range. What
//! tells them apart, best first:
//!
//! 1. the counter's `_created` series (OpenMetrics): its creation time (or
//!    its machine's: a counter served only from its first increment that
//!    appears after the machine was seen was created then too, see 3.);
//! 2. the machine was created in range: absent at the start of the range,
//!    and either its scrape target (`job`, `instance`) was scraped without
//!    it before, or it entered its first state seen inside the range (the
//!    since gauge);
//! 3. the counter appears more than a step after the machine was first seen
//!    (created at its first increment, as counters of manual moves are).

use statescope_model::{Kind, Severity, contract};

use std::collections::HashMap;

use crate::input::{Cell, Slid, TimeRange, Values};
use crate::layout;
use crate::mapping::{Decoded, Decoder};
use crate::series::{Series, sort_by_time};
use crate::shape::{Input, Recognised, Shape};
use crate::timeline::{self, Run, Sample, Timeline};
use crate::view_model::{CountSource, Segment, Since};

/// One transition counter of a machine (one `from`, `to` pair): every series
/// holding it (the same counter under the labels the machine had before, or
/// scraped by a second job) and its `_created` series.
#[derive(Debug, Default)]
pub struct EdgeCounter {
    pub series: Vec<usize>,
    pub created: Vec<usize>,
}

/// Auxiliary series that belong to one machine.
#[derive(Debug, Default)]
pub struct MachineAux {
    /// `statescope_transitions_total` per transition.
    pub counters: Vec<EdgeCounter>,
    /// `statescope_state_since_timestamp_seconds` series.
    pub since: Vec<usize>,
}

impl MachineAux {
    fn has_counters(&self) -> bool {
        self.counters.iter().any(|c| !c.series.is_empty())
    }
}

/// Matches auxiliary series to machines by the machine's identity labels:
/// labels only, so it holds for as long as the series' descriptions do.
pub fn attach(rec: &Recognised, series: &[Series]) -> Vec<MachineAux> {
    let mut aux: Vec<MachineAux> = (0..rec.machines.len()).map(|_| MachineAux::default()).collect();
    let edge = |i: usize| {
        (
            series[i].label(contract::LABEL_FROM),
            series[i].label(contract::LABEL_TO),
        )
    };
    for (list, created) in [(&rec.transitions, false), (&rec.created, true)] {
        for &i in list {
            let Some(m) = rec.machine_of(&series[i]) else { continue };
            let counters = &mut aux[m].counters;
            let at = counters
                .iter()
                .position(|c| c.series.iter().chain(&c.created).any(|&j| edge(j) == edge(i)));
            let counter = match at {
                Some(at) => &mut counters[at],
                None => {
                    counters.push(EdgeCounter::default());
                    counters.last_mut().expect("just pushed")
                }
            };
            if created {
                counter.created.push(i);
            } else {
                counter.series.push(i);
            }
        }
    }
    for &i in &rec.since {
        if let Some(m) = rec.machine_of(&series[i]) {
            aux[m].since.push(i);
        }
    }
    aux
}

/// Per machine, the earliest sample of any series from its scrape targets
/// (same `job` and `instance`) in the whole query; only looked up for a
/// machine with counters (is a counter's start a baseline?), so a query of
/// states alone skips this scan of every series. Samples, not labels: read
/// on every build.
pub fn targets_first(rec: &Recognised, aux: &[MachineAux], series: &[Series]) -> Vec<Option<f64>> {
    let mut out = vec![None; aux.len()];
    if !aux.iter().any(MachineAux::has_counters) {
        return out;
    }
    type Target<'a> = (Option<&'a str>, Option<&'a str>);
    fn target<'a>(s: &Series<'a>) -> Target<'a> {
        (s.label("job"), s.label("instance"))
    }
    // A map, not a list: a query may span many scrape targets (one per service instance).
    let mut first_of_target: HashMap<Target, f64> = HashMap::new();
    for s in series {
        if let Some(t) = (0..s.len()).find_map(|j| s.point(j).0) {
            let first = first_of_target.entry(target(s)).or_insert(t);
            *first = first.min(t);
        }
    }
    let first_of_target = |key| first_of_target.get(&key).copied();
    for ((machine, aux), first) in rec.machines.iter().zip(aux).zip(&mut out) {
        if aux.has_counters() {
            *first = machine
                .inputs
                .iter()
                .filter_map(|(i, _)| first_of_target(target(&series[*i])))
                .reduce(f64::min);
        }
    }
    out
}

/// What is derived for one machine.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    pub timeline: Timeline,
    pub since: Option<Since>,
    pub transitions: u64,
    pub source: CountSource,
    /// Transitions per (from, to) state index, from the same source as `transitions`.
    pub edges: Vec<(usize, usize, u64)>,
    pub flapping: bool,
}

/// Values a series had that name no state, for the error message.
pub type Unmapped = Vec<(usize, Vec<String>)>;

pub struct MachineInputs<'m> {
    pub shape: Shape,
    pub inputs: &'m [(usize, Input)],
    pub aux: &'m MachineAux,
    /// See [`targets_first`].
    pub target_first: Option<f64>,
}

/// Derives one machine. `buf` is reused between machines so decoding does
/// not allocate per sample, `gaps` between machines of one build (see
/// [`Gaps`]). `kept`: what the machine's last build kept of its one-hot
/// history (see [`Kept`]), updated for the next; `None` keeps nothing (the
/// series' recognition read more than descriptions: no build reuses it).
#[allow(clippy::too_many_arguments)]
pub fn machine(
    m: &MachineInputs,
    series: &[Series],
    kind: &Kind,
    range: TimeRange,
    flapping: FlappingRule,
    buf: &mut Vec<Sample>,
    unmapped: &mut Unmapped,
    gaps: &mut Gaps,
    kept: Option<&mut Option<Kept>>,
) -> Derived {
    buf.clear();
    let declared = m.inputs.iter().find_map(|(i, _)| series[*i].interval);
    // Counters read the samples themselves: such a machine keeps nothing.
    let kept = kept.filter(|_| m.shape == Shape::OneHot && !m.aux.has_counters());
    let (timeline, step) = match kept {
        Some(kept) => one_hot_history(m.inputs, series, kind, declared, range, buf, gaps, kept),
        None => {
            match m.shape {
                Shape::OneHot => {
                    merge_one_hot(&members(m.inputs, series, kind), buf);
                }
                Shape::Enum => decode_enum(m.inputs, series, kind, buf, unmapped),
                Shape::UpActive => merge_up_active(m.inputs, series, kind, buf),
            }
            if !buf.is_sorted_by(|a, b| a.0 <= b.0) {
                sort_by_time(buf);
            }
            let step = timeline::infer_step(buf, declared, range);
            (timeline::build(buf, range, step), step)
        }
    };

    let trips = Trips { kind };
    let (transitions, source, edges, mut trip_times) = if !m.aux.has_counters() {
        let trip_times = trips.in_segments(&timeline.segments);
        (
            timeline.transitions(),
            CountSource::Samples,
            timeline.changes.clone(),
            trip_times,
        )
    } else {
        let c = count_from_counters(m.aux, m.target_first, series, &trips, range, buf, step);
        (c.total, CountSource::Counter, c.edges, c.trip_times)
    };
    let since = timeline.current.and_then(|_| {
        let exact = latest(&m.aux.since, series).filter(|s| *s > 0.0);
        match exact {
            Some(seconds) => Some(Since {
                start_ms: seconds * 1000.0,
                lower_bound: false,
                exact: true,
            }),
            None => timeline.run_start.map(|(start_ms, lower_bound)| Since {
                start_ms,
                lower_bound,
                exact: false,
            }),
        }
    });
    Derived {
        flapping: flapping.holds(&mut trip_times),
        timeline,
        since,
        transitions,
        source,
        edges,
    }
}

/// A series' samples with a time and a finite number.
fn numbers<'s>(s: &'s Series) -> impl DoubleEndedIterator<Item = (f64, f64)> + 's {
    (0..s.len()).filter_map(move |j| Some((s.point(j).0?, s.number(j)?)))
}

/// The value of the most recent sample over several series of one gauge.
fn latest(list: &[usize], series: &[Series]) -> Option<f64> {
    list.iter()
        .filter_map(|&i| numbers(&series[i]).next_back())
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// The value of the earliest sample over several series of one gauge.
fn earliest(list: &[usize], series: &[Series]) -> Option<f64> {
    list.iter()
        .filter_map(|&i| numbers(&series[i]).next())
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// Transitions in range per edge and in total from the machine's counters
/// (see the module doc for where each counter starts), and the trips among
/// them with their times. `samples` are the machine's decoded samples,
/// sorted; `step` their step.
fn count_from_counters(
    aux: &MachineAux,
    target_first: Option<f64>,
    series: &[Series],
    trips: &Trips,
    range: TimeRange,
    samples: &[Sample],
    step: f64,
) -> Counted {
    let kind = trips.kind;
    let machine_first = samples.first().map(|s| s.0);
    let machine_seen = samples.iter().map(|s| s.0).find(|t| range.contains(*t));
    let created_in_range = machine_first.is_some_and(|first| {
        first > range.from
            && (target_first.is_some_and(|t| first - t >= step)
                || earliest(&aux.since, series).is_some_and(|since| since * 1000.0 >= range.from))
    });
    let mut merged: Vec<(f64, f64)> = Vec::new();
    let mut edges = Vec::new();
    let mut trip_times = Vec::new();
    let mut total = 0;
    for counter in aux.counters.iter().filter(|c| !c.series.is_empty()) {
        merge_counter(&counter.series, series, &mut merged);
        let Some(&(counter_first, _)) = merged.first() else {
            continue;
        };
        // Created at its first increment, after the machine was seen (more
        // than a step later: within one, it may just be on a coarser grid).
        let appeared_later = || {
            let first_in_range = merged.iter().find(|s| range.contains(s.0));
            first_in_range
                .zip(machine_seen)
                .is_some_and(|(&(t, _), seen)| t - seen > counter_step(&series[counter.series[0]], &merged, t))
        };
        let from_zero = counter_first > range.from
            && match earliest(&counter.created, series) {
                // Created in range; or before it but only served from its
                // first increment, after the machine was seen (the exporter
                // gives every counter its machine's creation time).
                Some(created) => created * 1000.0 >= range.from || appeared_later(),
                None => created_in_range || appeared_later(),
            };
        let steps = increments(&merged, range, from_zero);
        let n = sum(&steps);
        total += n;
        let s = &series[counter.series[0]];
        let id = |label| s.label(label).and_then(|n| kind.state_id(n)).map(|id| id.index());
        if let (Some(from), Some(to), true) = (id(contract::LABEL_FROM), id(contract::LABEL_TO), n > 0) {
            edges.push((from, to, n));
            if trips.is_trip(from, to) {
                trip_times.extend(steps.iter().map(|&(t, d)| (t, d.round())));
            }
        }
    }
    Counted {
        total,
        edges,
        trip_times,
    }
}

/// What a machine's counters say of the range.
struct Counted {
    total: u64,
    /// Transitions per (from, to) state index.
    edges: Vec<(usize, usize, u64)>,
    /// Trips with their times, for flapping (whole counts, as f64 like the
    /// counter steps they come from).
    trip_times: Vec<(f64, f64)>,
}

/// The samples of one counter held by several series, in time order; where
/// two have a sample at the same instant (one target scraped by two jobs)
/// the higher value is the later count.
fn merge_counter(list: &[usize], series: &[Series], out: &mut Vec<(f64, f64)>) {
    out.clear();
    for &i in list {
        let s = &series[i];
        out.extend(numbers(s));
    }
    if list.len() > 1 {
        sort_by_time(out);
        out.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.max(later.1);
            }
            same
        });
    }
}

/// A counter's increase over its samples in range, counting a drop as a
/// restart from zero (as PromQL's `increase` does, without extrapolation).
/// `from_zero`: the counter did not exist before its first sample in range,
/// so that sample's whole value happened in range.
pub fn increase(samples: &[(f64, f64)], range: TimeRange, from_zero: bool) -> u64 {
    sum(&increments(samples, range, from_zero))
}

/// The steps [`increase`] adds up, each at the time of the sample that shows
/// it (flapping reads when the trips happened).
fn increments(samples: &[(f64, f64)], range: TimeRange, from_zero: bool) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut prev: Option<f64> = None;
    let mut first = true;
    for &(t, v) in samples {
        if !range.contains(t) {
            continue;
        }
        if std::mem::take(&mut first) && from_zero {
            prev = Some(0.0);
        }
        if let Some(p) = prev {
            let d = if v >= p { v - p } else { v };
            if d > 0.0 {
                out.push((t, d));
            }
        }
        prev = Some(v);
    }
    out
}

fn sum(steps: &[(f64, f64)]) -> u64 {
    steps.iter().map(|(_, d)| d).sum::<f64>().round() as u64
}

/// The step of a counter at its sample at `t`: its query's declared step,
/// else the gap to its next sample (0 for a lone sample). Within one step of
/// the machine's first sample a counter may just be queried on a coarser grid.
fn counter_step(s: &Series, samples: &[(f64, f64)], t: f64) -> f64 {
    s.interval
        .or_else(|| {
            let at = samples.iter().position(|x| x.0 == t)?;
            samples.get(at + 1).map(|next| next.0 - t)
        })
        .unwrap_or(0.0)
}

/// A machine's one-hot series, each with the state it stands for.
fn members<'s, 'a>(
    inputs: &[(usize, Input)],
    series: &'s [Series<'a>],
    kind: &Kind,
) -> Vec<(&'s Series<'a>, Option<usize>)> {
    inputs
        .iter()
        .map(|(i, input)| {
            let state = match input {
                Input::State(name) => kind.state_id(name).map(|s| s.index()),
                _ => None,
            };
            (&series[*i], state)
        })
        .collect()
}

/// One-hot series to samples: at each instant any series has a sample, the
/// state is the one whose series is 1; none at 1 is a gap. If several are 1
/// (a scrape caught both sides of a change), the one that differs from the
/// previous state wins: it is the newer. True when the aligned merge was
/// exact (see [`merge_aligned`]).
fn merge_one_hot(members: &[(&Series, Option<usize>)], buf: &mut Vec<Sample>) -> bool {
    let exact = aligned(members).is_some_and(|(times, columns)| merge_aligned(times, &columns, 0, buf));
    if !exact {
        buf.clear();
        merge_by_time(members, buf);
    }
    exact
}

/// The smallest spacing of the last times column read, by its address and
/// length: the machines of a range query share one, so a build reads it
/// once (a refresh that folds reads no other sample).
pub type Gaps = Option<((usize, usize), f64)>;

/// A one-hot machine's history and step: folded from what its last build
/// kept when the store says each of its columns is the kept one slid (see
/// [`Kept`]), else merged whole. Keeps what the next refresh folds.
#[allow(clippy::too_many_arguments)]
fn one_hot_history(
    inputs: &[(usize, Input)],
    series: &[Series],
    kind: &Kind,
    declared: Option<f64>,
    range: TimeRange,
    buf: &mut Vec<Sample>,
    gaps: &mut Gaps,
    kept: &mut Option<Kept>,
) -> (Timeline, f64) {
    let members = members(inputs, series, kind);
    let aligned = aligned(&members);
    let step = aligned.as_ref().map(|(times, _)| {
        let key = (times.as_ptr() as usize, times.len());
        let gap = || match *gaps {
            Some((at, gap)) if at == key => gap,
            _ => gaps.insert((key, timeline::min_gap(times.iter().copied()))).1,
        };
        timeline::step(declared, gap, range)
    });
    if let (Some((times, columns)), Some(step), Some(last)) = (&aligned, step, kept.take())
        && let Some(folded) = last.fold(&members, times, columns, step, range, buf)
    {
        let timeline = timeline::from_runs(&folded.runs, range, step);
        *kept = Some(folded);
        return (timeline, step);
    }
    buf.clear();
    let exact = merge_one_hot(&members, buf);
    let sorted = buf.is_sorted_by(|a, b| a.0 <= b.0);
    if !sorted {
        sort_by_time(buf);
    }
    let step = match step {
        Some(step) if exact && sorted => step,
        _ => timeline::infer_step(buf, declared, range),
    };
    let in_range = buf.partition_point(|s| s.0 <= range.to);
    let mut runs = Vec::new();
    timeline::extend_runs(&mut runs, &buf[..in_range], step);
    let timeline = timeline::from_runs(&runs, range, step);
    if exact && sorted && in_range == buf.len() {
        *kept = Kept::of(&members, step, runs);
    }
    (timeline, step)
}

/// A machine's one-hot history as its last build left it: the runs of its
/// samples (all the history needs of them, see [`timeline::Run`]), their
/// step, and the columns they were merged from (held, not copied, so that
/// their addresses name them: see [`crate::input::ColumnId`]). A refresh
/// whose range slid brings each column as the kept one without its first
/// `k` samples and `m` new ones, and the store says so; then the runs lose
/// `k` samples at the front and only the `m` new ones are merged. Exact
/// because the state at an instant depends on that instant's values alone
/// (and its time being finite, as every kept one is), unless two series
/// are 1 there: then on the state before, so a merge with such an instant
/// is not kept, and new samples with one are merged whole.
pub struct Kept {
    times: Values,
    /// Each value column and the state it stands for.
    columns: Vec<(Values, Option<usize>)>,
    step: f64,
    runs: Vec<Run>,
    /// Whether the runs came from those of the build before.
    folded: bool,
}

impl Kept {
    /// What to keep of an exact, sorted merge whose runs are `runs`: every
    /// column as long as the times.
    fn of(members: &[(&Series, Option<usize>)], step: f64, runs: Vec<Run>) -> Option<Kept> {
        let times = members.first()?.0.columns()?.0.clone();
        let columns = members
            .iter()
            .map(|(s, state)| Some((s.columns()?.1.clone(), *state)).filter(|c| c.0.len() == times.len()))
            .collect::<Option<_>>()?;
        Some(Kept {
            times,
            columns,
            step,
            runs,
            folded: false,
        })
    }

    pub fn folded(&self) -> bool {
        self.folded
    }

    /// The kept runs slid, when the store says every column of `members`
    /// is the kept one without its first `k` samples and with `m` new ones
    /// (the same `k` and `m` for all) and the new ones merge exactly, in
    /// order, within the range; `buf` gets the new samples. O(k + m): no
    /// kept sample is read again.
    fn fold(
        mut self,
        members: &[(&Series, Option<usize>)],
        times: &[f64],
        columns: &[(&[f64], Option<usize>)],
        step: f64,
        range: TimeRange,
        buf: &mut Vec<Sample>,
    ) -> Option<Kept> {
        let (slid, _) = members.first()?.0.slid()?;
        let (k, m, len) = (slid.k, slid.m, self.times.len());
        let same = |kept: &Values, s: Slid| kept.id() == Some(s.from) && (s.k, s.m) == (k, m);
        let slid_all = self.step == step
            && self.columns.len() == members.len()
            && members
                .iter()
                .zip(&self.columns)
                .all(|((s, state), (kept, kept_state))| {
                    state == kept_state && s.slid().is_some_and(|(t, v)| same(&self.times, t) && same(kept, v))
                });
        if !slid_all || k > len || len - k + m != times.len() || times.last().is_some_and(|&t| t > range.to) {
            return None;
        }
        let skip = times.len() - m;
        buf.clear();
        if !times[skip.saturating_sub(1)..].is_sorted() || !merge_aligned(times, columns, skip, buf) {
            return None;
        }
        timeline::drop_samples(&mut self.runs, k, times.first().copied().unwrap_or_default());
        timeline::extend_runs(&mut self.runs, buf, step);
        self.times = members[0].0.columns()?.0.clone();
        for ((kept, _), (s, _)) in self.columns.iter_mut().zip(members) {
            *kept = s.columns()?.1.clone();
        }
        self.folded = true;
        Some(self)
    }
}

/// The members' times (shared) and value columns, when every one came as
/// numbers at the same instants, sample for sample (one range query).
#[allow(clippy::type_complexity)]
fn aligned<'a>(members: &[(&Series<'a>, Option<usize>)]) -> Option<(&'a [f64], Vec<(&'a [f64], Option<usize>)>)> {
    let ((first, _), _) = members.split_first()?;
    let (times, _) = first.number_slices()?;
    let columns = members
        .iter()
        .map(|(s, state)| {
            let (t, v) = s.number_slices()?;
            (std::ptr::eq(t, times) || t == times).then_some((v, *state))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((times, columns))
}

/// The one state whose series is 1 at an instant, given the previous state.
fn pick(chosen: &mut Option<usize>, state: Option<usize>, on: bool, prev: Option<usize>) {
    if on && state.is_some() && (chosen.is_none() || *chosen == prev) {
        *chosen = state;
    }
}

/// The common case, and the hot loop of a large panel: every series of the
/// machine has its samples at the same instants (one range query), so the
/// merge walks their value columns side by side, one column at a time (a
/// tight loop), from sample `skip` on. False, with `buf` to be discarded,
/// when that is not exact: a time is not a finite number (such a sample is
/// missing, as in [`Series::point`]), or two series are 1 at an instant
/// (the choice depends on the state before: [`merge_by_time`] makes it).
fn merge_aligned(times: &[f64], columns: &[(&[f64], Option<usize>)], skip: usize, buf: &mut Vec<Sample>) -> bool {
    let times = &times[skip..];
    if !times.iter().all(|t| t.is_finite()) {
        return false;
    }
    let start = buf.len();
    buf.extend(times.iter().map(|&t| (t, None)));
    for (values, state) in columns {
        let Some(state) = *state else { continue };
        for (slot, &v) in buf[start..].iter_mut().zip(&values[skip..]) {
            if (0.5..f64::INFINITY).contains(&v) {
                if slot.1.is_some() {
                    return false;
                }
                slot.1 = Some(state);
            }
        }
    }
    true
}

/// Any series: a cursor per series, merged by time.
fn merge_by_time(members: &[(&Series, Option<usize>)], buf: &mut Vec<Sample>) {
    struct Cursor<'s, 'a> {
        series: &'s Series<'a>,
        state: Option<usize>,
        next: usize,
        /// The sample under the cursor: time, and whether the series is 1 there.
        head: Option<(f64, bool)>,
    }
    impl Cursor<'_, '_> {
        fn advance(&mut self) {
            self.head = None;
            while self.next < self.series.len() {
                let (t, _) = self.series.point(self.next);
                let on = self.series.number(self.next).is_some_and(|v| v >= 0.5);
                self.next += 1;
                if let Some(t) = t {
                    self.head = Some((t, on));
                    return;
                }
            }
        }
    }
    let mut cursors: Vec<Cursor> = members
        .iter()
        .map(|(series, state)| {
            let mut c = Cursor {
                series,
                state: *state,
                next: 0,
                head: None,
            };
            c.advance();
            c
        })
        .collect();
    let mut prev: Option<usize> = None;
    loop {
        let t_min = cursors
            .iter()
            .filter_map(|c| c.head.map(|h| h.0))
            .fold(f64::INFINITY, f64::min);
        if !t_min.is_finite() {
            break;
        }
        let mut chosen: Option<usize> = None;
        for c in cursors.iter_mut() {
            if let Some((t, on)) = c.head
                && t == t_min
            {
                pick(&mut chosen, c.state, on, prev);
                c.advance();
            }
        }
        buf.push((t_min, chosen));
        if chosen.is_some() {
            prev = chosen;
        }
    }
}

/// Enum series to samples. A machine read from several series (its labels
/// changed, or two jobs scrape it) has them merged by time; at an instant
/// where they differ, the state that differs from the previous one wins: it
/// is the newer.
fn decode_enum(
    inputs: &[(usize, Input)],
    series: &[Series],
    kind: &Kind,
    buf: &mut Vec<Sample>,
    unmapped: &mut Unmapped,
) {
    for (index, _) in inputs {
        let s = &series[*index];
        let decoder = Decoder::new(&s.field.config, kind);
        for i in 0..s.len() {
            let (Some(t), value) = s.point(i) else { continue };
            let state = match decoder.decode(value) {
                Decoded::State(st) => Some(st),
                Decoded::Gap => None,
                Decoded::Unmapped => {
                    note_unmapped(unmapped, *index, value);
                    None
                }
            };
            buf.push((t, state));
        }
    }
    if inputs.len() > 1 {
        sort_by_time(buf);
        collapse_instants(buf);
    }
}

/// Keeps one sample per instant of a time-sorted list: a known state over a
/// gap, and of two known states the one that differs from the previous.
fn collapse_instants(buf: &mut Vec<Sample>) {
    let mut prev: Option<usize> = None;
    let mut out = 0;
    let mut i = 0;
    while i < buf.len() {
        let t = buf[i].0;
        let mut chosen = None;
        while i < buf.len() && buf[i].0 == t {
            pick(&mut chosen, buf[i].1, true, prev);
            i += 1;
        }
        buf[out] = (t, chosen);
        out += 1;
        if chosen.is_some() {
            prev = chosen;
        }
    }
    buf.truncate(out);
}

/// A liveness gauge and an activity gauge to worker states: down is
/// offline, up with work in hand busy, up without idle. An instant without
/// a liveness sample is a gap.
fn merge_up_active(inputs: &[(usize, Input)], series: &[Series], kind: &Kind, buf: &mut Vec<Sample>) {
    let state = |name| kind.state_id(name).map(|s| s.index());
    use statescope_model::builtin::worker_state::{BUSY, IDLE, OFFLINE};
    let (offline, idle, busy) = (state(OFFLINE), state(IDLE), state(BUSY));
    let values = |which: &Input| {
        let mut out: Vec<(f64, f64)> = Vec::new();
        for (i, _) in inputs.iter().filter(|(_, input)| input == which) {
            let s = &series[*i];
            out.extend(numbers(s));
        }
        sort_by_time(&mut out);
        out
    };
    let (up, active) = (values(&Input::Up), values(&Input::Active));
    let mut a = 0;
    let mut last_t = f64::NEG_INFINITY;
    for &(t, alive) in &up {
        if t == last_t {
            continue;
        }
        last_t = t;
        while a < active.len() && active[a].0 < t {
            a += 1;
        }
        let working = active.get(a).is_some_and(|&(ta, n)| ta == t && n > 0.0);
        buf.push((
            t,
            if alive < 0.5 {
                offline
            } else if working {
                busy
            } else {
                idle
            },
        ));
    }
}

fn note_unmapped(unmapped: &mut Unmapped, series: usize, value: Cell) {
    let text = match value {
        Cell::Number(n) => format!("{n}"),
        Cell::Text(t) => t.to_owned(),
        Cell::Bool(b) => b.to_string(),
        Cell::Null => return,
    };
    let entry = match unmapped.iter_mut().find(|(s, _)| *s == series) {
        Some(e) => e,
        None => {
            unmapped.push((series, Vec::new()));
            unmapped.last_mut().expect("just pushed")
        }
    };
    if entry.1.len() < 3 && !entry.1.contains(&text) {
        entry.1.push(text);
    }
}

/// When a machine counts as flapping: it tripped at least `trips` times
/// within some `window_ms` of the range. A rate, not a count per range, so
/// that a long range with a few ordinary incidents does not flag a breaker,
/// and the flag means the same at 1 h and at 7 days.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlappingRule {
    pub trips: u64,
    pub window_ms: f64,
}

impl FlappingRule {
    /// Whether any `window_ms` holds `trips` trips; `times` are (time, trips)
    /// in any order.
    fn holds(&self, times: &mut [(f64, f64)]) -> bool {
        sort_by_time(times);
        let (mut start, mut in_window) = (0, 0.0);
        for end in 0..times.len() {
            in_window += times[end].1;
            while times[end].0 - times[start].0 > self.window_ms {
                in_window -= times[start].1;
                start += 1;
            }
            if in_window >= self.trips as f64 {
                return true;
            }
        }
        false
    }
}

/// A trip: the machine left an ok state for one of trouble that it reached
/// by itself (closed -> open), one per incident however often it retried
/// (open <-> half_open) and never an operator's move (-> forced_open).
struct Trips<'k> {
    kind: &'k Kind,
}

impl Trips<'_> {
    fn is_trip(&self, from: usize, to: usize) -> bool {
        let states = self.kind.states();
        let (Some(a), Some(b)) = (states.get(from), states.get(to)) else {
            return false;
        };
        a.severity == Severity::Ok && b.severity > Severity::Ok && !layout::is_manual(self.kind.name(), &b.name)
    }

    /// Trips seen in the sampled timeline (gaps do not break a run).
    fn in_segments(&self, segments: &[Segment]) -> Vec<(f64, f64)> {
        let mut prev = None;
        let mut out = Vec::new();
        for seg in segments {
            let Some(s) = seg.state_index else { continue };
            if prev.is_some_and(|p| self.is_trip(p, s)) {
                out.push((seg.start_ms, 1.0));
            }
            prev = Some(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;
    use crate::input::{Field, FieldType, Frame, Values};
    use crate::series;

    /// One frame per state: a time field and a 1/0 value field. A time of
    /// NaN stands for a sample without a usable time.
    fn one_hot_frames(times: &[Vec<f64>], values: &[Vec<f64>]) -> Vec<Frame> {
        let numbers = |v: &Vec<f64>| Values::numbers(v.clone());
        times
            .iter()
            .zip(values)
            .map(|(t, v)| Frame {
                fields: vec![
                    Field {
                        name: "Time".into(),
                        field_type: FieldType::Time,
                        values: numbers(t),
                        ..Field::default()
                    },
                    Field {
                        name: "Value".into(),
                        field_type: FieldType::Number,
                        values: numbers(v),
                        ..Field::default()
                    },
                ],
                ..Frame::default()
            })
            .collect()
    }

    fn merged(frames: &[Frame], aligned: Option<bool>) -> Vec<Sample> {
        let series = series::collect(frames, 0.0);
        let members: Vec<(&Series, Option<usize>)> = series.iter().enumerate().map(|(i, s)| (s, Some(i))).collect();
        let mut buf = Vec::new();
        match aligned {
            Some(true) => {
                // Side by side whatever the times hold (NaN times never compare equal).
                let slices: Vec<_> = series.iter().map(|s| s.number_slices().expect("numbers")).collect();
                let columns: Vec<_> = slices.iter().enumerate().map(|(i, (_, v))| (*v, Some(i))).collect();
                if !merge_aligned(slices[0].0, &columns, 0, &mut buf) {
                    // Not exact: what merge_one_hot does then.
                    buf.clear();
                    merge_by_time(&members, &mut buf);
                }
            }
            Some(false) => merge_by_time(&members, &mut buf),
            None => {
                let inputs: Vec<(usize, Input)> = (0..series.len())
                    .map(|i| (i, Input::State(["closed", "open", "half_open"][i].to_owned())))
                    .collect();
                let kind = statescope_model::builtin::circuit_breaker();
                merge_one_hot(&super::members(&inputs, &series, &kind), &mut buf);
            }
        }
        buf
    }

    #[test]
    fn aligned_series_merge_sample_by_sample_and_the_newer_state_wins_a_tie() {
        let t = vec![0.0, 15.0, f64::NAN, 45.0, 60.0];
        let frames = one_hot_frames(
            &[t.clone(), t.clone(), t],
            &[
                vec![1.0, 1.0, 0.0, 0.0, 0.0],
                vec![0.0, 1.0, 1.0, 0.0, f64::NAN],
                vec![0.0; 5],
            ],
        );
        let expected = vec![(0.0, Some(0)), (15.0, Some(1)), (45.0, None), (60.0, None)];
        assert_eq!(merged(&frames, None), expected);
        assert_eq!(merged(&frames, Some(false)), expected);
    }

    #[test]
    fn series_with_different_instants_merge_by_time() {
        let frames = one_hot_frames(
            &[vec![0.0, 15.0, 30.0], vec![15.0, 30.0]],
            &[vec![1.0, 0.0, 0.0], vec![1.0, 1.0]],
        );
        assert_eq!(
            merged(&frames, None),
            [(0.0, Some(0)), (15.0, Some(1)), (30.0, Some(1))]
        );
    }

    proptest! {
        /// The fast path for aligned series gives what the general merge gives.
        #[test]
        fn aligned_merge_equals_merge_by_time(
            rows in proptest::collection::vec(
                (prop_oneof![9 => Just(false), 1 => Just(true)], proptest::collection::vec(0u8..3, 3)),
                0..40,
            ),
        ) {
            let times: Vec<f64> =
                rows.iter().enumerate().map(|(i, (gap, _))| if *gap { f64::NAN } else { i as f64 * 15.0 }).collect();
            let values: Vec<Vec<f64>> = (0..3)
                .map(|s| rows.iter().map(|(_, v)| [0.0, 1.0, f64::NAN][usize::from(v[s])]).collect())
                .collect();
            let frames = one_hot_frames(&[times.clone(), times.clone(), times], &values);
            prop_assert_eq!(merged(&frames, Some(true)), merged(&frames, Some(false)));
        }
    }
}
