//! The panel options, as Grafana's options editor saves them (camelCase JSON).
//!
//! Every option is optional. Decoding never fails: a value the panel cannot
//! use falls back to its default and leaves a readable message in
//! [`PanelOptions::problems`], which the view shows as a warning. That way a
//! typo in one option (or an option saved by a newer version) does not blank
//! the panel.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// Which views the panel draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ViewMode {
    Diagram,
    Machines,
    #[default]
    Both,
}

/// How a machine's state is read from its series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShapeChoice {
    /// One-hot when the series carry the state label, else enum.
    #[default]
    Auto,
    /// One 1/0 series per state, the state in a label.
    OneHot,
    /// One series per machine whose value is the state (via value mappings,
    /// or the kind's enum values).
    Enum,
}

/// Which kind the machines are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KindChoice {
    /// From the `kind` label, else circuit_breaker when the states fit, else from the data.
    #[default]
    Auto,
    /// The states and transitions seen in the data.
    FromData,
    /// A kind by name: built in (`circuit_breaker`, `worker`) or described by
    /// `statescope_transition_allowed` series.
    Named(String),
}

/// Order of the machine tiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Worst severity first, then longest in that state, then name.
    #[default]
    WorstFirst,
    Name,
    /// Longest in the current state first.
    TimeInState,
    /// Most transitions in range first.
    Transitions,
}

/// How big a machine's tile is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TileSize {
    /// Full tiles, or small cells when the fleet would take more than a few
    /// screens of full tiles.
    #[default]
    Auto,
    /// Name, state, time in state and history strip.
    Full,
    /// A small square per machine in its state's colour (details on hover).
    Dense,
}

/// Decoded, checked panel options.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "Map<String, Value>")]
pub struct PanelOptions {
    pub view: ViewMode,
    pub shape: ShapeChoice,
    /// Label holding the state name on one-hot series.
    pub state_label: String,
    /// Labels that identify a machine; empty means detect them.
    pub identity_labels: Vec<String>,
    pub kind: KindChoice,
    /// A machine that trips (ok -> trouble) at least this many times within
    /// `flapping_window_minutes` is flapping.
    pub flapping_threshold: u64,
    pub flapping_window_minutes: u64,
    /// Case-insensitive substring matched against a machine's id, kind and label values.
    pub search: String,
    /// Show only machines currently in this state.
    pub state_filter: Option<String>,
    pub sort: SortOrder,
    /// Most machine tiles in the view (after filter and sort); `None` is all.
    pub max_tiles: Option<usize>,
    pub tiles: TileSize,
    /// State name to colour (Grafana name or CSS), overriding the kind's colours.
    pub state_colors: BTreeMap<String, String>,
    /// Why some option was ignored; shown as warnings.
    pub problems: Vec<String>,
}

pub const DEFAULT_STATE_LABEL: &str = "state";
/// Three trips in 15 minutes: an incident trips a breaker once however often
/// it probes half_open, so only a breaker that keeps closing and reopening
/// is flagged.
pub const DEFAULT_FLAPPING_THRESHOLD: u64 = 3;
pub const DEFAULT_FLAPPING_WINDOW_MINUTES: u64 = 15;

impl Default for PanelOptions {
    fn default() -> PanelOptions {
        PanelOptions {
            view: ViewMode::default(),
            shape: ShapeChoice::default(),
            state_label: DEFAULT_STATE_LABEL.to_owned(),
            identity_labels: Vec::new(),
            kind: KindChoice::default(),
            flapping_threshold: DEFAULT_FLAPPING_THRESHOLD,
            flapping_window_minutes: DEFAULT_FLAPPING_WINDOW_MINUTES,
            search: String::new(),
            state_filter: None,
            sort: SortOrder::default(),
            max_tiles: None,
            tiles: TileSize::default(),
            state_colors: BTreeMap::new(),
            problems: Vec::new(),
        }
    }
}

