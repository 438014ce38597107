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
//! The store keeps each frame's description and columns. An update's
//! columns are copied once, all into one allocation (the numbers as sent,
//! then the kept samples of the columns marked unchanged); frames that
//! repeat the times share one span of it. Comparing a slid column with the
//! kept one would cost more than that copy: the sender sends whole columns.
//! What a refresh saves is the descriptions (labels and config parsed once)
//! and the samples of unchanged columns. Frames a refresh does not name are
//! forgotten, so a changed query, options or time range leaves no stale
//! series behind: the result always equals a decode from scratch.

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

/// What an update did: the numbers the tests read to see that a refresh
/// describes no frame again and copies each column once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Frames described anew (first seen, or changed labels or config).
    pub new_frames: usize,
    /// Columns the sender marked unchanged, taken from the kept frames.
    pub kept: usize,
    /// Columns read from this update's numbers (repeated times included).
    pub sent: usize,
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
    /// The sample buffers of the last updates, reused once nothing else
    /// holds them (the page dropped that update's input): a refresh then
    /// copies its numbers into memory already in use instead of asking the
    /// allocator for a buffer the size of all samples each time.
    buffers: Vec<Arc<Vec<f64>>>,
}

/// How many past buffers are kept for reuse: the current input's and the
/// one before (still held while the page swaps inputs).
const BUFFERS: usize = 2;

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

    /// An empty buffer: a past one nobody else holds, or a new one.
    fn spare_buffer(&mut self) -> Vec<f64> {
        let free = self.buffers.iter().position(|b| Arc::strong_count(b) == 1);
        free.and_then(|i| Arc::into_inner(self.buffers.remove(i)))
            .map(|mut buffer| {
                buffer.clear();
                buffer
            })
            .unwrap_or_default()
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
        // Every column of this update lives in one allocation: the numbers as
        // sent, then the samples of the columns marked unchanged. One copy,
        // whatever the number of frames, and build_view reads one run of
        // memory instead of a small allocation per column.
        let mut all = self.spare_buffer();
        all.extend_from_slice(numbers);
        let mut frames = Vec::new();
        let mut ids = Vec::new();
        let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
        let mut reader = Reader { layout, numbers, at: 0 };
        let mut last_times: Option<(usize, usize)> = None;
        while let Some(id) = reader.next() {
            let (frame, cells, fresh) = match described.remove(&id) {
                Some((frame, cells)) => (frame, cells, true),
                None => (self.frames.remove(&id).ok_or(UpdateError::Stale)?, Vec::new(), false),
            };
            for (i, field) in frame.fields.iter().enumerate() {
                if !matches!(field.field_type, FieldType::Time | FieldType::Number) || cells.contains(&i) {
                    continue;
                }
                let span = match reader.next().ok_or_else(|| bad(&format!("frame {id} ends early")))? {
                    SAME_TIMES => {
                        changes.sent += 1;
                        last_times.ok_or_else(|| bad(&format!("field {:?} repeats times before any", field.name)))?
                    }
                    UNCHANGED if !fresh => {
                        changes.kept += 1;
                        let kept = field.values.as_numbers().unwrap_or_default();
                        all.extend_from_slice(kept);
                        (all.len() - kept.len(), kept.len())
                    }
                    UNCHANGED => return Err(bad(&format!("new field {:?} has no samples", field.name))),
                    len => {
                        changes.sent += 1;
                        let at = reader.at;
                        reader
                            .take(len as usize)
                            .ok_or_else(|| bad(&format!("field {:?} points past its numbers", field.name)))?;
                        (at, len as usize)
                    }
                };
                if field.field_type == FieldType::Time {
                    last_times = Some(span);
                }
                spans.push((frames.len(), i, span.0, span.1));
            }
            ids.push(cells.is_empty().then_some(id));
            frames.push(frame);
        }
        if reader.at != numbers.len() {
            return Err(bad("numbers left over after the last frame"));
        }
        let all = Arc::new(all);
        if self.buffers.len() == BUFFERS {
            self.buffers.remove(0);
        }
        self.buffers.push(Arc::clone(&all));
        for (f, i, at, len) in spans {
            frames[f].fields[i].values = Values::Numbers {
                all: Arc::clone(&all),
                at,
                len,
            };
        }
        let mut kept = HashMap::with_capacity(frames.len());
        for (frame, id) in frames.iter().zip(ids) {
            if let Some(id) = id
                && kept.insert(id, frame.clone()).is_some()
            {
                return Err(bad(&format!("frame {id} is listed twice")));
            }
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

    /// The allocation holding a field's samples.
    fn buffer(input: &PanelInput, frame: usize, field: usize) -> *const Vec<f64> {
        match &input.frames[frame].fields[field].values {
            Values::Numbers { all, .. } => Arc::as_ptr(all),
            Values::Cells(_) => panic!("numbers expected"),
        }
    }

    #[test]
    fn a_range_slid_by_one_step_describes_no_frame_again() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let machines = ["m1", "m2", "m3"];
        let (_, first) = update(&mut store, &mut sender, &window(&machines, 0, 240, &HISTORY));
        assert_eq!(
            first,
            Changes {
                new_frames: 3,
                kept: 0,
                sent: 6
            },
            "3 value columns, 3 time columns (2 of them repeats)"
        );
        let next = window(&machines, 1, 241, &HISTORY);
        let (input, changes) = update(&mut store, &mut sender, &next);
        assert_eq!(seen(&input), from_scratch(&next));
        assert_eq!(
            changes,
            Changes {
                new_frames: 0,
                kept: 0,
                sent: 6
            }
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn an_update_copies_its_columns_into_one_allocation_and_repeated_times_share_it() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let (input, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 0, 10, &HISTORY));
        let buffers: Vec<_> = (0..2).flat_map(|f| (0..2).map(move |i| (f, i))).collect();
        assert!(
            buffers
                .iter()
                .all(|&(f, i)| buffer(&input, f, i) == buffer(&input, 0, 0))
        );
        let times = |f: usize| input.frames[f].fields[0].values.as_numbers().unwrap().as_ptr();
        assert_eq!(times(0), times(1), "the second frame's times are the first's");
    }

    #[test]
    fn refreshes_reuse_the_buffer_of_an_input_the_page_dropped() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let start = |input: &PanelInput| input.frames[0].fields[0].values.as_numbers().unwrap().as_ptr();
        let (first, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 0, 10, &HISTORY));
        let first_start = start(&first);
        drop(first);
        let (second, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 1, 11, &HISTORY));
        assert_ne!(
            start(&second),
            first_start,
            "the first buffer is the kept frames' until now"
        );
        let next = window(&["m1", "m2"], 2, 12, &HISTORY);
        let (third, _) = update(&mut store, &mut sender, &next);
        assert_eq!(start(&third), first_start, "the first update's buffer again");
        assert_eq!(seen(&third), from_scratch(&next));
        let held = start(&second);
        let (fourth, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 3, 13, &HISTORY));
        assert_ne!(start(&fourth), held, "the page still holds the second input");
        assert_eq!(seen(&second), from_scratch(&window(&["m1", "m2"], 1, 11, &HISTORY)));
    }

    #[test]
    fn unchanged_columns_outlive_the_update_that_sent_them() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1", "m2"], 0, 10, &HISTORY);
        let (first, _) = update(&mut store, &mut sender, &data);
        let old = Arc::downgrade(match &first.frames[0].fields[1].values {
            Values::Numbers { all, .. } => all,
            Values::Cells(_) => panic!("numbers expected"),
        });
        let meta = json!({"newFrames": []}).to_string();
        // m1 and m2 were sent as frames 1 and 2.
        let layout = [1, UNCHANGED, UNCHANGED, 2, UNCHANGED, UNCHANGED];
        let (input, changes) = store.update(&meta, &layout, &[]).unwrap();
        assert_eq!(seen(&input), from_scratch(&data));
        assert_eq!((changes.kept, changes.sent), (4, 0));
        assert_ne!(
            buffer(&input, 0, 1),
            buffer(&first, 0, 1),
            "copied into this update's buffer"
        );
        drop(first);
        assert_eq!(
            old.strong_count(),
            1,
            "only kept for reuse: no frame holds the first buffer"
        );
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
        assert_eq!((changes.new_frames, changes.sent), (0, 2));
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
        assert_eq!((changes.new_frames, changes.sent), (0, 2));
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
        assert_eq!(changes.kept, 2);
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
                let columns = changes.kept + changes.sent;
                prop_assert_eq!(columns, 2 * machines.len(), "a time and a value column per frame");
            }
        }
    }
}
