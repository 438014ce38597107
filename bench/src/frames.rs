//! Grafana data frames for the panel benchmarks: what the Prometheus
//! datasource hands a panel for `statescope_state` over a time range, one
//! frame per series (a `Time` field and a `Value` field carrying the labels),
//! wrapped in the JSON document `module.ts` gives the panel's data core
//! (`PanelInput`, camelCase keys).
//!
//! The fleet is the load generator's (see [`crate::events::machine`]): each
//! breaker walks closed -> open -> half_open -> closed, at a pace set by its
//! index, so the panel sees transitions, flapping and every state.

use std::collections::HashMap;
use std::fmt::Write as _;

/// States of the built-in `circuit_breaker` kind, in enum order.
const STATES: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];
const WALK: [usize; 4] = [0, 1, 2, 0];

/// A panel's data: `machines` breakers, `samples` points `step_ms` apart
/// ending at `end_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Fleet {
    pub machines: usize,
    pub samples: usize,
    pub step_ms: u64,
    pub end_ms: u64,
}

impl Fleet {
    /// One hour of 15 s samples ending at `end_ms`.
    pub fn hour(machines: usize, end_ms: u64) -> Fleet {
        Fleet {
            machines,
            samples: 240,
            step_ms: 15_000,
            end_ms,
        }
    }

    /// The same fleet one refresh later: the window slid by one step.
    pub fn next_refresh(self) -> Fleet {
        Fleet {
            end_ms: self.end_ms + self.step_ms,
            ..self
        }
    }

    /// The time range the data covers, `[from, to]` in epoch milliseconds.
    pub fn range_ms(&self) -> [u64; 2] {
        [self.start_ms(), self.end_ms]
    }

    fn start_ms(&self) -> u64 {
        self.end_ms - self.step_ms * (self.samples as u64 - 1)
    }

    /// State (index into [`STATES`]) of machine `i` at sample time `t_ms`.
    fn state_at(&self, i: usize, t_ms: u64) -> usize {
        // Machines dwell 2 to 61 steps per state; a handful flap every step.
        let dwell = if i.is_multiple_of(97) { 1 } else { 2 + (i * 7919) % 60 } as u64;
        let step = t_ms / self.step_ms + i as u64;
        WALK[((step / dwell) % WALK.len() as u64) as usize]
    }

    /// Grafana's `data.series` as JSON: one frame per (machine, state).
    pub fn frames_json(&self) -> String {
        let mut out = String::with_capacity(self.machines * STATES.len() * self.samples * 20);
        out.push('[');
        let times: Vec<u64> = (0..self.samples as u64)
            .map(|k| self.start_ms() + k * self.step_ms)
            .collect();
        // Grafana's Prometheus datasource gives the time field the query's step as its `interval`.
        let step = self.step_ms;
        let mut time_values = String::new();
        for (k, t) in times.iter().enumerate() {
            if k > 0 {
                time_values.push(',');
            }
            write!(time_values, "{t}").unwrap();
        }
        for i in 0..self.machines {
            let (name, provider, key) = crate::events::machine(i);
            let states: Vec<usize> = times.iter().map(|&t| self.state_at(i, t)).collect();
            for (s, state) in STATES.iter().enumerate() {
                if i > 0 || s > 0 {
                    out.push(',');
                }
                write!(
                    out,
                    r#"{{"refId":"A","fields":[{{"name":"Time","type":"time","config":{{"interval":{step}}},"values":[{time_values}]}},{{"name":"Value","type":"number","config":{{}},"labels":{{"__name__":"statescope_state","kind":"circuit_breaker","machine":"{name}","state":"{state}","provider":"{provider}","key_id":"{key}","instance":"exporter:9733","job":"statescope"}},"values":["#
                )
                .unwrap();
                for (k, &current) in states.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push(if current == s { '1' } else { '0' });
                }
                out.push_str("]}]}");
            }
        }
        out.push(']');
        out
    }

    /// The whole `PanelInput` document, default options, a 1000x600 panel.
    pub fn panel_input_json(&self) -> String {
        format!(
            r#"{{"frames":{},"options":{{}},"timeRange":{{"from":{},"to":{}}},"width":1000,"height":600,"theme":{{"isDark":true,"palette":{{}}}},"now":{}}}"#,
            self.frames_json(),
            self.start_ms(),
            self.end_ms,
            self.end_ms
        )
    }
}

/// In the layout: this time field's samples are the previous time field's
/// (the panel's `store::SAME_TIMES`; the panel crate is not a dependency of
/// this library).
const SAME_TIMES: u32 = u32::MAX;
/// In the layout, then `k` and `m`: the kept samples without the first `k`,
/// then `m` new ones (the panel's `store::SLID`).
const SLID: u32 = u32::MAX - 2;
/// In the layout: the samples the panel kept (the panel's `store::UNCHANGED`).
const UNCHANGED: u32 = u32::MAX - 1;
/// In a description: no refId or name (the panel's `store::NONE`).
const NONE: u32 = u32::MAX;

