//! What `frames.ts` hands to Rust: Grafana's data frames, the panel options,
//! the time range and the theme (camelCase keys; how they travel between
//! refreshes is `store.rs`'s).
//!
//! Decoding is lenient on purpose: a panel must show a one-line message, not
//! break, when a datasource sends something unusual. Unknown keys are ignored,
//! a value mapping or data link that does not parse is dropped (not the whole
//! input), and sample values accept numbers, strings, booleans and null.

use std::cell::UnsafeCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::options::PanelOptions;

/// Everything `build_view` needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PanelInput {
    /// Grafana's `data.series`.
    pub frames: Vec<Frame>,
    pub options: PanelOptions,
    pub time_range: TimeRange,
    /// Panel size in CSS pixels.
    pub width: f64,
    pub height: f64,
    pub theme: Theme,
    /// Wall clock, epoch milliseconds.
    pub now: f64,
}

impl PanelInput {
    /// Decodes a whole input from one JSON document, samples as JSON cells:
    /// the from-scratch form the tests and fixtures use (the panel itself
    /// gets updates of the frames it keeps, see `store.rs`). The error
    /// message is one line, fit for the panel's message area.
    pub fn from_json(json: &str) -> Result<PanelInput, String> {
        serde_json::from_str(json).map_err(|e| format!("The panel could not read its input: {e}"))
    }
}

/// The dashboard's time range, epoch milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: f64,
    pub to: f64,
}

impl TimeRange {
    /// Whether `t` lies in the range, both ends included.
    pub fn contains(&self, t: f64) -> bool {
        self.from <= t && t <= self.to
    }
}

/// The Grafana theme, reduced to what the panel draws with.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Theme {
    pub is_dark: bool,
    /// Grafana colour name (`"green"`, `"semi-dark-red"`) or role (`"text"`,
    /// `"background"`, `"border"`, `"primary"`, severity names `"ok"`, `"info"`,
    /// `"warning"`, `"critical"`) to a CSS colour.
    pub palette: HashMap<String, String>,
}

/// One Grafana data frame.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Frame {
    /// Shared, as the field names: the store hands out its kept frames'
    /// copies every refresh, and a string each was a third of that.
    pub ref_id: Option<Arc<str>>,
    pub name: Option<Arc<str>>,
    pub fields: Vec<Field>,
}

/// One column of a frame.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Field {
    pub name: Arc<str>,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Grafana sends `null` for a field without labels. Shared: the frames
    /// kept between refreshes (`store.rs`) hand out copies every refresh.
    #[serde(deserialize_with = "null_as_default")]
    pub labels: Arc<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub config: Arc<FieldConfig>,
    pub values: Values,
    /// The `__name__` label's value, when whoever made the field read it
    /// already: the store does, once per description (looking it up in every
    /// field's labels on every build was a tenth of a 10k-machine view).
    #[serde(skip)]
    pub metric: MetricName,
    /// How `values` came from the column the store held for this field
    /// before (`store.rs`); `None` when it did not (sent whole, described
    /// anew, or not from the store).
    #[serde(skip)]
    pub slid: Option<Slid>,
}

/// Where a run of numbers is: its buffer's address, start and length. It
/// names the samples for as long as someone holds the buffer (no live
/// buffer shares its address, and a sample a column covers is never
/// written again, see [`Samples`]).
pub type ColumnId = (usize, usize, usize);

/// A column that is the one before it (`from`) without its first `k`
/// samples, then `m` new ones: what a refresh whose range slid brings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slid {
    pub from: ColumnId,
    pub k: usize,
    pub m: usize,
}

/// A field's metric name as its maker found it (see [`Field::metric_name`]).
#[derive(Clone, Debug, Default)]
pub enum MetricName {
    /// Not looked up: read from the labels when asked.
    #[default]
    Unread,
    Read(Option<Arc<str>>),
}

impl Field {
    /// The value of the `__name__` label, where Grafana's Prometheus
    /// datasource keeps the metric name.
    pub fn metric_name(&self) -> Option<&str> {
        match &self.metric {
            MetricName::Read(name) => name.as_deref(),
            MetricName::Unread => self.labels.get(NAME_LABEL).map(String::as_str),
        }
    }
}

/// The label Grafana's Prometheus datasource keeps the metric name in.
pub const NAME_LABEL: &str = "__name__";

/// Grafana's `FieldType`; the types the panel has no use for are `Other`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Time,
    Number,
    String,
    Boolean,
    #[default]
    #[serde(other)]
    Other,
}

impl FieldType {
    /// The type from its number in a frame description (`store.rs`; the
    /// order of `frames.ts`'s `TYPES`): time, number, string, boolean, and
    /// anything else is `Other`.
    pub fn from_code(code: u32) -> FieldType {
        match code {
            0 => FieldType::Time,
            1 => FieldType::Number,
            2 => FieldType::String,
            3 => FieldType::Boolean,
            _ => FieldType::Other,
        }
    }
}

