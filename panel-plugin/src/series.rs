//! Frames to series: one labelled sequence of (time, value) per metric series,
//! whatever frame layout the datasource used.
//!
//! Grafana hands Prometheus data in three layouts, all handled here:
//! - one frame per series: `[Time, Value{labels}]` (range queries);
//! - wide frames: one time field and many value fields, each with labels;
//! - table frames (format "table", instant queries): `[Time, label columns…, Value]`,
//!   one row per sample, where the rows of one series share label values.
//!
//! Series borrow from the frames; a table series keeps only its row numbers.

use std::collections::{BTreeMap, HashMap};

pub use crate::input::NAME_LABEL;
use crate::input::{Cell, Field, FieldType, Frame, Slid, Values};

/// One series: labels and samples.
#[derive(Clone, Debug)]
pub struct Series<'a> {
    pub ref_id: Option<&'a str>,
    /// Metric name: the `__name__` label, else a metric-like frame or field name.
    pub metric: Option<&'a str>,
    /// Labels without `__name__`, sorted by name.
    pub labels: Labels<'a>,
    /// The value field: its config holds mappings, colours and links.
    pub field: &'a Field,
    /// The step between samples (ms) when the datasource said so.
    pub interval: Option<f64>,
    times: Option<&'a Values>,
    values: &'a Values,
    /// How the time and value columns came from the store's before (see [`Slid`]).
    slid: [Option<Slid>; 2],
    rows: Option<Vec<u32>>,
    /// Time of every sample when the frame has no time field (instant tables).
    fallback_time: f64,
}