/// The panel's side of the frames it sends (as `frames.ts` does): an id per
/// frame description, descriptions sent once as numbers naming strings and
/// configs sent once, samples as numbers, a time column equal to the one
/// before sent as [`SAME_TIMES`], a column that is the one sent before slid
/// by `k` steps sent as its new samples ([`SLID`]); with `same_arrays`, a
/// column equal to the one sent before as [`UNCHANGED`] (`frames.ts` does
/// when Grafana hands the same array again).
#[derive(Default)]
pub struct Sender {
    pub same_arrays: bool,
    ids: HashMap<String, u32>,
    next: u32,
    strings: HashMap<String, u32>,
    configs: HashMap<String, u32>,
    /// Per frame key, the columns last sent.
    sent: HashMap<String, Vec<Vec<f64>>>,
}

/// One update as the panel's wasm takes it: the meta JSON (options, time
/// range, new strings and configs), the new frames' descriptions, the layout
/// and the numbers.
pub type Update = (String, Vec<u32>, Vec<u32>, Vec<f64>);

/// Whether `new` starts with `kept` from `k` on (equal bits, or both NaN).
fn slid_by(kept: &[f64], new: &[f64], k: usize) -> bool {
    let overlap = kept.len().saturating_sub(k);
    overlap > 0
        && overlap <= new.len()
        && kept[k..]
            .iter()
            .zip(new)
            .all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan())
}

fn intern(
    table: &mut HashMap<String, u32>,
    fresh: &mut Vec<serde_json::Value>,
    key: String,
    value: serde_json::Value,
) -> u32 {
    let next = table.len() as u32;
    *table.entry(key).or_insert_with(|| {
        fresh.push(value);
        next
    })
}

