//! Per machine, what Prometheus does not store directly: its sampled states
//! merged into one timeline, time in state, transitions in range (from the
//! source's counter when the query has it, since only the counter sees a flap
//! between two samples), and whether it is flapping.

use std::collections::HashMap;

use statescope_model::{Kind, contract};

use crate::input::{Cell, TimeRange};
use crate::mapping::{Decoded, Decoder};
use crate::series::Series;
use crate::shape::{Recognised, Shape};
use crate::timeline::{self, Sample, Timeline};
use crate::view::{CountSource, Since};

/// Auxiliary series that belong to one machine.
#[derive(Clone, Debug, Default)]
pub struct MachineAux {
    /// `statescope_transitions_total` series.
    pub counters: Vec<usize>,
    /// `statescope_state_since_timestamp_seconds` series.
    pub since: Option<usize>,
}

/// Matches auxiliary series to machines by the machine's identity labels.
pub fn attach(rec: &Recognised, series: &[Series]) -> Vec<MachineAux> {
    let mut aux = vec![MachineAux::default(); rec.machines.len()];
    let index: HashMap<(usize, &[&str]), usize> = rec
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.group, m.key.as_slice()), i))
        .collect();
    let find = |s: &Series| -> Option<usize> {
        rec.groups.iter().enumerate().find_map(|(g, group)| {
            if group.identity.is_empty() {
                return None;
            }
            let key: Option<Vec<&str>> = group.identity.iter().map(|l| s.label(l)).collect();
            index.get(&(g, key?.as_slice())).copied()
        })
    };
    for &i in &rec.transitions {
        let Some(m) = find(&series[i]) else { continue };
        // One counter per transition: a second copy (the exporter scraped by
        // two jobs, or by two Prometheus servers) would count it twice.
        let pair = |c: usize| {
            (
                series[c].label(contract::LABEL_FROM),
                series[c].label(contract::LABEL_TO),
            )
        };
        if !aux[m].counters.iter().any(|&c| pair(c) == pair(i)) {
            aux[m].counters.push(i);
        }
    }
    for &i in &rec.since {
        if let Some(m) = find(&series[i]) {
            aux[m].since.get_or_insert(i);
        }
    }
    aux
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
    pub inputs: &'m [(usize, Option<String>)],
    pub aux: &'m MachineAux,
}

