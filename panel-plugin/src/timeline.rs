//! A machine's sampled states to run-length history over the time range.
//!
//! Sampling model: a sample tells the state at its instant and holds until the
//! next sample, as long as that comes within 1.5 steps (Prometheus range
//! queries return a sample per step; a missing step means the series was
//! absent). Otherwise the sample holds for one step and a gap follows. The
//! history always covers exactly `[from, to]`, in order, without overlap.

use crate::input::TimeRange;
use crate::view_model::Segment;

/// A decoded sample: its time (ms) and state index, `None` when no state is
/// known at that instant (no one-hot series is 1, or an unmappable value).
pub type Sample = (f64, Option<usize>);

/// How far past the step a following sample may come and still continue the
/// previous one (scrape and evaluation jitter).
const JITTER: f64 = 1.5;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub segments: Vec<Segment>,
    /// State at the end of the range: that of the last sample, unless it is
    /// too old to still hold there.
    pub current: Option<usize>,
    /// When the current state's run began (the first sample showing it), and
    /// whether that is only a lower bound (nothing known right before it).
    pub run_start: Option<(f64, bool)>,
    /// State changes between successive known samples whose later sample is
    /// in range, as (from, to, count).
    pub changes: Vec<(usize, usize, u64)>,
}

impl Timeline {
    pub fn transitions(&self) -> u64 {
        self.changes.iter().map(|c| c.2).sum()
    }

    /// Share of known time per state present, in state order; sums to 1
    /// unless no time is known (then empty).
    pub fn shares(&self) -> Vec<(usize, f64)> {
        let mut time: Vec<(usize, f64)> = Vec::new();
        for seg in &self.segments {
            if let Some(s) = seg.state_index {
                match time.iter_mut().find(|(t, _)| *t == s) {
                    Some(entry) => entry.1 += seg.end_ms - seg.start_ms,
                    None => time.push((s, seg.end_ms - seg.start_ms)),
                }
            }
        }
        let total: f64 = time.iter().map(|(_, d)| d).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        time.sort_unstable_by_key(|(s, _)| *s);
        time.iter_mut().for_each(|(_, d)| *d /= total);
        time
    }
}

/// The step to assume between samples: the datasource's, else the smallest
/// spacing seen, else the whole range (a single sample holds to its end).
pub fn infer_step(samples: &[Sample], declared: Option<f64>, range: TimeRange) -> f64 {
    step(declared, || min_gap(samples.iter().map(|s| s.0)), range)
}

/// [`infer_step`] with the smallest spacing computed only when needed.
pub fn step(declared: Option<f64>, min_gap: impl FnOnce() -> f64, range: TimeRange) -> f64 {
    if let Some(step) = declared.filter(|s| s.is_finite() && *s > 0.0) {
        return step;
    }
    let min_gap = min_gap();
    if min_gap.is_finite() {
        min_gap
    } else {
        (range.to - range.from).max(1.0)
    }
}

/// The smallest positive spacing of sorted times (infinite for none).
pub fn min_gap(mut times: impl Iterator<Item = f64>) -> f64 {
    let mut min = f64::INFINITY;
    let Some(mut prev) = times.next() else { return min };
    for t in times {
        if t > prev {
            min = min.min(t - prev);
        }
        prev = t;
    }
    min
}

/// Samples in a row that [`build`] draws as one: the same state, each
/// within reach of the one before. All the history needs of its samples,
/// so a machine keeps its runs between refreshes and a slid range only
/// drops samples from the first and adds new ones to the last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub first: f64,
    pub last: f64,
    pub state: Option<usize>,
    /// How many samples it holds.
    pub count: usize,
}

/// Appends `samples` (sorted, none before the last run's) to `runs`.
pub fn extend_runs(runs: &mut Vec<Run>, samples: &[Sample], step: f64) {
    let reach = step * JITTER;
    for &(t, state) in samples {
        match runs.last_mut() {
            Some(run) if run.state == state && t - run.last <= reach => {
                run.last = t;
                run.count += 1;
            }
            _ => runs.push(Run {
                first: t,
                last: t,
                state,
                count: 1,
            }),
        }
    }
}