impl From<Map<String, Value>> for PanelOptions {
    fn from(raw: Map<String, Value>) -> PanelOptions {
        let mut o = PanelOptions::default();
        let mut reader = Reader {
            raw: &raw,
            problems: Vec::new(),
        };
        if let Some(v) = reader.choice(
            "view",
            &[
                ("diagram", ViewMode::Diagram),
                ("machines", ViewMode::Machines),
                ("both", ViewMode::Both),
            ],
        ) {
            o.view = v;
        }
        if let Some(v) = reader.choice(
            "shape",
            &[
                ("auto", ShapeChoice::Auto),
                ("one_hot", ShapeChoice::OneHot),
                ("enum", ShapeChoice::Enum),
            ],
        ) {
            o.shape = v;
        }
        if let Some(v) = reader.text("stateLabel").filter(|s| !s.is_empty()) {
            o.state_label = v;
        }
        if let Some(v) = reader.list("identityLabels") {
            o.identity_labels = v;
        }
        if let Some(v) = reader.text("kind") {
            o.kind = match v.as_str() {
                "" | "auto" => KindChoice::Auto,
                "from_data" => KindChoice::FromData,
                name if statescope_model::kind::is_valid_name(name) => KindChoice::Named(name.to_owned()),
                other => {
                    reader.problems.push(format!(
                        "Options: kind `{other}` is not a kind name (a-z, 0-9, _); using auto."
                    ));
                    KindChoice::Auto
                }
            };
        }
        if let Some(v) = reader.count("flappingThreshold", 1) {
            o.flapping_threshold = v;
        }
        if let Some(v) = reader.count("flappingWindowMinutes", 1) {
            o.flapping_window_minutes = v;
        }
        if let Some(v) = reader.text("search") {
            o.search = v.trim().to_owned();
        }
        o.state_filter = reader.text("stateFilter").filter(|s| !s.is_empty());
        if let Some(v) = reader.choice(
            "sort",
            &[
                ("worst_first", SortOrder::WorstFirst),
                ("name", SortOrder::Name),
                ("time_in_state", SortOrder::TimeInState),
                ("transitions", SortOrder::Transitions),
            ],
        ) {
            o.sort = v;
        }
        // 0 means "no limit", as Grafana's number inputs are often cleared to 0.
        o.max_tiles = reader.count("maxTiles", 0).filter(|&n| n > 0).map(|n| n as usize);
        if let Some(v) = reader.choice(
            "tiles",
            &[
                ("auto", TileSize::Auto),
                ("full", TileSize::Full),
                ("dense", TileSize::Dense),
            ],
        ) {
            o.tiles = v;
        }
        o.state_colors = reader.colors("stateColors");
        o.problems = reader.problems;
        o
    }
}

/// Reads one option at a time, collecting a message for each unusable value.
struct Reader<'a> {
    raw: &'a Map<String, Value>,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The value under its camelCase key, or its snake_case spelling.
    fn get(&self, key: &str) -> Option<&Value> {
        let snake = to_snake(key);
        self.raw
            .get(key)
            .or_else(|| self.raw.get(&snake))
            .filter(|v| !v.is_null())
    }

    fn text(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problems.push(format!(
                    "Options: {} should be text, not {other}; ignored.",
                    to_snake(key)
                ));
                None
            }
        }
    }

    fn choice<T: Copy + Default + PartialEq>(&mut self, key: &str, allowed: &[(&str, T)]) -> Option<T> {
        let text = self.text(key)?;
        let found = allowed.iter().find(|(name, _)| *name == text).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<_> = allowed.iter().map(|(n, _)| *n).collect();
            let default = allowed.iter().find(|(_, v)| *v == T::default()).map_or("", |(n, _)| *n);
            self.problems.push(format!(
                "Options: {} `{text}` is not one of {}; using {default}.",
                to_snake(key),
                names.join(", "),
            ));
        }
        found
    }

    /// A whole number ≥ `min`; Grafana's number inputs may also save strings.
    fn count(&mut self, key: &str, min: u64) -> Option<u64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if s.trim().is_empty() => return None,
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n.fract() == 0.0 && n >= min as f64 && n <= u32::MAX as f64 => Some(n as u64),
            _ => {
                self.problems.push(format!(
                    "Options: {} should be a whole number of at least {min}, not {v}; using the default.",
                    to_snake(key)
                ));
                None
            }
        }
    }

    /// A list of names: a JSON array (multi-select) or comma-separated text (text input).
    fn list(&mut self, key: &str) -> Option<Vec<String>> {
        let names: Vec<String> = match self.get(key)? {
            Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(|s| s.trim().to_owned()))
                .collect(),
            other => {
                self.problems.push(format!(
                    "Options: {} should be a list of label names, not {other}; detecting them instead.",
                    to_snake(key)
                ));
                return None;
            }
        };
        Some(names.into_iter().filter(|n| !n.is_empty()).collect())
    }

    fn colors(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(v) = self.get(key) else {
            return BTreeMap::new();
        };
        match v {
            Value::Object(map) => map
                .iter()
                .filter_map(|(state, c)| Some((state.clone(), c.as_str()?.to_owned())))
                .collect(),
            other => {
                self.problems.push(format!(
                    "Options: {} should map state names to colours, not {other}; ignored.",
                    to_snake(key)
                ));
                BTreeMap::new()
            }
        }
    }
}