/// A field's samples: cells decoded from JSON, or a run of numbers sent as a
/// `Float64Array` (NaN for a null).
#[derive(Clone, Debug)]
pub enum Values {
    Cells(Vec<Value>),
    Numbers(Column),
}

impl Default for Values {
    fn default() -> Values {
        Values::Cells(Vec::new())
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
        Vec::deserialize(d).map(Values::Cells)
    }
}

impl From<Vec<Value>> for Values {
    fn from(cells: Vec<Value>) -> Values {
        Values::Cells(cells)
    }
}

impl Values {
    /// A run of numbers in a buffer of its own.
    pub fn numbers(numbers: Vec<f64>) -> Values {
        let len = numbers.len();
        Values::numbers_in(numbers, 0, len)
    }

    /// The run `at..at + len` of `all` (panics past its end).
    pub fn numbers_in(all: Vec<f64>, at: usize, len: usize) -> Values {
        assert!(
            at.checked_add(len).is_some_and(|end| end <= all.len()),
            "a run within its buffer"
        );
        Values::Numbers(Column {
            samples: Arc::new(Samples::from(all)),
            at,
            len,
        })
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Cells(cells) => cells.len(),
            Values::Numbers(column) => column.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `i`, if there is one.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Cell<'_>> {
        match self {
            Values::Cells(cells) => cells.get(i).map(Value::cell),
            Values::Numbers(column) => column
                .get(i)
                .map(|n| if n.is_nan() { Cell::Null } else { Cell::Number(n) }),
        }
    }

    /// Cell `i` as a finite number (see [`Cell::as_f64`]), without building
    /// the cell for the common case of numbers.
    #[inline]
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            Values::Numbers(column) => column.get(i).filter(|n| n.is_finite()),
            Values::Cells(_) => self.get(i)?.as_f64(),
        }
    }

    /// The numbers, when the field came as a run of numbers.
    pub fn as_numbers(&self) -> Option<&[f64]> {
        match self {
            Values::Numbers(column) => Some(column.as_slice()),
            Values::Cells(_) => None,
        }
    }

    /// Where the numbers are (see [`ColumnId`]).
    pub fn id(&self) -> Option<ColumnId> {
        match self {
            Values::Numbers(column) => Some(column.id()),
            Values::Cells(_) => None,
        }
    }

    /// Every cell, in order.
    pub fn cells(&self) -> impl Iterator<Item = Cell<'_>> {
        (0..self.len()).map(|i| self.get(i).unwrap_or(Cell::Null))
    }
}

/// A buffer of samples that only grows: each sample is written once, before
/// any [`Column`] covers it, and never again. So the store can append a
/// slid column's new samples right after the ones it keeps, in memory the
/// page's last input and the view's cache still read, instead of copying
/// the kept ones (see `store.rs`).
pub struct Samples {
    /// Uninitialised until written: a sample is read only once a column
    /// covers it, and a column covers only samples written.
    data: Box<[UnsafeCell<MaybeUninit<f64>>]>,
}

// SAFETY: a sample is written only through the one `Region` that holds its
// index, while its index is past every `Column` made so far in that region
// (`Region::push`); a `Column` reads only samples written before it was
// made. Readers and the writer never touch the same sample concurrently.
unsafe impl Sync for Samples {}

impl Samples {
    /// A buffer of `len` samples, none of them written yet (not even
    /// zeroed: that was a tenth of a first render's decode).
    pub(crate) fn uninit(len: usize) -> Samples {
        let data = Box::into_raw(Box::<[f64]>::new_uninit_slice(len)) as *mut [UnsafeCell<MaybeUninit<f64>>];
        // SAFETY: `UnsafeCell` is repr(transparent).
        Samples {
            data: unsafe { Box::from_raw(data) },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// The samples' first address, for writing.
    fn base(&self) -> *mut f64 {
        UnsafeCell::raw_get(self.data.as_ptr()).cast()
    }
}

impl From<Vec<f64>> for Samples {
    fn from(numbers: Vec<f64>) -> Samples {
        let data = Box::into_raw(numbers.into_boxed_slice()) as *mut [UnsafeCell<MaybeUninit<f64>>];
        // SAFETY: `UnsafeCell` and `MaybeUninit` have the layout of what
        // they hold (repr(transparent)); every sample is written.
        Samples {
            data: unsafe { Box::from_raw(data) },
        }
    }
}

impl fmt::Debug for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Samples({})", self.data.len())
    }
}

/// A run of samples in a [`Samples`] buffer: what a number field holds.
#[derive(Clone, Debug)]
pub struct Column {
    samples: Arc<Samples>,
    at: usize,
    len: usize,
}