/// Drops the first `k` samples from `runs`; `first` is the time of the
/// sample after them.
pub fn drop_samples(runs: &mut Vec<Run>, mut k: usize, first: f64) {
    let gone = runs.iter().take_while(|r| {
        r.count <= k && {
            k -= r.count;
            true
        }
    });
    let gone = gone.count();
    runs.drain(..gone);
    if let Some(run) = runs.first_mut().filter(|_| k > 0) {
        run.count -= k;
        run.first = first;
    }
}

/// Builds the history. `samples` must be sorted by time; times outside the
/// range only matter for what they say about the range's edges.
pub fn build(samples: &[Sample], range: TimeRange, step: f64) -> Timeline {
    let mut runs = Vec::new();
    extend_runs(
        &mut runs,
        &samples[..samples.partition_point(|s| s.0 <= range.to)],
        step,
    );
    from_runs(&runs, range, step)
}

/// The history of the samples `runs` hold, none after the range.
pub fn from_runs(runs: &[Run], range: TimeRange, step: f64) -> Timeline {
    let mut tl = Timeline {
        // A segment per run, and a gap after each at most.
        segments: Vec::with_capacity(2 * runs.len() + 1),
        ..Timeline::default()
    };
    let mut cursor = range.from;
    let mut push = |segments: &mut Vec<Segment>, start: f64, end: f64, state: Option<usize>| {
        let start = start.max(range.from);
        let end = end.min(range.to);
        if end <= start {
            return;
        }
        if start > cursor {
            extend(segments, cursor, start, None);
        }
        extend(segments, start.max(cursor), end, state);
        cursor = cursor.max(end);
    };
    let mut prev_known: Option<usize> = None;
    // Whether the previous run's cover reached the current one.
    let mut prev_touches = false;
    let reach = step * JITTER;
    for (i, run) in runs.iter().enumerate() {
        let (t, state) = (run.first, run.state);
        let next = runs.get(i + 1).map(|r| r.first);
        let horizon = next.unwrap_or(range.to);
        let end = if horizon - run.last <= reach {
            horizon
        } else {
            run.last + step
        };
        push(&mut tl.segments, t, end, state);

        if let Some(s) = state {
            if t >= range.from
                && let Some(p) = prev_known.filter(|&p| p != s)
            {
                match tl.changes.iter_mut().find(|c| c.0 == p && c.1 == s) {
                    Some(c) => c.2 += 1,
                    None => tl.changes.push((p, s, 1)),
                }
            }
            // The state of the sample right before, when it touches.
            let before = i.checked_sub(1).filter(|_| prev_touches).map(|j| runs[j].state);
            if before != Some(Some(s)) {
                // Exact only when the sample right before (touching) showed another state.
                tl.run_start = Some((t, before.is_none_or(|b| b.is_none())));
            }
            prev_known = Some(s);
        }
        prev_touches = end >= horizon && next.is_some();
    }
    if cursor < range.to {
        extend(&mut tl.segments, cursor, range.to, None);
    }
    // The state at the end of the range: the last sample's, if it is recent
    // enough to still hold there (an instant query's sample sits exactly at `to`).
    tl.current = runs
        .last()
        .filter(|r| range.to - r.last <= step * JITTER)
        .and_then(|r| r.state);
    if tl.current.is_none() {
        tl.run_start = None;
    }
    tl
}