fn to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> PanelOptions {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn empty_options_are_the_defaults() {
        let o = parse("{}");
        assert_eq!(o, PanelOptions::default());
        assert_eq!(o.sort, SortOrder::WorstFirst);
        assert_eq!(o.flapping_threshold, 3);
        assert_eq!(o.flapping_window_minutes, 15);
        assert_eq!(o.state_label, "state");
    }

    #[test]
    fn reads_every_option_in_camel_and_snake_case() {
        let o = parse(
            r##"{"view":"diagram","shape":"one_hot","stateLabel":"status","identityLabels":"provider, key_id",
               "kind":"payment_job","flappingThreshold":"3","search":" openai ","state_filter":"open",
               "sort":"transitions","maxTiles":50,"stateColors":{"open":"#ff0000","x":3}}"##,
        );
        assert_eq!(o.view, ViewMode::Diagram);
        assert_eq!(o.shape, ShapeChoice::OneHot);
        assert_eq!(o.state_label, "status");
        assert_eq!(o.identity_labels, ["provider", "key_id"]);
        assert_eq!(o.kind, KindChoice::Named("payment_job".into()));
        assert_eq!(o.flapping_threshold, 3);
        assert_eq!(o.search, "openai");
        assert_eq!(o.state_filter.as_deref(), Some("open"));
        assert_eq!(o.sort, SortOrder::Transitions);
        assert_eq!(o.max_tiles, Some(50));
        assert_eq!(o.state_colors.len(), 1);
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        let o = parse(r#"{"identityLabels":["name"],"kind":"from_data","maxTiles":0}"#);
        assert_eq!(o.identity_labels, ["name"]);
        assert_eq!(o.kind, KindChoice::FromData);
        assert_eq!(o.max_tiles, None);
    }

    #[test]
    fn bad_values_fall_back_with_a_readable_message() {
        let o = parse(
            r#"{"sort":"random","view":3,"flappingThreshold":-2,"kind":"Circuit Breaker","identityLabels":7,
               "stateColors":"red"}"#,
        );
        assert_eq!(o.sort, SortOrder::WorstFirst);
        assert_eq!(o.view, ViewMode::Both);
        assert_eq!(o.flapping_threshold, DEFAULT_FLAPPING_THRESHOLD);
        assert_eq!(o.kind, KindChoice::Auto);
        assert!(o.identity_labels.is_empty());
        assert_eq!(
            o.problems,
            [
                "Options: view should be text, not 3; ignored.",
                "Options: identity_labels should be a list of label names, not 7; detecting them instead.",
                "Options: kind `Circuit Breaker` is not a kind name (a-z, 0-9, _); using auto.",
                "Options: flapping_threshold should be a whole number of at least 1, not -2; using the default.",
                "Options: sort `random` is not one of worst_first, name, time_in_state, transitions; using worst_first.",
                "Options: state_colors should map state names to colours, not \"red\"; ignored.",
            ]
        );
    }
}