impl Column {
    #[inline]
    pub fn as_slice(&self) -> &[f64] {
        // SAFETY: `at..at + len` lies in the buffer (checked where a column
        // is made) and was written before; nothing writes it again.
        unsafe { std::slice::from_raw_parts(self.samples.base().add(self.at), self.len) }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<f64> {
        self.as_slice().get(i).copied()
    }

    /// See [`ColumnId`].
    pub fn id(&self) -> ColumnId {
        (Arc::as_ptr(&self.samples) as usize, self.at, self.len)
    }

    /// The buffer it lies in, by address.
    pub fn buffer(&self) -> *const Samples {
        Arc::as_ptr(&self.samples)
    }
}

/// The part of a [`Samples`] buffer one kept column may grow into: written
/// up to `filled`, room up to `end`. Only the store holds regions, one per
/// kept column it wrote, never two over the same samples.
#[derive(Debug)]
pub(crate) struct Region {
    samples: Arc<Samples>,
    start: usize,
    filled: usize,
    end: usize,
}

impl Region {
    /// `samples` cut into regions of the given sizes, in order. It must be
    /// a buffer no column or region holds: one just made, or one whose
    /// `Arc` is unique.
    pub(crate) fn carve(samples: &mut Arc<Samples>, sizes: &[usize]) -> Vec<Region> {
        // The caller checked its total against overflow, so this sum is too.
        let fits = sizes.iter().sum::<usize>() <= samples.len();
        assert!(fits && Arc::get_mut(samples).is_some(), "an unread buffer");
        let mut at = 0;
        sizes
            .iter()
            .map(|&size| {
                let start = at;
                at += size;
                Region {
                    samples: Arc::clone(samples),
                    start,
                    filled: start,
                    end: at,
                }
            })
            .collect()
    }

    /// Where its samples start in the buffer.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Appends `numbers` when they fit (else false, nothing written).
    pub(crate) fn push(&mut self, numbers: &[f64]) -> bool {
        if self.end - self.filled < numbers.len() {
            return false;
        }
        // SAFETY: `filled..end` is this region's alone and no column covers
        // it yet (columns end at most at `filled`); it lies in the buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(numbers.as_ptr(), self.samples.base().add(self.filled), numbers.len());
        }
        self.filled += numbers.len();
        true
    }

    /// The samples written from index `at` of the buffer on.
    pub(crate) fn column_from(&self, at: usize) -> Column {
        assert!((self.start..=self.filled).contains(&at), "written samples");
        Column {
            samples: Arc::clone(&self.samples),
            at,
            len: self.filled - at,
        }
    }

    /// Where `column` starts in this region, when it ends where the
    /// region's samples end: the column new samples may be appended to.
    pub(crate) fn tail_of(&self, column: &Column) -> Option<usize> {
        (Arc::ptr_eq(&self.samples, &column.samples)
            && column.at >= self.start
            && column.at + column.len == self.filled)
            .then_some(column.at)
    }
}

/// One cell of a field as decoded from JSON. Grafana's `values` arrays hold
/// numbers, strings, booleans and nulls (NaN arrives as null through JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    #[default]
    Null,
    Number(f64),
    Text(String),
    Bool(bool),
}

impl Value {
    pub fn cell(&self) -> Cell<'_> {
        match self {
            Value::Null => Cell::Null,
            Value::Number(n) => Cell::Number(*n),
            Value::Text(t) => Cell::Text(t),
            Value::Bool(b) => Cell::Bool(*b),
        }
    }
}

/// One cell of a field, borrowed from wherever the field keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Cell<'a> {
    #[default]
    Null,
    Number(f64),
    Text(&'a str),
    Bool(bool),
}

impl Cell<'_> {
    /// The cell as a finite number: numbers, booleans as 0/1, and numeric
    /// strings (Prometheus' own sample format). NaN and ±Inf are `None`.
    pub fn as_f64(&self) -> Option<f64> {
        let n = match self {
            Cell::Number(n) => *n,
            Cell::Bool(b) => f64::from(u8::from(*b)),
            Cell::Text(s) => s.trim().parse().ok()?,
            Cell::Null => return None,
        };
        n.is_finite().then_some(n)
    }
}

// A hand-written visitor instead of `#[serde(untagged)]`: untagged enums
// buffer every value, and a panel may receive millions of samples.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string, boolean or null")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Number(v as f64))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            // Objects and arrays (other field types) carry nothing the panel uses.
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Value::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Value::Null)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// The parts of Grafana's `FieldConfig` the panel uses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldConfig {
    pub display_name: Option<String>,
    /// Set by the Prometheus datasource from the legend format.
    pub display_name_from_ds: Option<String>,
    pub unit: Option<String>,
    #[serde(deserialize_with = "lenient_vec")]
    pub mappings: Vec<ValueMapping>,
    #[serde(deserialize_with = "lenient_option")]
    pub color: Option<FieldColor>,
    #[serde(deserialize_with = "lenient_vec")]
    pub links: Vec<DataLink>,
    /// On time fields: the query step in ms (the Prometheus datasource sets it).
    #[serde(deserialize_with = "lenient_option")]
    pub interval: Option<f64>,
}

