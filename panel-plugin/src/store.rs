//! The frames `frames.ts` sent before, kept between refreshes.
//!
//! A dashboard refresh hands the panel every frame again, though the range
//! only slid by a step. So the wire is split by how often a part changes:
//!
//! - strings (field names, label names and values, refIds) cross once: the
//!   meta JSON's `strings` are appended to a table both sides keep across
//!   updates, and descriptions name them by index; distinct field configs
//!   cross once the same way (`configs`). `reset` starts both tables over
//!   (the sender does when they outgrow what its frames use);
//! - a frame's description is sent once, under an id `frames.ts` chose, as
//!   numbers in `describe` (a `Uint32Array`): per frame its id, refId, name
//!   (string indices, [`NONE`] for none) and field count, then per field its
//!   name, type ([`FieldType::code`]), config index, label count and the
//!   labels' name/value string indices. Later refreshes name the id only.
//!   Equal label sets become one shared `Arc`, equal configs too;
//! - the samples of time and number fields come as one `Float64Array`
//!   (NaN for a null), never as JSON text;
//! - `layout` (a `Uint32Array`) says which frames this refresh holds, in
//!   order, and where each numeric field's samples are: per frame its id,
//!   then per time/number field a length, [`SAME_TIMES`] (the previous time
//!   field's samples again: every frame of a range query has its own copy of
//!   the same instants), [`UNCHANGED`] (Grafana handed the same array as
//!   last time, so nothing was copied) or [`SLID`] followed by `k` and `m`:
//!   the kept samples but the first `k`, then `m` new ones from the numbers
//!   (the range slid; the sender checked that the overlap is what it sent,
//!   so a corrected sample goes as a whole column);
//! - text cells (a table's string column, a number field holding text) come
//!   in the meta JSON's `cells` as `[frame id, field index, values]`; such a
//!   frame is not kept.
//!
//! The store keeps each frame's description and columns. The columns an
//! update sends whole are copied once, all into one buffer, each with room
//! to grow; frames that repeat the times share one column. A slid column's
//! new samples are appended right after the samples it keeps, in the room
//! the store left (see [`crate::input::Samples`]: a sample, once a column
//! holds it, is never written again, so the page's last input and the
//! view's cache read on undisturbed), so a refresh copies only what it
//! brings; a column out of room is written anew with its kept samples. A
//! column made from a kept one (unchanged, slid, or times repeated from a
//! column that slid from the same kept times) says so in [`Field::slid`],
//! naming the column it came from: the view then folds the new samples
//! into what it derived from that column instead of reading them all
//! again. Frames a refresh does not name are forgotten, so a changed
//! query, options or time range leaves no stale series behind: the result
//! always equals a decode from scratch.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use crate::input::{
    Column, Field, FieldConfig, FieldType, Frame, MetricName, NAME_LABEL, PanelInput, Region, Samples, Slid, Theme,
    TimeRange, Value, Values,
};
use crate::options::PanelOptions;

/// In `layout`: this field's samples are those of the previous time field.
pub const SAME_TIMES: u32 = u32::MAX;
/// In `layout`: this field's samples are the ones the store kept.
pub const UNCHANGED: u32 = u32::MAX - 1;
/// In `layout`, followed by `k` and `m`: the kept samples without the first
/// `k`, then `m` samples from the numbers.
pub const SLID: u32 = u32::MAX - 2;
/// In `describe`: no refId, no frame name.
pub const NONE: u32 = u32::MAX;

/// Why an update could not be applied.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum UpdateError {
    /// The update names a frame, string or config the store does not hold
    /// (it was reset, or the panel was remounted): the sender must start
    /// again from scratch.
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
    /// Columns slid: the kept samples' tail, then new ones.
    pub slid: usize,
}

/// Everything of a [`PanelInput`] but the frames, plus the strings, configs
/// and text cells this update adds.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    reset: bool,
    strings: Vec<String>,
    configs: Vec<FieldConfig>,
    cells: Vec<(u32, usize, Vec<Value>)>,
    options: PanelOptions,
    time_range: TimeRange,
    width: f64,
    height: f64,
    theme: Theme,
    now: f64,
}

