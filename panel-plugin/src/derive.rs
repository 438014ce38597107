//! Per machine, what Prometheus does not store directly: its sampled states
//! merged into one timeline, time in state, transitions in range (from the
//! source's counter when the query has it, since only the counter sees a flap
//! between two samples), and whether it is flapping.

use std::collections::HashMap;

use statescope_model::{Kind, contract};

use crate::input::TimeRange;
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
    /// `statescope_state_since_seconds` series.
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
        if let Some(m) = find(&series[i]) {
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
        let mut edges = Vec::new();
        let mut total = 0;
        for &i in &m.aux.counters {
            let s = &series[i];
            let n = increase(s, range);
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
                let (t, v) = self.series.point(self.next);
                self.next += 1;
                if let Some(t) = t {
                    self.head = Some((t, v.as_f64().is_some_and(|v| v >= 0.5)));
                    return;
                }
            }
        }
    }
    let mut cursors: Vec<Cursor> = inputs
        .iter()
        .map(|(i, name)| {
            let mut c = Cursor {
                series: &series[*i],
                state: name.as_deref().and_then(|n| kind.state_id(n)).map(|s| s.index()),
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
                if on && c.state.is_some() && (chosen.is_none() || chosen == prev) {
                    chosen = c.state;
                }
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

fn note_unmapped(unmapped: &mut Unmapped, series: usize, value: &crate::input::Value) {
    let text = match value {
        crate::input::Value::Number(n) => format!("{n}"),
        crate::input::Value::Text(t) => t.clone(),
        crate::input::Value::Bool(b) => b.to_string(),
        crate::input::Value::Null => return,
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
pub fn increase(s: &Series, range: TimeRange) -> u64 {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for i in 0..s.len() {
        let (Some(t), v) = s.point(i) else { continue };
        let Some(v) = v.as_f64() else { continue };
        if t < range.from || t > range.to {
            continue;
        }
        if let Some(p) = prev {
            total += if v >= p { v - p } else { v };
        }
        prev = Some(v);
    }
    total.round() as u64
}