impl Sender {
    /// The update carrying the `PanelInput` document `json`, against what this
    /// sender sent before: frames seen then are named by id only.
    pub fn update(&mut self, json: &str) -> Update {
        let mut doc: serde_json::Value = serde_json::from_str(json).expect("a PanelInput document");
        let frames = doc.as_object_mut().and_then(|d| d.remove("frames")).unwrap_or_default();
        let (mut layout, mut numbers, mut describe) = (Vec::new(), Vec::new(), Vec::new());
        let (mut strings, mut configs) = (Vec::new(), Vec::new());
        let (mut ids, mut sent) = (HashMap::new(), HashMap::new());
        let mut last_times: Option<Vec<f64>> = None;
        for mut frame in frames.as_array().cloned().unwrap_or_default() {
            let mut columns = Vec::new();
            for field in frame["fields"].as_array_mut().into_iter().flatten() {
                if matches!(field["type"].as_str(), Some("time" | "number")) {
                    let values = field
                        .as_object_mut()
                        .and_then(|f| f.remove("values"))
                        .unwrap_or_default();
                    let values: Vec<f64> = values
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_f64().unwrap_or(f64::NAN))
                        .collect();
                    columns.push((field["type"] == "time", values));
                }
            }
            let key = frame.to_string();
            let id = match self.ids.get(&key) {
                Some(&id) => id,
                None => {
                    self.next += 1;
                    let mut string = |s: &serde_json::Value| match s.as_str() {
                        Some(s) => intern(&mut self.strings, &mut strings, s.to_owned(), s.into()),
                        None => NONE,
                    };
                    let fields = frame["fields"].as_array().cloned().unwrap_or_default();
                    describe.extend([
                        self.next,
                        string(&frame["refId"]),
                        string(&frame["name"]),
                        fields.len() as u32,
                    ]);
                    for field in &fields {
                        let code = match field["type"].as_str() {
                            Some("time") => 0,
                            Some("number") => 1,
                            Some("string") => 2,
                            Some("boolean") => 3,
                            _ => 4,
                        };
                        let (name, labels) = (
                            string(&field["name"]),
                            field["labels"].as_object().cloned().unwrap_or_default(),
                        );
                        let pairs: Vec<u32> = labels
                            .iter()
                            .flat_map(|(k, v)| [string(&k.as_str().into()), string(v)])
                            .collect();
                        let config = field.get("config").cloned().unwrap_or_else(|| serde_json::json!({}));
                        let config = intern(&mut self.configs, &mut configs, config.to_string(), config);
                        describe.extend([name, code, config, labels.len() as u32]);
                        describe.extend(pairs);
                    }
                    self.next
                }
            };
            ids.insert(key.clone(), id);
            layout.push(id);
            let kept = self.sent.get(&key);
            let mut slide = 0;
            for (i, (time, values)) in columns.iter().enumerate() {
                let kept = kept.and_then(|k| k.get(i));
                if *time && let (Some(kept), Some(first)) = (kept, values.first()) {
                    slide = kept.iter().position(|t| t == first).unwrap_or(kept.len());
                }
                if *time && last_times.as_ref() == Some(values) {
                    layout.push(SAME_TIMES);
                } else if self.same_arrays
                    && kept.is_some_and(|kept| slid_by(kept, values, 0) && kept.len() == values.len())
                {
                    layout.push(UNCHANGED);
                } else if let Some(kept) = kept.filter(|kept| slid_by(kept, values, slide)) {
                    let from = kept.len() - slide;
                    layout.extend([SLID, slide as u32, (values.len() - from) as u32]);
                    numbers.extend_from_slice(&values[from..]);
                } else {
                    layout.push(values.len() as u32);
                    numbers.extend_from_slice(values);
                }
                if *time {
                    last_times = Some(values.clone());
                }
            }
            sent.insert(key, columns.into_iter().map(|(_, v)| v).collect());
        }
        self.ids = ids;
        self.sent = sent;
        doc["strings"] = strings.into();
        doc["configs"] = configs.into();
        (doc.to_string(), describe, layout, numbers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn one_frame_per_machine_and_state_with_exactly_one_state_set_per_sample() {
        let fleet = Fleet::hour(4, 1_800_000_000_000);
        let frames: Value = serde_json::from_str(&fleet.frames_json()).unwrap();
        let frames = frames.as_array().unwrap();
        assert_eq!(frames.len(), 4 * 5);
        for machine in frames.chunks(5) {
            let times = &machine[0]["fields"][0]["values"];
            assert_eq!(times.as_array().unwrap().len(), 240);
            assert_eq!(times[239], 1_800_000_000_000u64);
            for k in 0..240 {
                let set: u64 = machine
                    .iter()
                    .map(|f| f["fields"][1]["values"][k].as_u64().unwrap())
                    .sum();
                assert_eq!(set, 1, "one-hot at sample {k}");
            }
        }
        assert_eq!(frames[7]["fields"][1]["labels"]["machine"], "p1/key-1");
        assert_eq!(frames[7]["fields"][1]["labels"]["state"], "half_open");
    }

    #[test]
    fn a_refresh_slides_the_window_by_one_step() {
        let a = Fleet::hour(3, 1_800_000_000_000);
        let b = a.next_refresh();
        let (fa, fb): (Value, Value) = (
            serde_json::from_str(&a.frames_json()).unwrap(),
            serde_json::from_str(&b.frames_json()).unwrap(),
        );
        for f in 0..15 {
            let va = fa[f]["fields"][1]["values"].as_array().unwrap();
            let vb = fb[f]["fields"][1]["values"].as_array().unwrap();
            assert_eq!(va[1..], vb[..239], "frame {f}");
        }
        let doc: Value = serde_json::from_str(&b.panel_input_json()).unwrap();
        assert_eq!(doc["timeRange"]["to"], 1_800_000_015_000u64);
    }

    #[test]
    fn frames_are_described_once_and_named_by_id_after_and_a_refresh_sends_only_new_samples() {
        let fleet = Fleet::hour(2, 1_800_000_000_000);
        let mut sender = Sender::default();
        let (meta, describe, layout, numbers) = sender.update(&fleet.panel_input_json());
        assert_eq!(
            numbers.len(),
            (1 + 2 * 5) * 240,
            "the times once, the values of every frame"
        );
        assert_eq!(layout.len(), 2 * 5 * 3, "id, time length, value length per frame");
        assert_eq!(
            &layout[..6],
            [1, 240, 240, 2, SAME_TIMES, 240],
            "the same times repeated"
        );
        assert_eq!(numbers[239], 1_800_000_000_000.0);
        let doc: Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(
            doc["configs"],
            serde_json::json!([{"interval": 15_000}, {}]),
            "one config for every time field (its step), one for every value field"
        );
        let strings = doc["strings"].as_array().unwrap();
        assert!(strings.len() < 40, "labels shared by the fleet cross once: {strings:?}");
        // Frame 1: refId, no name, 2 fields, then "Time", type time, config 0, no labels.
        assert_eq!(&describe[..8], [1, 0, NONE, 2, 1, 0, 0, 0]);
        assert_eq!(strings[1], "Time");
        let (meta, describe, layout, numbers) = sender.update(&fleet.next_refresh().panel_input_json());
        let doc: Value = serde_json::from_str(&meta).unwrap();
        assert!(describe.is_empty(), "the same frames slid by a step");
        assert_eq!(doc["strings"], serde_json::json!([]));
        assert_eq!(&layout[..7], [1, SLID, 1, 1, SLID, 1, 1]);
        assert_eq!(numbers[0], 1_800_000_015_000.0);
        assert_eq!(
            numbers.len(),
            1 + 2 * 5,
            "one new instant (every frame repeats the first times), a new value per frame"
        );
    }
}