/// `fieldConfig.color`: `{ "mode": "fixed", "fixedColor": "red" }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldColor {
    pub mode: String,
    pub fixed_color: Option<String>,
}

/// A Grafana data link.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataLink {
    pub title: String,
    pub url: String,
    pub target_blank: bool,
}

/// Grafana's value mappings, in their saved JSON shapes. Types the panel does
/// not understand (e.g. `regex`) are kept as `Unsupported` and skipped.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ValueMapping {
    /// `{"type":"value","options":{"0":{"text":"closed","color":"green","index":0}}}`
    Value { options: BTreeMap<String, MappingResult> },
    /// `{"type":"range","options":{"from":0,"to":1,"result":{"text":"ok"}}}`
    Range { options: RangeOptions },
    /// `{"type":"special","options":{"match":"null","result":{"text":"unknown"}}}`
    Special { options: SpecialOptions },
    #[serde(other)]
    Unsupported,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MappingResult {
    pub text: Option<String>,
    pub color: Option<String>,
    pub index: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RangeOptions {
    pub from: Option<f64>,
    pub to: Option<f64>,
    pub result: MappingResult,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpecialOptions {
    #[serde(rename = "match")]
    pub match_: SpecialMatch,
    pub result: MappingResult,
}

/// What a `special` mapping matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecialMatch {
    #[serde(alias = "null")]
    Null,
    #[serde(alias = "nan")]
    NaN,
    #[serde(rename = "null+nan")]
    NullAndNaN,
    True,
    False,
    Empty,
    #[default]
    #[serde(other)]
    Other,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list whose malformed elements are dropped instead of failing the input.
fn lenient_vec<'de, D: Deserializer<'de>, T: de::DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let raw = Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect())
}

fn lenient_option<'de, D: Deserializer<'de>, T: de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let raw = Option::<serde_json::Value>::deserialize(d)?;
    Ok(raw.and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_prometheus_frame_as_grafana_sends_it() {
        let json = r#"{
            "refId": "A", "name": "statescope_state",
            "fields": [
              {"name": "Time", "type": "time", "config": {"interval": 15000}, "values": [1700000000000, 1700000015000]},
              {"name": "Value", "type": "number", "labels": {"__name__": "statescope_state", "state": "open"},
               "config": {"displayNameFromDS": "open", "mappings": [
                  {"type": "value", "options": {"1": {"text": "Open", "color": "red", "index": 0}}},
                  {"type": "regex", "options": {"pattern": ".*"}},
                  {"type": "range", "options": {"from": "not a number"}}
               ], "links": [{"title": "Runbook", "url": "https://x/${__field.labels.state}"}]},
               "values": [1, null, "NaN"]}
            ]
        }"#;
        let frame: Frame = serde_json::from_str(json).unwrap();
        let value = &frame.fields[1];
        assert_eq!(frame.fields[0].field_type, FieldType::Time);
        assert_eq!(value.metric_name(), Some("statescope_state"));
        // The regex mapping is kept as unsupported; the broken range mapping is dropped.
        assert_eq!(value.config.mappings.len(), 2);
        assert!(matches!(value.config.mappings[1], ValueMapping::Unsupported));
        assert_eq!(value.config.links[0].title, "Runbook");
        assert_eq!(value.values.number(0), Some(1.0));
        assert_eq!(value.values.number(1), None);
        assert_eq!(value.values.number(2), None, "NaN is not a usable sample");
        assert_eq!(value.values.get(2), Some(Cell::Text("NaN")));
    }

    #[test]
    fn null_labels_and_unknown_field_types_are_accepted() {
        let json = r#"{"name":"x","type":"enum","labels":null,"config":null,"values":[{"a":1},[1],true,"2"]}"#;
        let field: Field = serde_json::from_str(json).unwrap();
        assert_eq!(field.field_type, FieldType::Other);
        assert!(field.labels.is_empty());
        let got: Vec<_> = field.values.cells().map(|c| c.as_f64()).collect();
        assert_eq!(got, [None, None, Some(1.0), Some(2.0)]);
    }

    #[test]
    fn bad_json_gives_one_line() {
        let err = PanelInput::from_json("{\"frames\": 3}").unwrap_err();
        assert!(err.starts_with("The panel could not read its input:"), "{err}");
        assert!(!err.contains('\n'));
    }
}
