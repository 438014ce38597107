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
                    r#"{{"refId":"A","fields":[{{"name":"Time","type":"time","config":{{}},"values":[{time_values}]}},{{"name":"Value","type":"number","config":{{}},"labels":{{"__name__":"statescope_state","kind":"circuit_breaker","machine":"{name}","state":"{state}","provider":"{provider}","key_id":"{key}","instance":"exporter:9733","job":"statescope"}},"values":["#
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

/// The panel's side of the frames it sends (as `frames.ts` does): an id per
/// frame description, descriptions sent once, samples as numbers, a time
/// column equal to the one before sent as [`SAME_TIMES`].
#[derive(Default)]
pub struct Sender {
    ids: HashMap<String, u32>,
    next: u32,
}

/// One update as the panel's wasm takes it: the meta JSON (options, time
/// range, new frames' descriptions), the layout and the numbers.
pub type Update = (String, Vec<u32>, Vec<f64>);

impl Sender {
    /// The update carrying the `PanelInput` document `json`, against what this
    /// sender sent before: frames seen then are named by id only.
    pub fn update(&mut self, json: &str) -> Update {
        let mut doc: serde_json::Value = serde_json::from_str(json).expect("a PanelInput document");
        let frames = doc.as_object_mut().and_then(|d| d.remove("frames")).unwrap_or_default();
        let (mut layout, mut numbers, mut described) = (Vec::new(), Vec::new(), Vec::new());
        let mut ids = HashMap::new();
        let mut last_times: Option<Vec<f64>> = None;
        for mut frame in frames.as_array().cloned().unwrap_or_default() {
            let mut columns = Vec::new();
            for field in frame["fields"].as_array_mut().into_iter().flatten() {
                if matches!(field["type"].as_str(), Some("time" | "number")) {
                    let values = field
                        .as_object_mut()
                        .and_then(|f| f.remove("values"))
                        .unwrap_or_default();
                    columns.push((field["type"] == "time", values));
                }
            }
            let key = frame.to_string();
            let id = match self.ids.get(&key) {
                Some(&id) => id,
                None => {
                    self.next += 1;
                    frame["id"] = self.next.into();
                    described.push(frame);
                    self.next
                }
            };
            ids.insert(key, id);
            layout.push(id);
            for (time, column) in columns {
                let values: Vec<f64> = column
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect();
                if time && last_times.as_ref() == Some(&values) {
                    layout.push(SAME_TIMES);
                    continue;
                }
                layout.push(values.len() as u32);
                numbers.extend_from_slice(&values);
                if time {
                    last_times = Some(values);
                }
            }
        }
        self.ids = ids;
        doc["newFrames"] = described.into();
        (doc.to_string(), layout, numbers)
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
    fn frames_are_described_once_and_named_by_id_after() {
        let fleet = Fleet::hour(2, 1_800_000_000_000);
        let mut sender = Sender::default();
        let (meta, layout, numbers) = sender.update(&fleet.panel_input_json());
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
        let value = &doc["newFrames"][2]["fields"][1];
        assert!(value.get("values").is_none());
        assert_eq!(value["labels"]["state"], "half_open");
        let (meta, layout, numbers) = sender.update(&fleet.next_refresh().panel_input_json());
        let doc: Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(
            doc["newFrames"],
            serde_json::json!([]),
            "the same frames slid by a step"
        );
        assert_eq!(&layout[..3], [1, 240, 240]);
        assert_eq!(numbers[239], 1_800_000_015_000.0);
    }
}