impl<'a> Series<'a> {
    pub fn len(&self) -> usize {
        match &self.rows {
            Some(rows) => rows.len(),
            None => match self.times {
                Some(t) => t.len().min(self.values.len()),
                None => self.values.len(),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i`: its time (`None` when not a finite number) and value.
    #[inline]
    pub fn point(&self, i: usize) -> (Option<f64>, Cell<'a>) {
        let row = match &self.rows {
            Some(rows) => rows[i] as usize,
            None => i,
        };
        let time = match self.times {
            Some(t) => t.number(row),
            None => Some(self.fallback_time),
        };
        (time, self.values.get(row).unwrap_or(Cell::Null))
    }

    /// Sample `i`'s value as a finite number (see [`Cell::as_f64`]).
    #[inline]
    pub fn number(&self, i: usize) -> Option<f64> {
        let row = match &self.rows {
            Some(rows) => rows[i] as usize,
            None => i,
        };
        self.values.number(row)
    }

    /// Times and values as plain slices, sample for sample, when both came
    /// as runs of numbers (as range queries give them): what a hot loop reads.
    pub fn number_slices(&self) -> Option<(&'a [f64], &'a [f64])> {
        if self.rows.is_some() {
            return None;
        }
        let times = self.times?.as_numbers()?;
        let values = self.values.as_numbers()?;
        let n = times.len().min(values.len());
        Some((&times[..n], &values[..n]))
    }

    /// The time and value columns [`Series::number_slices`] reads, to keep
    /// (they share the input's samples).
    pub fn columns(&self) -> Option<(&'a Values, &'a Values)> {
        self.rows.is_none().then_some((self.times?, self.values))
    }

    /// How the time and value columns came from those the store held
    /// before, when both did.
    pub fn slid(&self) -> Option<(Slid, Slid)> {
        self.slid[0].zip(self.slid[1])
    }

    /// Whether everything but the samples' numbers comes from the field's
    /// labels and config: no text cells (state names as values) and no table
    /// rows (labels read from cells).
    pub fn described_by_labels(&self) -> bool {
        self.rows.is_none() && self.values.as_numbers().is_some()
    }

    pub fn label(&self, name: &str) -> Option<&'a str> {
        self.labels.get(name)
    }

    /// `metric{a="1", b="2"}` for messages, shortened when long.
    pub fn describe(&self) -> String {
        let mut out = self.metric.unwrap_or(&self.field.name).to_owned();
        if !self.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in self.labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                for part in [sep, k, "=\"", v, "\""] {
                    out.push_str(part);
                }
            }
            out.push('}');
        }
        if out.chars().count() > 80 {
            out = out.chars().take(77).collect::<String>() + "…";
        }
        out
    }

    /// The last finite value.
    pub fn last_number(&self) -> Option<f64> {
        (0..self.len()).rev().find_map(|i| self.point(i).1.as_f64())
    }
}

/// A series' labels but `__name__`, sorted by name.
#[derive(Clone, Debug)]
pub enum Labels<'a> {
    /// The value field's own: most series. Borrowed rather than copied into
    /// a list, as every build (each refresh) collects every series again:
    /// those lists were a fifth of a refresh's view.
    Field(&'a BTreeMap<String, String>),
    /// A table's label columns merged with the value field's labels.
    Rows(Vec<(&'a str, &'a str)>),
}

impl<'a> Labels<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match self {
            // A scan, lengths first: a series has a handful of labels, most
            // of other lengths, so only the one asked for has its text read.
            // The map's search compares texts all the way down, and each
            // text is on the heap apart from the map: a cache miss each
            // when a build reads every series' labels (a tenth of a first
            // build of 10k machines went to those misses).
            Labels::Field(map) => (name != NAME_LABEL)
                .then(|| map.iter().find(|(k, _)| k.len() == name.len() && *k == name))
                .flatten()
                .map(|(_, v)| v.as_str()),
            Labels::Rows(list) => list.binary_search_by(|(k, _)| (*k).cmp(name)).ok().map(|i| list[i].1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn iter(&self) -> LabelsIter<'_, 'a> {
        self.into_iter()
    }
}

impl<'s, 'a> IntoIterator for &'s Labels<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = LabelsIter<'s, 'a>;

    fn into_iter(self) -> LabelsIter<'s, 'a> {
        match self {
            Labels::Field(map) => LabelsIter::Field(map.iter()),
            Labels::Rows(list) => LabelsIter::Rows(list.iter()),
        }
    }
}

/// [`Labels`] one by one, in name order.
pub enum LabelsIter<'s, 'a> {
    Field(std::collections::btree_map::Iter<'a, String, String>),
    Rows(std::slice::Iter<'s, (&'a str, &'a str)>),
}

impl<'a> Iterator for LabelsIter<'_, 'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match self {
            LabelsIter::Field(map) => map
                .find(|(k, _)| *k != NAME_LABEL)
                .map(|(k, v)| (k.as_str(), v.as_str())),
            LabelsIter::Rows(list) => list.next().copied(),
        }
    }
}

/// Every series in the frames, in frame and field order. `fallback_time` is
/// the time given to samples of frames without a time field.
pub fn collect<'a>(frames: &'a [Frame], fallback_time: f64) -> Vec<Series<'a>> {
    let mut out = Vec::with_capacity(frames.len());
    for frame in frames {
        let time = frame.fields.iter().find(|f| f.field_type == FieldType::Time);
        // Iterated, not collected: most frames are one series, and two
        // small allocations per frame were a good part of a build.
        let numbers = || {
            frame
                .fields
                .iter()
                .filter(|f| matches!(f.field_type, FieldType::Number | FieldType::Boolean))
        };
        let strings = || frame.fields.iter().filter(|f| f.field_type == FieldType::String);
        let (has_numbers, has_strings) = (numbers().next().is_some(), strings().next().is_some());
        let new = |field: &'a Field, metric, labels, rows| Series {
            ref_id: frame.ref_id.as_deref(),
            metric,
            labels,
            field,
            interval: time
                .and_then(|t| t.config.interval)
                .filter(|i| i.is_finite() && *i > 0.0),
            times: time.map(|t| &t.values),
            values: &field.values,
            slid: [time.and_then(|t| t.slid), field.slid],
            rows,
            fallback_time,
        };
        if has_numbers && has_strings {
            let (numbers, strings): (Vec<&Field>, Vec<&Field>) = (numbers().collect(), strings().collect());
            table_series(frame, &new, &numbers, &strings, &mut out);
            continue;
        }
        // Wide or one-series frames; a frame with only text fields holds state names as values.
        let value_fields = frame.fields.iter().filter(|f| match f.field_type {
            FieldType::Number | FieldType::Boolean => true,
            FieldType::String => !has_numbers,
            _ => false,
        });
        for field in value_fields {
            let labels = Labels::Field(&field.labels);
            let metric = field
                .metric_name()
                .or_else(|| frame.name.as_deref().and_then(metric_prefix))
                .or_else(|| metric_prefix(&field.name));
            out.push(new(field, metric, labels, None));
        }
    }
    out
}

/// Table layout: rows with equal label columns form one series per value field.
fn table_series<'a>(
    frame: &'a Frame,
    new: &impl Fn(&'a Field, Option<&'a str>, Labels<'a>, Option<Vec<u32>>) -> Series<'a>,
    numbers: &[&'a Field],
    strings: &[&'a Field],
    out: &mut Vec<Series<'a>>,
) {
    let rows = frame.fields.iter().map(|f| f.values.len()).max().unwrap_or(0);
    let cell = |f: &'a Field, row: usize| -> &'a str {
        match f.values.get(row) {
            Some(Cell::Text(s)) => s,
            _ => "",
        }
    };
    let mut index: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut groups: Vec<(Vec<&str>, Vec<u32>)> = Vec::new();
    for row in 0..rows.min(u32::MAX as usize) {
        let key: Vec<&str> = strings.iter().map(|f| cell(f, row)).collect();
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(row as u32);
    }
    for field in numbers {
        for (key, rows) in &groups {
            let mut metric = None;
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(key.len() + field.labels.len());
            for (f, v) in strings.iter().zip(key) {
                if *f.name == *NAME_LABEL {
                    metric = Some(*v).filter(|v| !v.is_empty());
                } else if !v.is_empty() {
                    labels.push((&*f.name, v));
                }
            }
            labels.extend(Labels::Field(&field.labels).iter());
            labels.sort_unstable();
            labels.dedup_by(|a, b| a.0 == b.0);
            let metric = metric
                .or_else(|| field.metric_name())
                .or_else(|| frame.name.as_deref().and_then(metric_prefix));
            out.push(new(field, metric, Labels::Rows(labels), Some(rows.clone())));
        }
    }
}

/// `name` or the `name` of `name{labels}` when it is a Prometheus metric name;
/// Grafana's generic `Value`/`Value #A` field names are not.
fn metric_prefix(text: &str) -> Option<&str> {
    let name = text.split('{').next().unwrap_or("").trim();
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_' | ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    (valid && name != "Value" && name != "Time").then_some(name)
}

/// Sorts timed values by time, keeping the order of equal times. One
/// function per type: every `sort_by` closure is a copy of the sort in the wasm.
pub fn sort_by_time<T>(timed: &mut [(f64, T)]) {
    timed.sort_by(by_time);
}

/// Sorts indices by `cmp`, keeping the order of equal ones: the one sort
/// of `usize` in the wasm, where a sort per call site (its closure) would
/// copy the whole sort each time; the comparison is a dynamic call instead.
pub fn sort_indices(indices: &mut [usize], cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering) {
    indices.sort_by(|&a, &b| cmp(a, b));
}

fn by_time<T>(a: &(f64, T), b: &(f64, T)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<'a, const N: usize> PartialEq<[(&'a str, &'a str); N]> for Labels<'a> {
        fn eq(&self, other: &[(&'a str, &'a str); N]) -> bool {
            self.iter().eq(other.iter().copied())
        }
    }

    fn frames(json: &str) -> Vec<Frame> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn one_frame_per_series_keeps_labels_and_metric_name() {
        let f = frames(
            r#"[{"refId":"A","fields":[
                {"name":"Time","type":"time","config":{"interval":15000},"values":[1000,16000]},
                {"name":"Value","type":"number","labels":{"__name__":"up","job":"api"},"values":[1,0]}]}]"#,
        );
        let s = collect(&f, 0.0);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].metric, Some("up"));
        assert_eq!(s[0].labels, [("job", "api")]);
        assert_eq!(s[0].label(NAME_LABEL), None, "the name is the metric, not a label");
        assert_eq!(s[0].label("job"), Some("api"));
        assert_eq!(s[0].interval, Some(15000.0));
        assert_eq!(s[0].point(1).0, Some(16000.0));
        assert_eq!(s[0].describe(), "up{job=\"api\"}");
    }

    #[test]
    fn wide_frames_give_one_series_per_value_field() {
        let f = frames(
            r#"[{"name":"circuit_breaker_state","fields":[
                {"name":"Time","type":"time","values":[1000,2000,3000]},
                {"name":"a","type":"number","labels":{"provider":"a"},"values":[0,1,2]},
                {"name":"b","type":"number","labels":{"provider":"b"},"values":[0,0]}]}]"#,
        );
        let s = collect(&f, 0.0);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].metric, Some("circuit_breaker_state"));
        assert_eq!(s[1].len(), 2, "mismatched lengths use the shorter column");
    }

    #[test]
    fn table_rows_are_grouped_by_label_columns() {
        let f = frames(
            r#"[{"refId":"A","fields":[
                {"name":"Time","type":"time","values":[1000,1000,2000]},
                {"name":"__name__","type":"string","values":["statescope_state","statescope_state","statescope_state"]},
                {"name":"machine","type":"string","values":["m1","m2","m1"]},
                {"name":"state","type":"string","values":["open","open","open"]},
                {"name":"Value #A","type":"number","values":[1,0,1]}]}]"#,
        );
        let s = collect(&f, 0.0);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].metric, Some("statescope_state"));
        assert_eq!(s[0].labels, [("machine", "m1"), ("state", "open")]);
        assert_eq!(s[0].len(), 2);
        assert_eq!(s[0].point(1), (Some(2000.0), Cell::Number(1.0)));
        assert_eq!(s[1].label("machine"), Some("m2"));
    }

    #[test]
    fn frames_without_time_use_the_fallback_time() {
        let f = frames(r#"[{"fields":[{"name":"state","type":"string","values":["open"]}]}]"#);
        let s = collect(&f, 42.0);
        assert_eq!(s[0].point(0), (Some(42.0), Cell::Text("open")));
        assert_eq!(s[0].metric, Some("state"));
    }

    proptest::proptest! {
        /// The scan finds what the map's own search finds, for names of
        /// the same length as others, absent names and `__name__`.
        #[test]
        fn a_field_label_is_found_as_the_map_finds_it(
            labels in proptest::collection::btree_map("[a-c_]{0,3}", "[xy]{0,2}", 0..8),
            name in "[a-c_]{0,3}|__name__",
        ) {
            let mut map = labels;
            map.insert(NAME_LABEL.into(), "metric".into());
            let expected = (name != NAME_LABEL).then(|| map.get(&name).map(String::as_str)).flatten();
            proptest::prop_assert_eq!(Labels::Field(&map).get(&name), expected);
        }
    }
}
