//! The frames `frames.ts` sent before, kept between refreshes.
//!
//! A dashboard refresh hands the panel every frame again, though the range
//! only slid by a step. So the wire is split by how often a part changes:
//!
//! - a frame's description (names, labels, field config) is sent once, as
//!   JSON under an id `frames.ts` chose; later refreshes name the id only;
//! - the samples of time and number fields come as one `Float64Array`
//!   (NaN for a null), never as JSON text;
//! - `layout` (a `Uint32Array`) says which frames this refresh holds, in
//!   order, and where each numeric field's samples are: per frame its id,
//!   then per time/number field a length, [`SAME_TIMES`] (the previous time
//!   field's samples again: every frame of a range query has its own copy of
//!   the same instants) or [`UNCHANGED`] (Grafana handed the same array as
//!   last time, so nothing was copied).
//!
//! The store keeps each frame's columns. A column equal to the one kept is
//! kept as it is (same allocation; [`Changes::same`]); a column whose range
//! slid (dropped samples at its start, new ones at its end, the kept ones
//! equal) is rebuilt from what it kept plus the new samples
//! ([`Changes::slid`]); anything else replaces it. Frames a refresh does not
//! name are forgotten, so a changed query, options or time range leaves no
//! stale series behind: the result always equals a decode from scratch.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use crate::input::{Field, FieldType, Frame, PanelInput, Theme, TimeRange, Values};
use crate::options::PanelOptions;

/// In `layout`: this field's samples are those of the previous time field.
pub const SAME_TIMES: u32 = u32::MAX;
/// In `layout`: this field's samples are the ones the store kept.
pub const UNCHANGED: u32 = u32::MAX - 1;

/// Why an update could not be applied.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum UpdateError {
    /// The update names a frame the store does not hold (it was reset, or
    /// the panel was remounted): the sender must start again from scratch.
    #[error("the panel's kept frames are out of step with the page")]
    Stale,
    /// The input is malformed; the message is one line for the panel.
    #[error("The panel could not read its input: {0}")]
    Bad(String),
}

/// What a refresh did to the kept columns: the numbers the bench and the
/// tests read to see that a slid range folds in only its new samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Frames described anew (first seen, or changed labels or config).
    pub new_frames: usize,
    /// Columns kept as they were.
    pub same: usize,
    /// Columns whose range slid: kept samples plus `appended` new ones.
    pub slid: usize,
    /// Samples added to slid columns.
    pub appended: usize,
    /// Columns replaced whole (new frames' columns included).
    pub replaced: usize,
}

/// Everything of a [`PanelInput`] but the frames, plus the frames this
/// update describes for the first time.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    new_frames: Vec<NewFrame>,
    options: PanelOptions,
    time_range: TimeRange,
    width: f64,
    height: f64,
    theme: Theme,
    now: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewFrame {
    id: u32,
    #[serde(default)]
    ref_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fields: Vec<Field>,
    /// Time/number fields whose cells came in the description (one was
    /// text): not in the layout, and the frame is not kept.
    #[serde(default)]
    cells: Vec<usize>,
}

/// The frames kept between updates, by the id `frames.ts` gave them.
#[derive(Debug, Default)]
pub struct FrameStore {
    frames: HashMap<u32, Frame>,
}

impl FrameStore {
    /// Applies one update and returns the panel's whole input. On an error
    /// the store is emptied: the next update must describe every frame.
    pub fn update(
        &mut self,
        meta: &str,
        layout: &[u32],
        numbers: &[f64],
    ) -> Result<(PanelInput, Changes), UpdateError> {
        let result = self.apply(meta, layout, numbers);
        if result.is_err() {
            self.frames.clear();
        }
        result
    }