/// Derives one machine. `buf` is reused between machines so decoding does
/// not allocate per sample.
pub fn machine(
    m: &MachineInputs,
    series: &[Series],
    kind: &Kind,
    range: TimeRange,
    flapping_threshold: u64,
    buf: &mut Vec<Sample>,
    unmapped: &mut Unmapped,
) -> Derived {
    buf.clear();
    match m.shape {
        Shape::OneHot => merge_one_hot(m.inputs, series, kind, buf),
        Shape::Enum => decode_enum(m.inputs[0].0, series, kind, buf, unmapped),
    }
    if !buf.is_sorted_by(|a, b| a.0 <= b.0) {
        buf.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let declared = m.inputs.iter().find_map(|(i, _)| series[*i].interval);
    let step = timeline::infer_step(buf, declared, range);
    let timeline = timeline::build(buf, range, step);

    let (transitions, source, edges) = if m.aux.counters.is_empty() {
        (timeline.transitions(), CountSource::Samples, timeline.changes.clone())
    } else {
        // The exporter creates a transition counter when it is first
        // incremented: one whose first sample comes after the machine's was
        // absent, i.e. zero, until then.
        let machine_seen = buf.iter().map(|s| s.0).find(|t| range.contains(*t));
        let mut edges = Vec::new();
        let mut total = 0;
        for &i in &m.aux.counters {
            let s = &series[i];
            let n = increase(s, range, machine_seen);
            total += n;
            let id = |label| s.label(label).and_then(|n| kind.state_id(n)).map(|id| id.index());
            if let (Some(from), Some(to), true) = (id(contract::LABEL_FROM), id(contract::LABEL_TO), n > 0) {
                edges.push((from, to, n));
            }
        }
        (total, CountSource::Counter, edges)
    };
    let since = timeline.current.and_then(|_| {
        let exact = m.aux.since.and_then(|i| series[i].last_number()).filter(|s| *s > 0.0);
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
        flapping: transitions >= flapping_threshold,
        timeline,
        since,
        transitions,
        source,
        edges,
    }
}

/// One-hot series to samples: at each instant any series has a sample, the
/// state is the one whose series is 1; none at 1 is a gap. If several are 1
/// (a scrape caught both sides of a change), the one that differs from the
/// previous state wins: it is the newer.
fn merge_one_hot(inputs: &[(usize, Option<String>)], series: &[Series], kind: &Kind, buf: &mut Vec<Sample>) {
    let members: Vec<(&Series, Option<usize>)> = inputs
        .iter()
        .map(|(i, name)| {
            let state = name.as_deref().and_then(|n| kind.state_id(n)).map(|s| s.index());
            (&series[*i], state)
        })
        .collect();
    match members.split_first() {
        Some(((first, _), rest)) if rest.iter().all(|(s, _)| first.same_times(s)) => merge_aligned(&members, buf),
        _ => merge_by_time(&members, buf),
    }
}

/// The one state whose series is 1 at an instant, given the previous state.
fn pick(chosen: &mut Option<usize>, state: Option<usize>, on: bool, prev: Option<usize>) {
    if on && state.is_some() && (chosen.is_none() || *chosen == prev) {
        *chosen = state;
    }
}

/// The common case, and the hot loop of a large panel: every series of the
/// machine has its samples at the same instants (one range query), so the
/// merge walks them side by side.
fn merge_aligned(members: &[(&Series, Option<usize>)], buf: &mut Vec<Sample>) {
    let Some((first, _)) = members.first() else { return };
    let mut prev: Option<usize> = None;
    for i in 0..first.len() {
        let Some(t) = first.point(i).0 else { continue };
        let mut chosen = None;
        for (s, state) in members {
            pick(&mut chosen, *state, s.number(i).is_some_and(|v| v >= 0.5), prev);
        }
        buf.push((t, chosen));
        if chosen.is_some() {
            prev = chosen;
        }
    }
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

fn decode_enum(index: usize, series: &[Series], kind: &Kind, buf: &mut Vec<Sample>, unmapped: &mut Unmapped) {
    let s = &series[index];
    let decoder = Decoder::new(&s.field.config, kind);
    for i in 0..s.len() {
        let (Some(t), value) = s.point(i) else { continue };
        let state = match decoder.decode(value) {
            Decoded::State(st) => Some(st),
            Decoded::Gap => None,
            Decoded::Unmapped => {
                note_unmapped(unmapped, index, value);
                None
            }
        };
        buf.push((t, state));
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

/// A counter's increase over the samples in range, counting a drop as a
/// restart from zero (as PromQL's `increase` does, without extrapolation).
///
/// PromQL cannot tell a counter that appeared inside the range from one that
/// was already there, so it never counts a new series' first value. Here
/// the machine's own samples tell: when the machine was seen (`machine_seen`)
/// more than one of the counter's steps before the counter's first sample,
/// the counter was zero until then and its first value is counted too. (Within
/// one step the counter may just be queried on a coarser grid.)
pub fn increase(s: &Series, range: TimeRange, machine_seen: Option<f64>) -> u64 {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    let mut first = true;
    for i in 0..s.len() {
        let (Some(t), v) = s.point(i) else { continue };
        let Some(v) = v.as_f64() else { continue };
        if !range.contains(t) {
            continue;
        }
        if std::mem::take(&mut first) && machine_seen.is_some_and(|seen| t - seen > step(s, i)) {
            prev = Some(0.0);
        }
        if let Some(p) = prev {
            total += if v >= p { v - p } else { v };
        }
        prev = Some(v);
    }
    total.round() as u64
}

/// The step of a series at sample `i`: its declared query step, else the
/// gap to its next sample (0 for a lone sample).
fn step(s: &Series, i: usize) -> f64 {
    s.interval
        .or_else(|| {
            (i + 1..s.len())
                .find_map(|j| s.point(j).0)
                .zip(s.point(i).0)
                .map(|(b, a)| b - a)
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::input::{Field, FieldType, Frame, Values};
    use crate::series;

    /// One frame per state: a time field and a 1/0 value field. A time of
    /// NaN stands for a sample without a usable time.
    fn one_hot_frames(times: &[Vec<f64>], values: &[Vec<f64>]) -> Vec<Frame> {
        let numbers = |v: &Vec<f64>| Values::Numbers {
            all: Arc::new(v.clone()),
            at: 0,
            len: v.len(),
        };
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
            Some(true) => merge_aligned(&members, &mut buf),
            Some(false) => merge_by_time(&members, &mut buf),
            None => {
                let inputs: Vec<(usize, Option<String>)> = (0..series.len())
                    .map(|i| (i, Some(["closed", "open", "half_open"][i].to_owned())))
                    .collect();
                merge_one_hot(
                    &inputs,
                    &series,
                    &statescope_model::builtin::circuit_breaker(),
                    &mut buf,
                )
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