/// The frames kept between updates, by the id `frames.ts` gave them, and
/// the tables descriptions refer to.
#[derive(Debug, Default)]
pub struct FrameStore {
    frames: HashMap<u32, KeptFrame, Ids>,
    strings: Vec<Arc<str>>,
    configs: Vec<Arc<FieldConfig>>,
    /// Label sets by their string indices: equal sets share one map, so
    /// the frames of one machine (and every refresh) hold the same `Arc`.
    label_sets: HashMap<Box<[u32]>, Arc<BTreeMap<String, String>>>,
    /// The buffers of the last updates, for reuse (see [`FrameStore::buffer`]).
    buffers: Vec<Arc<Samples>>,
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
        describe: &[u32],
        layout: &[u32],
        numbers: &[f64],
    ) -> Result<(PanelInput, Changes), UpdateError> {
        let result = self.apply(meta, describe, layout, numbers);
        if result.is_err() {
            self.frames.clear();
            self.clear_tables();
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

    /// Forgets the strings and configs sent (kept frames own their copies).
    fn clear_tables(&mut self) {
        self.strings.clear();
        self.configs.clear();
        self.label_sets.clear();
    }

    /// A buffer for `len` samples that nothing reads: one of the last
    /// updates' that every column has left (a range that jumped, or went
    /// whole, twice), or a new one; kept for the next updates either way.
    /// A refresh then writes into memory already in use instead of asking
    /// the allocator for a buffer the size of all samples.
    fn buffer(&mut self, len: usize) -> Arc<Samples> {
        // None over about twice the size: a column that never moves again
        // would pin all of a larger buffer.
        let most = len.saturating_mul(2).saturating_add(1 << 12);
        let free = self
            .buffers
            .iter_mut()
            .position(|b| (len..=most).contains(&b.len()) && Arc::get_mut(b).is_some());
        match free {
            Some(i) => self.buffers.remove(i),
            None => Arc::new(Samples::uninit(len)),
        }
    }

    /// Frame `id`'s description, read from `d`. An index past the tables
    /// is [`UpdateError::Stale`] (the store was emptied since the sender
    /// added it), unless this update started the tables over.
    fn describe(&mut self, id: u32, d: &mut Reader, reset: bool) -> Result<Frame, UpdateError> {
        let ends = || bad(&format!("the description of frame {id} ends early"));
        let missing = || {
            if reset {
                bad(&format!("frame {id} names a string or config not sent"))
            } else {
                UpdateError::Stale
            }
        };
        let string = |strings: &[Arc<str>], i: u32| strings.get(i as usize).cloned().ok_or_else(missing);
        let optional = |strings: &[Arc<str>], i: u32| (i != NONE).then(|| string(strings, i)).transpose();
        let ref_id = optional(&self.strings, d.next().ok_or_else(ends)?)?;
        let name = optional(&self.strings, d.next().ok_or_else(ends)?)?;
        let count = d.next().ok_or_else(ends)?;
        let mut fields = Vec::new();
        for _ in 0..count {
            let (field_name, code, config, labels) = (d.next(), d.next(), d.next(), d.next().ok_or_else(ends)?);
            let (Some(field_name), Some(code), Some(config)) = (field_name, code, config) else {
                return Err(ends());
            };
            let pairs = d.words(labels as usize * 2).ok_or_else(ends)?;
            let metric = pairs
                .chunks_exact(2)
                .find(|pair| {
                    self.strings
                        .get(pair[0] as usize)
                        .is_some_and(|name| &**name == NAME_LABEL)
                })
                .map(|pair| string(&self.strings, pair[1]))
                .transpose()?;
            let labels = match self.label_sets.get(pairs) {
                Some(labels) => Arc::clone(labels),
                None => {
                    let mut set = BTreeMap::new();
                    for pair in pairs.chunks_exact(2) {
                        set.insert(
                            String::from(&*string(&self.strings, pair[0])?),
                            String::from(&*string(&self.strings, pair[1])?),
                        );
                    }
                    let set = Arc::new(set);
                    self.label_sets.insert(pairs.into(), Arc::clone(&set));
                    set
                }
            };
            fields.push(Field {
                name: string(&self.strings, field_name)?,
                field_type: FieldType::from_code(code),
                labels,
                config: self.configs.get(config as usize).cloned().ok_or_else(missing)?,
                values: Values::default(),
                metric: MetricName::Read(metric),
                slid: None,
            });
        }
        Ok(Frame { ref_id, name, fields })
    }

    fn apply(
        &mut self,
        meta: &str,
        describe: &[u32],
        layout: &[u32],
        numbers: &[f64],
    ) -> Result<(PanelInput, Changes), UpdateError> {
        let meta: Meta = serde_json::from_str(meta).map_err(|e| UpdateError::Bad(e.to_string()))?;
        if meta.reset {
            self.clear_tables();
        }
        self.strings.extend(meta.strings.into_iter().map(Arc::from));
        self.configs.extend(meta.configs.into_iter().map(Arc::new));
        let mut described: HashMap<u32, (Frame, Vec<usize>), Ids> = HashMap::default();
        let mut d = Reader {
            layout: describe,
            numbers: &[],
            at: 0,
        };
        while let Some(id) = d.next() {
            let frame = self.describe(id, &mut d, meta.reset)?;
            if described.insert(id, (frame, Vec::new())).is_some() {
                return Err(bad(&format!("frame {id} is described twice")));
            }
        }
        for (id, i, values) in meta.cells {
            let (frame, cells) = described
                .get_mut(&id)
                .ok_or_else(|| bad(&format!("cells for frame {id}, which is not described")))?;
            let field = frame
                .fields
                .get_mut(i)
                .ok_or_else(|| bad(&format!("cells for field {i} of frame {id}, which has no such field")))?;
            field.values = Values::Cells(values);
            cells.push(i);
        }
        let mut changes = Changes {
            new_frames: described.len(),
            ..Changes::default()
        };
        // First where each column's samples are: kept as they are, appended
        // to the region the store wrote the kept column in (a slide: only
        // the new samples are copied), or to be written in a new region.
        // At most a frame per id in the layout and a column per word.
        let mut frames = Vec::with_capacity(self.frames.len() + described.len());
        let mut spans: Vec<Span> = Vec::with_capacity(layout.len());
        // The size of each region to write anew, in span order.
        let mut sizes = Vec::new();
        let mut reader = Reader { layout, numbers, at: 0 };
        // Where the last time field is (frame, field), and how it came from its column
        // before: a frame repeating its times slid the same way if it held
        // that column too.
        let mut last_times: Option<((usize, usize), Option<Slid>)> = None;
        while let Some(id) = reader.next() {
            let (frame, mut regions, cells, fresh) = match described.remove(&id) {
                Some((frame, cells)) => {
                    let regions = frame.fields.iter().map(|_| None).collect();
                    (frame, regions, cells, true)
                }
                None => {
                    let kept = self.frames.remove(&id).ok_or(UpdateError::Stale)?;
                    (kept.frame, kept.regions, Vec::new(), false)
                }
            };
            for (i, field) in frame.fields.iter().enumerate() {
                if !matches!(field.field_type, FieldType::Time | FieldType::Number) || cells.contains(&i) {
                    continue;
                }
                let ends = || bad(&format!("frame {id} ends early"));
                let past_numbers = || bad(&format!("field {:?} points past its numbers", field.name));
                let before = field.values.id().filter(|_| !fresh);
                let slide = |k, m| before.map(|from| Slid { from, k, m });
                let (source, slid) = match reader.next().ok_or_else(ends)? {
                    SAME_TIMES => {
                        changes.sent += 1;
                        let (span, slid) = last_times
                            .ok_or_else(|| bad(&format!("field {:?} repeats times before any", field.name)))?;
                        (Source::Same(span), slid.filter(|s| before == Some(s.from)))
                    }
                    UNCHANGED | SLID if fresh => {
                        return Err(bad(&format!("new field {:?} has no samples", field.name)));
                    }
                    UNCHANGED => {
                        changes.kept += 1;
                        (Source::Kept(field.values.clone()), slide(0, 0))
                    }
                    SLID => {
                        changes.slid += 1;
                        let (k, m) = (reader.next().ok_or_else(ends)?, reader.next().ok_or_else(ends)?);
                        let (k, m) = (k as usize, m as usize);
                        // A kept number field always holds numbers.
                        let kept = match &field.values {
                            Values::Numbers(kept) if k <= kept.as_slice().len() => kept,
                            _ => return Err(bad(&format!("field {:?} slid past its samples", field.name))),
                        };
                        let at = reader.at;
                        reader.take(m).ok_or_else(past_numbers)?;
                        let appended = regions[i].as_mut().and_then(|r| {
                            let start = r.tail_of(kept)?;
                            r.push(&numbers[at..at + m]).then(|| r.column_from(start + k))
                        });
                        let source = match appended {
                            Some(column) => Source::Kept(Values::Numbers(column)),
                            None => Source::New(Some((kept.clone(), k)), at..at + m),
                        };
                        (source, slide(k, m))
                    }
                    len => {
                        changes.sent += 1;
                        let at = reader.at;
                        reader.take(len as usize).ok_or_else(past_numbers)?;
                        (Source::New(None, at..at + len as usize), None)
                    }
                };
                if let Source::New(tail, new) = &source {
                    let len = tail.as_ref().map_or(0, |(kept, k)| kept.as_slice().len() - k) + new.len();
                    sizes.push(len + room(len));
                }
                if !matches!(source, Source::Kept(_)) {
                    regions[i] = None;
                }
                if field.field_type == FieldType::Time {
                    last_times = Some(((frames.len(), i), slid));
                }
                spans.push(Span {
                    frame: frames.len(),
                    field: i,
                    source,
                    slid,
                });
            }
            frames.push((frame, regions, cells.is_empty().then_some(id)));
        }
        if reader.at != numbers.len() {
            return Err(bad("numbers left over after the last frame"));
        }
        if let Some(id) = described.keys().next() {
            return Err(bad(&format!("frame {id} is described but not in the layout")));
        }
        // Then the columns written anew, all in one buffer: each in a region
        // with room to grow by the slides of later refreshes.
        // Saturating: repeated times counted once per frame could pass
        // usize on wasm32, and a wrapped total would carve a short buffer;
        // a saturated one fails its allocation instead.
        let total = sizes.iter().fold(0usize, |sum, &size| sum.saturating_add(size));
        let mut fresh_regions = Vec::new().into_iter();
        if total > 0 {
            let mut buffer = self.buffer(total);
            fresh_regions = Region::carve(&mut buffer, &sizes).into_iter();
            if self.buffers.len() == BUFFERS {
                self.buffers.remove(0);
            }
            self.buffers.push(buffer);
        }
        for span in spans {
            let values = match span.source {
                Source::Same((f, i)) => frames[f].0.fields[i].values.clone(),
                Source::Kept(values) => values,
                Source::New(tail, new) => {
                    // Sized to fit, one per new column: neither push fails.
                    let mut region = fresh_regions.next().unwrap();
                    let start = region.start();
                    let written = tail.is_none_or(|(kept, k)| region.push(&kept.as_slice()[k..]));
                    let written = region.push(&numbers[new]) && written;
                    debug_assert!(written, "sized to fit");
                    let values = Values::Numbers(region.column_from(start));
                    frames[span.frame].1[span.field] = Some(region);
                    values
                }
            };
            let field = &mut frames[span.frame].0.fields[span.field];
            field.values = values;
            field.slid = span.slid;
        }
        let mut kept = HashMap::with_capacity_and_hasher(frames.len(), Ids::default());
        let mut input_frames = Vec::with_capacity(frames.len());
        for (frame, regions, id) in frames {
            if let Some(id) = id
                && kept
                    .insert(
                        id,
                        KeptFrame {
                            frame: frame.clone(),
                            regions,
                        },
                    )
                    .is_some()
            {
                return Err(bad(&format!("frame {id} is listed twice")));
            }
            input_frames.push(frame);
        }
        self.frames = kept;
        let input = PanelInput {
            frames: input_frames,
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

/// How much a column written anew may grow by later slides before it is
/// written anew again: with room for a quarter of its samples, a range
/// sliding a step per refresh copies its kept samples once every `len / 4`
/// refreshes (four samples a refresh), for a quarter more memory.
fn room(len: usize) -> usize {
    len / 4 + 4
}

/// Where a column of this update comes from.
enum Source {
    /// The times of an earlier field of this update (frame, field).
    Same((usize, usize)),
    /// Already where it is: unchanged, or slid within its region.
    Kept(Values),
    /// Written anew: the kept column's samples from the `k`-th on (a slide
    /// that did not fit its region) and then this run of the numbers.
    New(Option<(Column, usize)>, std::ops::Range<usize>),
}

/// One time or number field of this update, in order.
struct Span {
    frame: usize,
    field: usize,
    source: Source,
    slid: Option<Slid>,
}

/// Hashes the ids `frames.ts` gives frames (small distinct numbers) as
/// they are: a refresh looks up every frame, and SipHash was a tenth of
/// its decode.
type Ids = BuildHasherDefault<IdHasher>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread over the high bits too: hashbrown reads its tag from them.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// A kept frame, and per field the region the store wrote its column in
/// (`None` for a column it did not write: repeated times, cells).
#[derive(Debug)]
struct KeptFrame {
    frame: Frame,
    regions: Vec<Option<Region>>,
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

    /// The next `n` words of the layout.
    fn words(&mut self, n: usize) -> Option<&'a [u32]> {
        let (words, rest) = self.layout.split_at_checked(n)?;
        self.layout = rest;
        Some(words)
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
    /// once (strings and configs interned), ids of frames no longer sent
    /// forgotten, and a column that is the one sent before slid by `k`
    /// steps sent as its `k` new samples, once the overlap is checked.
    #[derive(Default)]
    struct Sender {
        ids: HashMap<String, u32>,
        next: u32,
        strings: HashMap<String, u32>,
        configs_sent: bool,
        /// The columns last sent per frame key: what the overlap is checked against.
        sent: HashMap<String, [Vec<f64>; 2]>,
        /// Sends whole columns, as the sender before slides did.
        whole: bool,
    }

    /// One update: meta JSON, description, layout and numbers.
    type Update = (String, Vec<u32>, Vec<u32>, Vec<f64>);

    /// Whether the store holds the same sample for `a` as for `b` (NaN for a null).
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
    }

    /// `k` when `new` is `kept` without its first `k` samples, then new ones.
    fn slid_by(kept: &[f64], new: &[f64], k: usize) -> Option<usize> {
        let overlap = kept.len().checked_sub(k).filter(|&o| o > 0 && o <= new.len())?;
        same(&kept[k..], &new[..overlap]).then_some(k)
    }

    impl Sender {
        fn string(&mut self, s: &str, fresh: &mut Vec<String>) -> u32 {
            let next = self.strings.len() as u32;
            *self.strings.entry(s.to_owned()).or_insert_with(|| {
                fresh.push(s.to_owned());
                next
            })
        }

        fn send(&mut self, series: &[Series], options: serde_json::Value) -> Update {
            let (mut describe, mut layout, mut numbers, mut strings) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let configs = if self.configs_sent {
                json!([])
            } else {
                json!([{"interval": 15000}, {}])
            };
            self.configs_sent = true;
            let mut ids = HashMap::new();
            let mut sent = HashMap::new();
            let mut last_times: Option<&[f64]> = None;
            for s in series {
                let key = format!("{}\u{1f}{}", s.ref_id, s.machine);
                let id = match self.ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        self.next += 1;
                        let words = [
                            &s.ref_id,
                            "Time",
                            "Value",
                            "__name__",
                            "statescope_state",
                            "machine",
                            &s.machine,
                        ]
                        .map(|w| self.string(w, &mut strings));
                        let [ref_id, time, value, name, metric, machine, m] = words;
                        describe.extend([
                            self.next, ref_id, NONE, 2, time, 0, 0, 0, value, 1, 1, 2, name, metric, machine, m,
                        ]);
                        self.next
                    }
                };
                ids.insert(key.clone(), id);
                layout.push(id);
                let before = self.sent.get(&key).filter(|_| !self.whole);
                // The slide the times show: where the new first instant is in the kept times.
                let k = before.and_then(|[t, _]| t.iter().position(|&x| Some(&x) == s.times.first()));
                for (column, time) in [(&s.times, true), (&s.values, false)] {
                    let kept = before.map(|b| &b[usize::from(!time)][..]);
                    if time && last_times.is_some_and(|t| same(t, column)) {
                        layout.push(SAME_TIMES);
                    } else if let Some(k) = kept.zip(k).and_then(|(kept, k)| slid_by(kept, column, k)) {
                        let overlap = kept.unwrap().len() - k;
                        layout.extend([SLID, k as u32, (column.len() - overlap) as u32]);
                        numbers.extend_from_slice(&column[overlap..]);
                    } else {
                        layout.push(column.len() as u32);
                        numbers.extend_from_slice(column);
                    }
                    if time {
                        last_times = Some(column);
                    }
                }
                sent.insert(key, [s.times.clone(), s.values.clone()]);
            }
            self.ids = ids;
            self.sent = sent;
            let meta =
                json!({"strings": strings, "configs": configs, "options": options, "timeRange": {"from": 0, "to": 1}});
            (meta.to_string(), describe, layout, numbers)
        }
    }

    type Seen = Vec<(
        Option<String>,
        Vec<(String, BTreeMap<String, String>, Option<String>, Vec<u64>)>,
    )>;

    /// The frames as a comparable value (a null as NaN, NaN compared by its
    /// bits), with each field's metric name as the view reads it.
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
                        let metric = x.metric_name().map(str::to_owned);
                        (x.name.to_string(), (*x.labels).clone(), metric, bits)
                    })
                    .collect();
                (f.ref_id.as_deref().map(str::to_owned), fields)
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
        let (meta, describe, layout, numbers) = sender.send(series, json!({}));
        store.update(&meta, &describe, &layout, &numbers).unwrap()
    }

    const HISTORY: [f64; 7] = [0.0, 1.0, 1.0, f64::NAN, 2.0, 0.0, 0.0];

    /// The allocation holding a field's samples.
    fn buffer(input: &PanelInput, frame: usize, field: usize) -> *const crate::input::Samples {
        match &input.frames[frame].fields[field].values {
            Values::Numbers(column) => column.buffer(),
            Values::Cells(_) => panic!("numbers expected"),
        }
    }

    #[test]
    fn a_range_slid_by_one_step_describes_no_frame_again_and_sends_only_the_new_samples() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let machines = ["m1", "m2", "m3"];
        let (_, first) = update(&mut store, &mut sender, &window(&machines, 0, 240, &HISTORY));
        assert_eq!(
            first,
            Changes {
                new_frames: 3,
                sent: 6,
                ..Changes::default()
            },
            "3 value columns, 3 time columns (2 of them repeats)"
        );
        let next = window(&machines, 1, 241, &HISTORY);
        let (meta, describe, layout, numbers) = sender.send(&next, json!({}));
        assert!(describe.is_empty(), "no frame described again");
        assert_eq!(numbers.len(), 4, "one new instant and one new value per machine");
        assert_eq!(&layout[..7], [1, SLID, 1, 1, SLID, 1, 1]);
        let (input, changes) = store.update(&meta, &describe, &layout, &numbers).unwrap();
        assert_eq!(seen(&input), from_scratch(&next));
        assert_eq!(
            changes,
            Changes {
                sent: 2,
                slid: 4,
                ..Changes::default()
            },
            "the first times and every value column slid; the other times repeat the first"
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_late_corrected_sample_in_the_overlap_sends_the_whole_column() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let mut history = vec![0.0; 40];
        update(&mut store, &mut sender, &window(&["m1", "m2"], 0, 20, &history));
        // Prometheus answered the sample at step 5 late: it is 1 now, not 0.
        history[5] = 1.0;
        let next = window(&["m1", "m2"], 1, 21, &history);
        let (meta, describe, layout, numbers) = sender.send(&next, json!({}));
        let (input, changes) = store.update(&meta, &describe, &layout, &numbers).unwrap();
        assert_eq!(seen(&input), from_scratch(&next), "the corrected sample is shown");
        assert_eq!(input.frames[0].fields[1].values.number(4), Some(1.0));
        assert_eq!(
            changes,
            Changes {
                sent: 3,
                slid: 1,
                ..Changes::default()
            },
            "m1's times slid; both value columns (m2's sample at 4 moved too) and m2's repeated times went whole"
        );
    }

    #[test]
    fn strings_and_configs_cross_once_and_equal_label_sets_share_one_map() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let mut data = window(&["m1", "m2"], 0, 10, &HISTORY);
        // The same machine under another query: the same labels.
        data.push(Series {
            ref_id: "B".into(),
            ..data[0].clone()
        });
        let (meta, describe, layout, numbers) = sender.send(&data, json!({}));
        let strings: Vec<String> = serde_json::from_str::<serde_json::Value>(&meta).unwrap()["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            strings,
            [
                "A",
                "Time",
                "Value",
                "__name__",
                "statescope_state",
                "machine",
                "m1",
                "m2",
                "B"
            ]
        );
        let (input, changes) = store.update(&meta, &describe, &layout, &numbers).unwrap();
        assert_eq!(changes.new_frames, 3);
        assert_eq!(seen(&input), from_scratch(&data));
        let field = |f: usize| &input.frames[f].fields[1];
        assert!(
            Arc::ptr_eq(&field(0).labels, &field(2).labels),
            "m1's label set, shared"
        );
        assert!(!Arc::ptr_eq(&field(0).labels, &field(1).labels));
        assert!(
            Arc::ptr_eq(&field(0).config, &field(1).config),
            "one config for every value field"
        );
        assert_eq!(input.frames[0].fields[0].config.interval, Some(15000.0));
        // A new machine later names the strings sent before: only its name crosses.
        let more = window(&["m1", "m2", "m3"], 0, 10, &HISTORY);
        let (meta, describe, layout, numbers) = sender.send(&more, json!({}));
        assert!(meta.contains(r#""strings":["m3"]"#), "{meta}");
        let (input, changes) = store.update(&meta, &describe, &layout, &numbers).unwrap();
        assert_eq!(changes.new_frames, 1);
        assert_eq!(seen(&input), from_scratch(&more));
    }

    #[test]
    fn a_reset_starts_the_tables_over_and_keeps_the_frames() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1"], 0, 10, &HISTORY);
        update(&mut store, &mut sender, &data);
        // The sender starts its tables over: string 0 is now "B".
        let meta = json!({"reset": true, "strings": ["B", "Time"], "configs": [{}]}).to_string();
        let describe = [7, 0, NONE, 1, 1, 0, 0, 0];
        let (input, _) = store
            .update(&meta, &describe, &[1, UNCHANGED, UNCHANGED, 7, 3], &[1.0, 2.0, 3.0])
            .unwrap();
        assert_eq!(seen(&input)[..1], from_scratch(&data)[..], "frame 1 is kept whole");
        assert_eq!(input.frames[1].ref_id.as_deref(), Some("B"));
        assert_eq!(&*input.frames[1].fields[0].name, "Time");
        // A string index past the table after the store was emptied is stale, not malformed.
        let mut empty = FrameStore::default();
        let meta = json!({"configs": [{}]}).to_string();
        assert_eq!(
            empty.update(&meta, &describe, &[7, 1], &[1.0]).unwrap_err(),
            UpdateError::Stale
        );
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

    /// A store and a sender of whole columns: each update's numbers in a buffer of its own.
    fn whole_columns() -> (FrameStore, Sender) {
        let sender = Sender {
            whole: true,
            ..Sender::default()
        };
        (FrameStore::default(), sender)
    }

    #[test]
    fn refreshes_reuse_the_buffer_of_an_input_the_page_dropped() {
        let (mut store, mut sender) = whole_columns();
        let (first, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 0, 10, &HISTORY));
        let first_start = buffer(&first, 0, 0);
        drop(first);
        let (second, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 1, 11, &HISTORY));
        assert_ne!(
            buffer(&second, 0, 0),
            first_start,
            "the first buffer is the kept frames' until now"
        );
        let next = window(&["m1", "m2"], 2, 12, &HISTORY);
        let (third, _) = update(&mut store, &mut sender, &next);
        assert_eq!(buffer(&third, 0, 0), first_start, "the first update's buffer again");
        assert_eq!(seen(&third), from_scratch(&next));
        let held = buffer(&second, 0, 0);
        let (fourth, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 3, 13, &HISTORY));
        assert_ne!(buffer(&fourth, 0, 0), held, "the page still holds the second input");
        assert_eq!(seen(&second), from_scratch(&window(&["m1", "m2"], 1, 11, &HISTORY)));
    }

    #[test]
    fn a_small_update_does_not_take_a_much_larger_free_buffer() {
        // A column that never moves again would pin all of it.
        let (mut store, mut sender) = whole_columns();
        let many: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (big, _) = update(&mut store, &mut sender, &window(&many, 0, 10, &HISTORY));
        let big_start = buffer(&big, 0, 0);
        drop(big);
        let (small, _) = update(&mut store, &mut sender, &window(&["m1"], 1, 11, &HISTORY));
        drop(small);
        let next = window(&["m1"], 2, 12, &HISTORY);
        let (third, _) = update(&mut store, &mut sender, &next);
        assert_ne!(buffer(&third, 0, 0), big_start, "a buffer for 500 machines held 1");
        assert_eq!(seen(&third), from_scratch(&next));
    }

    #[test]
    fn a_slide_appends_to_the_kept_columns_and_copies_them_only_when_out_of_room() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let machines = ["m1", "m2"];
        let start =
            |input: &PanelInput, field: usize| input.frames[1].fields[field].values.as_numbers().unwrap().as_ptr();
        let (first, _) = update(&mut store, &mut sender, &window(&machines, 0, 10, &HISTORY));
        let mut inputs = vec![first];
        // Ten samples leave room for six more: each slide by one is
        // a window one sample further into the same buffer.
        for from in 1..=room(10) {
            let (next, changes) = update(&mut store, &mut sender, &window(&machines, from, from + 10, &HISTORY));
            assert_eq!((changes.slid, changes.sent), (3, 1), "slid to {from}");
            assert_eq!(buffer(&next, 1, 1), buffer(&inputs[0], 1, 1), "slid to {from}: no copy");
            assert_eq!(
                start(&next, 1),
                start(&inputs[0], 1).wrapping_add(from),
                "slid to {from}"
            );
            inputs.push(next);
        }
        let from = room(10) + 1;
        let (next, changes) = update(&mut store, &mut sender, &window(&machines, from, from + 10, &HISTORY));
        assert_eq!(changes.slid, 3, "still sent as a slide");
        assert_ne!(
            buffer(&next, 1, 1),
            buffer(&inputs[0], 1, 1),
            "out of room: written anew"
        );
        assert_eq!(seen(&next), from_scratch(&window(&machines, from, from + 10, &HISTORY)));
        // What the page and the view still hold of every update before is
        // undisturbed by the samples appended after it.
        for (from, input) in inputs.iter().enumerate() {
            assert_eq!(
                seen(input),
                from_scratch(&window(&machines, from, from + 10, &HISTORY)),
                "update {from}"
            );
        }
    }

    #[test]
    fn unchanged_columns_stay_where_they_are() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1", "m2"], 0, 10, &HISTORY);
        let (first, _) = update(&mut store, &mut sender, &data);
        let meta = json!({"newFrames": []}).to_string();
        // m1 and m2 were sent as frames 1 and 2.
        let layout = [1, UNCHANGED, UNCHANGED, 2, UNCHANGED, UNCHANGED];
        let (input, changes) = store.update(&meta, &[], &layout, &[]).unwrap();
        assert_eq!(seen(&input), from_scratch(&data));
        assert_eq!((changes.kept, changes.sent), (4, 0));
        assert_eq!(
            input.frames[0].fields[1].values.id(),
            first.frames[0].fields[1].values.id(),
            "not copied"
        );
        drop(first);
        assert_eq!(seen(&input), from_scratch(&data), "outlives the input that brought it");
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
        let (meta, describe, layout, numbers) = sender.send(&data, json!({}));
        store.update(&meta, &describe, &layout, &numbers).unwrap();
        let (meta, describe, layout, numbers) = sender.send(&data, json!({"search": "m1", "view": "machines"}));
        assert!(numbers.is_empty(), "the same samples: slid by none, nothing new");
        let (input, changes) = store.update(&meta, &describe, &layout, &numbers).unwrap();
        assert_eq!(input.options.search, "m1");
        assert_eq!((changes.new_frames, changes.sent, changes.slid), (0, 0, 2));
        assert_eq!(seen(&input), from_scratch(&data));
    }

    #[test]
    fn a_slid_column_names_the_column_it_slid_from() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let (first, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 0, 10, &HISTORY));
        let ids = |input: &PanelInput| -> Vec<_> {
            input
                .frames
                .iter()
                .flat_map(|f| f.fields.iter().map(|x| x.values.id()))
                .collect()
        };
        assert!(
            first.frames.iter().flat_map(|f| &f.fields).all(|f| f.slid.is_none()),
            "sent whole"
        );
        let (next, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 2, 13, &HISTORY));
        let slid: Vec<_> = next
            .frames
            .iter()
            .flat_map(|f| f.fields.iter().map(|x| x.slid))
            .collect();
        let expected: Vec<_> = ids(&first)
            .into_iter()
            .map(|from| {
                Some(Slid {
                    from: from.unwrap(),
                    k: 2,
                    m: 3,
                })
            })
            .collect();
        // m2's times repeat m1's: slid alike, since m2 held the same times before.
        assert_eq!(slid, expected);
        // A late correction in the values: they go whole, the same times slid by none.
        let mut history = HISTORY.to_vec();
        history[5] = 0.5;
        let (last, _) = update(&mut store, &mut sender, &window(&["m1", "m2"], 2, 13, &history));
        assert_eq!(last.frames[0].fields[1].slid, None);
        assert_eq!(last.frames[0].fields[0].slid.map(|s| (s.k, s.m)), Some((0, 0)));
    }

    #[test]
    fn unchanged_columns_need_no_numbers() {
        let (mut store, mut sender) = (FrameStore::default(), Sender::default());
        let data = window(&["m1"], 0, 10, &HISTORY);
        let (meta, describe, layout, numbers) = sender.send(&data, json!({}));
        store.update(&meta, &describe, &layout, &numbers).unwrap();
        let meta = json!({"newFrames": []}).to_string();
        let id = layout[0];
        let (input, changes) = store.update(&meta, &[], &[id, UNCHANGED, UNCHANGED], &[]).unwrap();
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
            store.update(&meta, &[], &[999, 1, 1], &[1.0, 2.0]).unwrap_err(),
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
        let meta = json!({"strings": ["Time", "Value", "state"], "configs": [{}],
            "cells": [[1, 1, ["1", null]], [1, 2, ["open", "closed"]]]})
        .to_string();
        let describe = [1, NONE, NONE, 3, 0, 0, 0, 0, 1, 1, 0, 0, 2, 2, 0, 0];
        let (input, _) = store.update(&meta, &describe, &[1, 2], &[1000.0, f64::NAN]).unwrap();
        let cells = |i: usize| input.frames[0].fields[i].values.cells().collect::<Vec<_>>();
        assert_eq!(cells(0), [Cell::Number(1000.0), Cell::Null], "NaN is a null");
        assert_eq!(cells(1), [Cell::Text("1"), Cell::Null]);
        assert_eq!(cells(2), [Cell::Text("open"), Cell::Text("closed")]);
        assert!(store.is_empty(), "a frame with cells is described again next time");
    }

    #[test]
    fn malformed_updates_say_what_is_wrong_in_one_line() {
        let meta = json!({"strings": ["Time", "Value"], "configs": [{}]}).to_string();
        let describe = [1, NONE, NONE, 2, 0, 0, 0, 0, 1, 1, 0, 0];
        let err =
            |layout: &[u32], numbers: &[f64]| store_err(&mut FrameStore::default(), &meta, &describe, layout, numbers);
        assert!(err(&[1, 2, 2], &[1.0, 2.0, 3.0]).contains("field \"Value\" points past its numbers"));
        assert!(err(&[1, 2], &[1.0, 2.0]).contains("frame 1 ends early"));
        assert!(err(&[1, 1, 1], &[1.0, 2.0, 3.0]).contains("numbers left over"));
        assert!(err(&[1, UNCHANGED, 1], &[1.0]).contains("new field \"Time\" has no samples"));
        assert!(err(&[1, SLID, 0, 1, 1], &[1.0, 2.0]).contains("new field \"Time\" has no samples"));
        assert!(err(&[], &[]).contains("frame 1 is described but not in the layout"));
        let short = store_err(
            &mut FrameStore::default(),
            &meta,
            &describe[..9],
            &[1, 1, 1],
            &[1.0, 2.0],
        );
        assert!(short.contains("the description of frame 1 ends early"), "{short}");
        // Kept frames slid past their samples.
        let mut store = FrameStore::default();
        store.update(&meta, &describe, &[1, 1, 1], &[1.0, 2.0]).unwrap();
        let e = store_err(&mut store, "{}", &[], &[1, SLID, 2, 0, UNCHANGED], &[]);
        assert!(e.contains("field \"Time\" slid past its samples"), "{e}");
        let reset = json!({"reset": true, "strings": ["Time"], "configs": [{}]}).to_string();
        let e = store_err(&mut FrameStore::default(), &reset, &describe, &[1, 1, 1], &[1.0, 2.0]);
        assert!(e.contains("frame 1 names a string or config not sent"), "{e}");
        let e = store_err(&mut store, "{\"strings\": 3}", &[], &[], &[]);
        assert!(
            e.starts_with("The panel could not read its input:") && !e.contains('\n'),
            "{e}"
        );
    }

    fn store_err(store: &mut FrameStore, meta: &str, describe: &[u32], layout: &[u32], numbers: &[f64]) -> String {
        store.update(meta, describe, layout, numbers).unwrap_err().to_string()
    }

    proptest! {
        /// Whatever a run of refreshes sends (ranges that slide by a few
        /// steps, jump or shrink, series that come and go, samples corrected
        /// late), the kept frames equal a decode from scratch of the last
        /// refresh.
        #[test]
        fn incremental_equals_from_scratch(
            steps in prop::collection::vec(
                (0usize..4, 0usize..30, 0usize..12, 0usize..4, prop::option::of((0usize..40, 0u8..6))),
                1..12,
            ),
            // Halves: JSON text (the from-scratch side) holds them exactly.
            history in prop::collection::vec(prop_oneof![Just(f64::NAN), (0u8..6).prop_map(|x| f64::from(x) / 2.0)], 1..20),
            whole in prop::bool::ANY,
        ) {
            let all = ["m1", "m2", "m3", "m4"];
            let mut history = history;
            let (mut store, mut sender) = (FrameStore::default(), Sender { whole, ..Sender::default() });
            let (mut from, mut last) = (0, None);
            for (drop_machines, jump, len, slide, correct) in steps {
                from = if slide > 0 { from + slide } else { jump };
                if let Some((at, value)) = correct {
                    let n = history.len();
                    history[at % n] = f64::from(value) / 2.0;
                }
                let machines = &all[drop_machines..];
                let data = window(machines, from, from + len, &history);
                let (input, changes) = update(&mut store, &mut sender, &data);
                prop_assert_eq!(seen(&input), from_scratch(&data));
                prop_assert_eq!(store.len(), machines.len());
                let columns = changes.kept + changes.sent + changes.slid;
                prop_assert_eq!(columns, 2 * machines.len(), "a time and a value column per frame");
                if !whole && slide > 0 && slide < len && last.is_some_and(|(d, l)| d <= drop_machines && l == len) {
                    prop_assert!(changes.slid >= 1, "the first machine's times slid");
                }
                last = Some((drop_machines, len));
            }
        }
    }
}