    /// How many frames are kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn apply(&mut self, meta: &str, layout: &[u32], numbers: &[f64]) -> Result<(PanelInput, Changes), UpdateError> {
        let meta: Meta = serde_json::from_str(meta).map_err(|e| UpdateError::Bad(e.to_string()))?;
        let mut described: HashMap<u32, (Frame, Vec<usize>)> = meta
            .new_frames
            .into_iter()
            .map(|f| {
                let frame = Frame {
                    ref_id: f.ref_id,
                    name: f.name,
                    fields: f.fields,
                };
                (f.id, (frame, f.cells))
            })
            .collect();
        let mut changes = Changes {
            new_frames: described.len(),
            ..Changes::default()
        };
        let mut kept = HashMap::with_capacity(self.frames.len().max(described.len()));
        let mut frames = Vec::new();
        let mut reader = Reader { layout, numbers, at: 0 };
        let mut last_times: Option<Arc<Vec<f64>>> = None;
        while let Some(id) = reader.next() {
            let (mut frame, cells, fresh) = match described.remove(&id) {
                Some((frame, cells)) => (frame, cells, true),
                None => (self.frames.remove(&id).ok_or(UpdateError::Stale)?, Vec::new(), false),
            };
            let mut shift = None;
            for (i, field) in frame.fields.iter_mut().enumerate() {
                if !matches!(field.field_type, FieldType::Time | FieldType::Number) || cells.contains(&i) {
                    continue;
                }
                let column = match reader.next().ok_or_else(|| bad(&format!("frame {id} ends early")))? {
                    SAME_TIMES => {
                        let times = last_times
                            .clone()
                            .ok_or_else(|| bad(&format!("field {:?} repeats times before any", field.name)))?;
                        if !fresh {
                            let old = field.values.as_numbers().unwrap_or_default();
                            shift = if same_bits(old, &times) {
                                Some(0)
                            } else {
                                slide(old, &times, None)
                            };
                        }
                        times
                    }
                    UNCHANGED if !fresh => {
                        changes.same += 1;
                        column_of(&field.values)
                    }
                    UNCHANGED => return Err(bad(&format!("new field {:?} has no samples", field.name))),
                    len => {
                        let new = reader
                            .take(len as usize)
                            .ok_or_else(|| bad(&format!("field {:?} points past its numbers", field.name)))?;
                        fold((!fresh).then_some(&field.values), new, &mut shift, &mut changes)
                    }
                };
                if field.field_type == FieldType::Time {
                    last_times = Some(Arc::clone(&column));
                }
                field.values = Values::Numbers {
                    len: column.len(),
                    all: column,
                    at: 0,
                };
            }
            if cells.is_empty() && kept.insert(id, frame.clone()).is_some() {
                return Err(bad(&format!("frame {id} is listed twice")));
            }
            frames.push(frame);
        }
        if reader.at != numbers.len() {
            return Err(bad("numbers left over after the last frame"));
        }
        self.frames = kept;
        let input = PanelInput {
            frames,
            options: meta.options,
            time_range: meta.time_range,
            width: meta.width,
            height: meta.height,
            theme: meta.theme,
            now: meta.now,
        };
        Ok((input, changes))
    }
}

fn bad(what: &str) -> UpdateError {
    UpdateError::Bad(what.to_owned())
}

/// Reads `layout` front to back, and the numbers its lengths point at.
struct Reader<'a> {
    layout: &'a [u32],
    numbers: &'a [f64],
    at: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<u32> {
        let (first, rest) = self.layout.split_first()?;
        self.layout = rest;
        Some(*first)
    }

    fn take(&mut self, len: usize) -> Option<&'a [f64]> {
        let run = self.numbers.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(run)
    }
}

/// The kept column of a field (a field the store made holds all of it).
fn column_of(values: &Values) -> Arc<Vec<f64>> {
    match values {
        Values::Numbers { all, at: 0, len } if *len == all.len() => Arc::clone(all),
        other => Arc::new(other.as_numbers().map(<[f64]>::to_vec).unwrap_or_default()),
    }
}

/// The new column for a field: the kept one when equal, the kept samples
/// plus the new tail when the range slid, else the new samples. `shift` is
/// how far the frame's times slid, the first guess for its other fields.
fn fold(old: Option<&Values>, new: &[f64], shift: &mut Option<usize>, changes: &mut Changes) -> Arc<Vec<f64>> {
    let kept = old.and_then(Values::as_numbers).unwrap_or_default();
    if let Some(old) = old.filter(|_| !kept.is_empty() && same_bits(kept, new)) {
        changes.same += 1;
        *shift = Some(0);
        return column_of(old);
    }
    if let Some(dropped) = slide(kept, new, *shift) {
        *shift = Some(dropped);
        let still = kept.len() - dropped;
        changes.slid += 1;
        changes.appended += new.len() - still;
        let mut column = Vec::with_capacity(new.len());
        column.extend_from_slice(&kept[dropped..]);
        column.extend_from_slice(&new[still..]);
        return Arc::new(column);
    }
    changes.replaced += 1;
    Arc::new(new.to_vec())
}