/// Appends a segment, merging it into the last one when the state is the same.
fn extend(segments: &mut Vec<Segment>, start: f64, end: f64, state: Option<usize>) {
    if let Some(last) = segments.last_mut()
        && last.state_index == state
        && last.end_ms >= start
    {
        last.end_ms = last.end_ms.max(end);
        return;
    }
    segments.push(Segment {
        start_ms: start,
        end_ms: end,
        state_index: state,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RANGE: TimeRange = TimeRange { from: 0.0, to: 100.0 };

    fn seg(start: f64, end: f64, state: Option<usize>) -> Segment {
        Segment {
            start_ms: start,
            end_ms: end,
            state_index: state,
        }
    }

    #[test]
    fn regular_samples_become_runs_and_changes() {
        let samples: Vec<Sample> = [0, 0, 1, 1, 2, 0, 0, 0, 0, 0]
            .iter()
            .enumerate()
            .map(|(i, &s)| (i as f64 * 10.0, Some(s)))
            .collect();
        let tl = build(&samples, RANGE, 10.0);
        assert_eq!(
            tl.segments,
            [
                seg(0.0, 20.0, Some(0)),
                seg(20.0, 40.0, Some(1)),
                seg(40.0, 50.0, Some(2)),
                seg(50.0, 100.0, Some(0))
            ]
        );
        assert_eq!(tl.changes, [(0, 1, 1), (1, 2, 1), (2, 0, 1)]);
        assert_eq!(tl.transitions(), 3);
        assert_eq!(tl.current, Some(0));
        assert_eq!(
            tl.run_start,
            Some((50.0, false)),
            "the change was seen, so the start is exact"
        );
        assert_eq!(tl.shares(), [(0, 0.7), (1, 0.2), (2, 0.1)]);
    }

    #[test]
    fn a_missing_step_is_a_gap_and_a_state_from_the_start_is_a_lower_bound() {
        let samples = [
            (0.0, Some(1)),
            (10.0, Some(1)),
            (50.0, Some(1)),
            (60.0, None),
            (70.0, Some(1)),
        ];
        let tl = build(&samples, RANGE, 10.0);
        assert_eq!(
            tl.segments,
            [
                seg(0.0, 20.0, Some(1)),
                seg(20.0, 50.0, None),
                seg(50.0, 60.0, Some(1)),
                seg(60.0, 70.0, None),
                seg(70.0, 80.0, Some(1)),
                seg(80.0, 100.0, None),
            ]
        );
        assert_eq!(
            tl.transitions(),
            0,
            "the same state either side of a gap is no transition"
        );
        assert_eq!(tl.current, None, "no sample near the end of the range");
        assert_eq!(tl.run_start, None);

        let tl = build(
            &[(-5.0, Some(2)), (5.0, Some(2))],
            TimeRange { from: 0.0, to: 12.0 },
            10.0,
        );
        assert_eq!(tl.segments, [seg(0.0, 12.0, Some(2))]);
        assert_eq!(tl.run_start, Some((-5.0, true)));
    }

    #[test]
    fn no_samples_is_one_gap() {
        let tl = build(&[], RANGE, 10.0);
        assert_eq!(tl.segments, [seg(0.0, 100.0, None)]);
        assert!(tl.shares().is_empty());
    }

    #[test]
    fn step_comes_from_the_datasource_else_the_samples() {
        let samples = [(0.0, None), (15.0, None), (45.0, None)];
        assert_eq!(infer_step(&samples, Some(5.0), RANGE), 5.0);
        assert_eq!(infer_step(&samples, None, RANGE), 15.0);
        assert_eq!(infer_step(&samples[..1], None, RANGE), 100.0);
    }

    /// The sampling model applied one sample at a time, as `build` did
    /// before it jumped over runs: the definition `build` must keep.
    fn build_sample_by_sample(samples: &[Sample], range: TimeRange, step: f64) -> Timeline {
        let mut tl = Timeline::default();
        let mut cursor = range.from;
        let mut prev_known: Option<usize> = None;
        let mut prev_touches = false;
        for (i, &(t, state)) in samples.iter().enumerate() {
            if t > range.to {
                break;
            }
            let next = samples.get(i + 1).map(|s| s.0).filter(|n| *n <= range.to);
            let horizon = next.unwrap_or(range.to);
            let end = if horizon - t <= step * JITTER {
                horizon
            } else {
                t + step
            };
            let (start, end) = (t.max(range.from), end.min(range.to));
            if end > start {
                if start > cursor {
                    extend(&mut tl.segments, cursor, start, None);
                }
                extend(&mut tl.segments, start.max(cursor), end, state);
                cursor = cursor.max(end);
            }
            if let Some(s) = state {
                if t >= range.from
                    && let Some(p) = prev_known.filter(|&p| p != s)
                {
                    match tl.changes.iter_mut().find(|c| c.0 == p && c.1 == s) {
                        Some(c) => c.2 += 1,
                        None => tl.changes.push((p, s, 1)),
                    }
                }
                if !(prev_touches && i > 0 && samples[i - 1].1 == Some(s)) {
                    tl.run_start = Some((t, !(prev_touches && i > 0 && samples[i - 1].1.is_some())));
                }
                prev_known = Some(s);
            }
            prev_touches = end >= horizon && next.is_some();
        }
        if cursor < range.to {
            extend(&mut tl.segments, cursor, range.to, None);
        }
        tl.current = samples
            .iter()
            .rev()
            .find(|s| s.0 <= range.to)
            .filter(|s| range.to - s.0 <= step * JITTER)
            .and_then(|s| s.1);
        if tl.current.is_none() {
            tl.run_start = None;
        }
        tl
    }

    proptest! {
        /// Jumping over the samples that continue a run changes nothing:
        /// regular steps with jitter, missing steps, samples before and after
        /// the range.
        #[test]
        fn build_equals_the_sample_by_sample_definition(
            gaps in proptest::collection::vec(prop_oneof![8 => 9.0f64..11.0, 1 => 0.0f64..40.0], 0..80),
            states in proptest::collection::vec(prop_oneof![6 => Just(Some(0)), 3 => (1usize..3).prop_map(Some), 1 => Just(None)], 80),
            first in -40.0f64..60.0,
            step in prop_oneof![Just(10.0), 1.0f64..30.0],
        ) {
            let mut t = first;
            let samples: Vec<Sample> = gaps.iter().zip(&states).map(|(g, &s)| { t += g; (t, s) }).collect();
            prop_assert_eq!(build(&samples, RANGE, step), build_sample_by_sample(&samples, RANGE, step));
        }

        #[test]
        fn history_covers_the_range_in_order_without_overlap(
            mut times in proptest::collection::vec(-50.0f64..150.0, 0..60),
            states in proptest::collection::vec(proptest::option::weighted(0.8, 0usize..4), 60),
            step in 1.0f64..40.0,
        ) {
            times.sort_by(f64::total_cmp);
            let samples: Vec<Sample> = times.iter().zip(&states).map(|(&t, &s)| (t, s)).collect();
            let tl = build(&samples, RANGE, step);
            prop_assert!(!tl.segments.is_empty());
            prop_assert_eq!(tl.segments[0].start_ms, RANGE.from);
            prop_assert_eq!(tl.segments.last().unwrap().end_ms, RANGE.to);
            for w in tl.segments.windows(2) {
                prop_assert_eq!(w[0].end_ms, w[1].start_ms);
                prop_assert!(w[0].state_index != w[1].state_index, "equal neighbours are merged");
            }
            for s in &tl.segments {
                prop_assert!(s.end_ms > s.start_ms);
            }
            let shares = tl.shares();
            if !shares.is_empty() {
                let sum: f64 = shares.iter().map(|s| s.1).sum();
                prop_assert!((sum - 1.0).abs() < 1e-9, "shares sum to {}", sum);
            }
            // Transitions never exceed the number of in-range known samples.
            let in_range = samples.iter().filter(|s| s.1.is_some() && s.0 >= RANGE.from && s.0 <= RANGE.to).count();
            prop_assert!(tl.transitions() as usize <= in_range);
        }
    }
}