/// How many samples fell off the start when `new` is `old` with its start
/// dropped and samples appended (at least one kept). Tries `guess`, then the
/// first place `new` could start: linear, not a search over every shift.
fn slide(old: &[f64], new: &[f64], guess: Option<usize>) -> Option<usize> {
    let first = new.first()?.to_bits();
    let fits = |d: usize| d < old.len() && old.len() - d <= new.len() && same_bits(&old[d..], &new[..old.len() - d]);
    guess
        .filter(|&d| fits(d))
        .or_else(|| old.iter().position(|x| x.to_bits() == first).filter(|&d| fits(d)))
}

/// Equal sample for sample, NaN (a null) equal to NaN.
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::input::Cell;

    /// One series as the datasource returns it: a `[Time, Value{labels}]` frame.
    #[derive(Clone, Debug)]
    struct Series {
        ref_id: String,
        machine: String,
        times: Vec<f64>,
        values: Vec<f64>,
    }

    /// What `frames.ts` does: an id per frame description, descriptions sent
    /// once, ids of frames no longer sent forgotten.
    #[derive(Default)]
    struct Sender {
        ids: HashMap<String, u32>,
        next: u32,
    }

    impl Sender {
        fn send(&mut self, series: &[Series], options: serde_json::Value) -> (String, Vec<u32>, Vec<f64>) {
            let mut described = Vec::new();
            let mut layout = Vec::new();
            let mut numbers = Vec::new();
            let mut ids = HashMap::new();
            let mut last_times: Option<&[f64]> = None;
            for s in series {
                let key = format!("{}\u{1f}{}", s.ref_id, s.machine);
                let id = match self.ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        self.next += 1;
                        described.push(json!({"id": self.next, "refId": s.ref_id, "fields": [
                            {"name": "Time", "type": "time", "config": {"interval": 15000}},
                            {"name": "Value", "type": "number",
                             "labels": {"__name__": "statescope_state", "machine": s.machine}}]}));
                        self.next
                    }
                };
                ids.insert(key, id);
                layout.push(id);
                if last_times == Some(&s.times[..]) {
                    layout.push(SAME_TIMES);
                } else {
                    layout.push(s.times.len() as u32);
                    numbers.extend_from_slice(&s.times);
                    last_times = Some(&s.times);
                }
                layout.push(s.values.len() as u32);
                numbers.extend_from_slice(&s.values);
            }
            self.ids = ids;
            let meta = json!({"newFrames": described, "options": options, "timeRange": {"from": 0, "to": 1}});
            (meta.to_string(), layout, numbers)
        }
    }

    type Seen = Vec<(Option<String>, Vec<(String, BTreeMap<String, String>, Vec<u64>)>)>;

    /// The frames as a comparable value (a null as NaN, NaN compared by its bits).
    fn seen(input: &PanelInput) -> Seen {
        input
            .frames
            .iter()
            .map(|f| {
                let fields = f
                    .fields
                    .iter()
                    .map(|x| {
                        let bits = x
                            .values
                            .cells()
                            .map(|c| match c {
                                Cell::Number(n) => n.to_bits(),
                                _ => f64::NAN.to_bits(),
                            })
                            .collect();
                        (x.name.clone(), (*x.labels).clone(), bits)
                    })
                    .collect();
                (f.ref_id.clone(), fields)
            })
            .collect()
    }

    /// The same series decoded from scratch, the old way: one JSON document,
    /// samples as JSON cells.
    fn from_scratch(series: &[Series]) -> Seen {
        let cells = |xs: &[f64]| {
            xs.iter()
                .map(|x| if x.is_nan() { json!(null) } else { json!(x) })
                .collect::<Vec<_>>()
        };
        let frames: Vec<_> = series
            .iter()
            .map(|s| {
                json!({"refId": s.ref_id, "fields": [
                    {"name": "Time", "type": "time", "config": {"interval": 15000}, "values": cells(&s.times)},
                    {"name": "Value", "type": "number", "values": cells(&s.values),
                     "labels": {"__name__": "statescope_state", "machine": s.machine}}]})
            })
            .collect();
        seen(&PanelInput::from_json(&json!({ "frames": frames }).to_string()).unwrap())
    }

    /// `machines` series over samples `from..to` of one long history (15 s steps).
    fn window(machines: &[&str], from: usize, to: usize, history: &[f64]) -> Vec<Series> {
        machines
            .iter()
            .enumerate()
            .map(|(m, machine)| Series {
                ref_id: "A".into(),
                machine: (*machine).into(),
                times: (from..to).map(|i| i as f64 * 15_000.0).collect(),
                values: (from..to).map(|i| history[(i + m) % history.len()]).collect(),
            })
            .collect()
    }

    fn update(store: &mut FrameStore, sender: &mut Sender, series: &[Series]) -> (PanelInput, Changes) {
        let (meta, layout, numbers) = sender.send(series, json!({}));
        store.update(&meta, &layout, &numbers).unwrap()
    }

    const HISTORY: [f64; 7] = [0.0, 1.0, 1.0, f64::NAN, 2.0, 0.0, 0.0];

    #[test]
    fn a_range_slid_by_one_step_folds_in_one_sample_per_column() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let machines = ["m1", "m2", "m3"];
        let (_, first) = update(&mut store, &mut sender, &window(&machines, 0, 240, &HISTORY));
        assert_eq!(
            (first.new_frames, first.replaced, first.slid),
            (3, 4, 0),
            "3 value columns, 1 time column"
        );
        let next = window(&machines, 1, 241, &HISTORY);
        let (input, changes) = update(&mut store, &mut sender, &next);
        assert_eq!(seen(&input), from_scratch(&next));
        assert_eq!(
            changes,
            Changes {
                new_frames: 0,
                same: 0,
                slid: 4,
                appended: 4,
                replaced: 0
            }
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn the_same_data_again_keeps_every_column_as_it_was() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1", "m2"], 0, 10, &HISTORY);
        let (before, _) = update(&mut store, &mut sender, &data);
        let (after, changes) = update(&mut store, &mut sender, &data);
        assert_eq!((changes.same, changes.slid, changes.replaced), (3, 0, 0));
        let column = |i: &PanelInput| match &i.frames[0].fields[1].values {
            Values::Numbers { all, .. } => Arc::as_ptr(all),
            Values::Cells(_) => panic!("numbers expected"),
        };
        assert_eq!(column(&before), column(&after), "kept, not copied");
    }

    #[test]
    fn a_changed_query_forgets_the_series_it_no_longer_returns() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        update(&mut store, &mut sender, &window(&["m1", "m2", "m3"], 0, 10, &HISTORY));
        let other = window(&["m2", "m4"], 0, 10, &HISTORY);
        let (input, changes) = update(&mut store, &mut sender, &other);
        assert_eq!(seen(&input), from_scratch(&other));
        assert_eq!(changes.new_frames, 1, "m4 only");
        assert_eq!(store.len(), 2, "m1 and m3 are gone");
    }

    #[test]
    fn a_changed_time_range_replaces_the_columns() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        update(&mut store, &mut sender, &window(&["m1"], 0, 240, &HISTORY));
        let later = window(&["m1"], 1000, 1240, &HISTORY);
        let (input, changes) = update(&mut store, &mut sender, &later);
        assert_eq!(seen(&input), from_scratch(&later));
        assert_eq!((changes.slid, changes.replaced), (0, 2));
    }

    #[test]
    fn changed_options_leave_the_frames_alone() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1"], 0, 10, &HISTORY);
        let (meta, layout, numbers) = sender.send(&data, json!({}));
        store.update(&meta, &layout, &numbers).unwrap();
        let (meta, layout, numbers) = sender.send(&data, json!({"search": "m1", "view": "machines"}));
        let (input, changes) = store.update(&meta, &layout, &numbers).unwrap();
        assert_eq!(input.options.search, "m1");
        assert_eq!((changes.same, changes.replaced), (2, 0));
        assert_eq!(seen(&input), from_scratch(&data));
    }

    #[test]
    fn unchanged_columns_need_no_numbers() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1"], 0, 10, &HISTORY);
        let (meta, layout, numbers) = sender.send(&data, json!({}));
        store.update(&meta, &layout, &numbers).unwrap();
        let meta = json!({"newFrames": []}).to_string();
        let id = layout[0];
        let (input, changes) = store.update(&meta, &[id, UNCHANGED, UNCHANGED], &[]).unwrap();
        assert_eq!(seen(&input), from_scratch(&data));
        assert_eq!(changes.same, 2);
    }

    #[test]
    fn an_unknown_frame_id_is_stale_and_empties_the_store() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1", "m2"], 0, 10, &HISTORY);
        update(&mut store, &mut sender, &data);
        let meta = json!({"newFrames": []}).to_string();
        assert_eq!(
            store.update(&meta, &[999, 1, 1], &[1.0, 2.0]).unwrap_err(),
            UpdateError::Stale
        );
        assert!(store.is_empty(), "the next update describes everything again");
        // A sender that starts over is understood again.
        let (input, _) = update(&mut store, &mut Sender::default(), &data);
        assert_eq!(seen(&input), from_scratch(&data));
    }

    #[test]
    fn text_cells_come_with_the_description_and_are_not_kept() {
        let mut store = FrameStore::default();
        let meta = json!({"newFrames": [{"id": 1, "cells": [1], "fields": [
            {"name": "Time", "type": "time"},
            {"name": "Value", "type": "number", "values": ["1", null]},
            {"name": "state", "type": "string", "values": ["open", "closed"]}]}]})
        .to_string();
        let (input, _) = store.update(&meta, &[1, 2], &[1000.0, f64::NAN]).unwrap();
        let cells = |i: usize| input.frames[0].fields[i].values.cells().collect::<Vec<_>>();
        assert_eq!(cells(0), [Cell::Number(1000.0), Cell::Null], "NaN is a null");
        assert_eq!(cells(1), [Cell::Text("1"), Cell::Null]);
        assert_eq!(cells(2), [Cell::Text("open"), Cell::Text("closed")]);
        assert!(store.is_empty(), "a frame with cells is described again next time");
    }

    #[test]
    fn malformed_updates_say_what_is_wrong_in_one_line() {
        let mut store = FrameStore::default();
        let meta = json!({"newFrames": [{"id": 1, "fields": [
            {"name": "Time", "type": "time"}, {"name": "Value", "type": "number"}]}]})
        .to_string();
        let err = |layout: &[u32], numbers: &[f64]| store_err(&mut FrameStore::default(), &meta, layout, numbers);
        assert!(err(&[1, 2, 2], &[1.0, 2.0, 3.0]).contains("field \"Value\" points past its numbers"));
        assert!(err(&[1, 2], &[1.0, 2.0]).contains("frame 1 ends early"));
        assert!(err(&[1, 1, 1], &[1.0, 2.0, 3.0]).contains("numbers left over"));
        assert!(err(&[1, UNCHANGED, 1], &[1.0]).contains("new field \"Time\" has no samples"));
        let e = store_err(&mut store, "{\"newFrames\": 3}", &[], &[]);
        assert!(
            e.starts_with("The panel could not read its input:") && !e.contains('\n'),
            "{e}"
        );
    }

    fn store_err(store: &mut FrameStore, meta: &str, layout: &[u32], numbers: &[f64]) -> String {
        store.update(meta, layout, numbers).unwrap_err().to_string()
    }

    proptest! {
        /// Whatever a run of refreshes sends (ranges that slide, jump or
        /// shrink, series that come and go), the kept frames equal a decode
        /// from scratch of the last refresh.
        #[test]
        fn incremental_equals_from_scratch(
            steps in prop::collection::vec((0usize..4, 0usize..30, 0usize..12, prop::bool::ANY), 1..12),
            // Halves: JSON text (the from-scratch side) holds them exactly.
            history in prop::collection::vec(prop_oneof![Just(f64::NAN), (0u8..6).prop_map(|x| f64::from(x) / 2.0)], 1..20),
        ) {
            let all = ["m1", "m2", "m3", "m4"];
            let (mut store, mut sender) = (FrameStore::default(), Sender::default());
            let mut from = 0;
            for (drop_machines, jump, len, slide_one) in steps {
                from = if slide_one { from + 1 } else { jump };
                let machines = &all[drop_machines..];
                let data = window(machines, from, from + len, &history);
                let (input, changes) = update(&mut store, &mut sender, &data);
                prop_assert_eq!(seen(&input), from_scratch(&data));
                prop_assert_eq!(store.len(), machines.len());
                let columns = changes.same + changes.slid + changes.replaced;
                let time_columns = usize::from(!machines.is_empty());
                prop_assert_eq!(columns, machines.len() + time_columns);
            }
        }
    }
}
