//! The panel options, as Grafana's options editor saves them (camelCase JSON).
//!
//! Every option is optional. Decoding never fails: a value the panel cannot
//! use falls back to its default and leaves a readable message in
//! [`PanelOptions::problems`], which the view shows as a warning. That way a
//! typo in one option (or an option saved by a newer version) does not blank
//! the panel.
//!
//! This file is where the options are defined: [`descriptor`] describes each
//! as the editor shows it and a dashboard saves it, and is written to
//! `src/panel/options.schema.json`, from which the editor (`options.ts`), the
//! dashboards generator and `check-dist.mjs` take them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use statescope_model::builtin::{CIRCUIT_BREAKER, WORKER};
use statescope_model::kind::MAX_NAME_LEN;

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

/// One value of an option with a fixed set of them: as saved, and as the
/// editor labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'static str,
}

const fn choice(value: &'static str, label: &'static str, description: &'static str) -> Choice {
    Choice {
        value,
        label,
        description,
    }
}

/// An option whose values are a fixed set, each spelled once, here.
pub trait Choices: Copy + Default + PartialEq + 'static {
    /// Every value with how it is saved and shown, in the editor's order.
    const ALL: &'static [(Self, Choice)];

    /// How the value is saved.
    fn saved(self) -> &'static str {
        Self::ALL.iter().find(|(v, _)| *v == self).map_or("", |(_, c)| c.value)
    }

    fn choices() -> Vec<Choice> {
        Self::ALL.iter().map(|(_, c)| *c).collect()
    }
}

impl Choices for ViewMode {
    const ALL: &'static [(Self, Choice)] = &[
        (ViewMode::Both, choice("both", "Both", "")),
        (ViewMode::Diagram, choice("diagram", "Diagram", "")),
        (ViewMode::Machines, choice("machines", "Machines", "")),
    ];
}

impl Choices for ShapeChoice {
    const ALL: &'static [(Self, Choice)] = &[
        (
            ShapeChoice::Auto,
            choice(
                "auto",
                "Auto",
                "One-hot when the series carry the state label, else enum",
            ),
        ),
        (
            ShapeChoice::OneHot,
            choice(
                "one_hot",
                "One-hot (state in a label)",
                "statescope_state, resilience4j_circuitbreaker_state",
            ),
        ),
        (
            ShapeChoice::Enum,
            choice(
                "enum",
                "Enum (state in the value)",
                "circuit_breaker_state 0/1/2, or value mappings",
            ),
        ),
    ];
}

impl Choices for SortOrder {
    const ALL: &'static [(Self, Choice)] = &[
        (SortOrder::WorstFirst, choice("worst_first", "Worst first", "")),
        (SortOrder::Name, choice("name", "Name", "")),
        (SortOrder::TimeInState, choice("time_in_state", "Longest in state", "")),
        (SortOrder::Transitions, choice("transitions", "Most transitions", "")),
    ];
}

impl Choices for TileSize {
    const ALL: &'static [(Self, Choice)] = &[
        (TileSize::Auto, choice("auto", "Auto", "")),
        (TileSize::Full, choice("full", "Full", "")),
        (TileSize::Dense, choice("dense", "Dense", "")),
    ];
}

const KIND_AUTO: &str = "auto";
const KIND_FROM_DATA: &str = "from_data";

/// The kinds the editor offers; any other kind name can be typed in.
const KIND_CHOICES: &[Choice] = &[
    choice(
        KIND_AUTO,
        "Auto",
        "From the kind label, else circuit_breaker when the states fit, else from the data",
    ),
    choice(CIRCUIT_BREAKER, CIRCUIT_BREAKER, ""),
    choice(WORKER, WORKER, ""),
    choice(
        KIND_FROM_DATA,
        "From the data",
        "States and transitions seen in the data",
    ),
];

/// The largest whole number an option takes.
const MAX_COUNT: u64 = u32::MAX as u64;

/// One option as Grafana's editor offers it and a dashboard saves it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionSpec {
    /// The key it is saved under.
    pub path: &'static str,
    pub name: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<&'static str>,
    #[serde(flatten)]
    pub value: OptionValue,
}

/// What an option holds, with the editor that sets it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OptionValue {
    /// One of `choices`, as radio buttons.
    Radio {
        default: &'static str,
        choices: Vec<Choice>,
    },
    /// One of `choices` from a drop-down, or with `custom_pattern` any text
    /// matching it.
    Select {
        default: &'static str,
        choices: Vec<Choice>,
        #[serde(rename = "allowCustomValue", skip_serializing_if = "Option::is_none")]
        allow_custom_value: Option<bool>,
        #[serde(rename = "pattern", skip_serializing_if = "Option::is_none")]
        custom_pattern: Option<String>,
    },
    Text {
        default: String,
    },
    /// A list of names.
    StringArray {
        default: Vec<String>,
    },
    /// A whole number in `min..=max`.
    Number {
        default: u64,
        min: u64,
        max: u64,
    },
    /// State name to colour; no editor (set in the panel's JSON).
    ColorMap {
        default: BTreeMap<String, String>,
    },
}

/// Every option, in the editor's order.
pub fn descriptor() -> Vec<OptionSpec> {
    let d = PanelOptions::default();
    let spec = |path, name, description, category, value| OptionSpec {
        path,
        name,
        description,
        category,
        value,
    };
    let data = Some("Data");
    let machines = Some("Machines");
    vec![
        spec(
            "view",
            "View",
            "",
            None,
            OptionValue::Radio {
                default: d.view.saved(),
                choices: ViewMode::choices(),
            },
        ),
        spec(
            "shape",
            "Data shape",
            "How a state is read: one 1/0 series per state with the state in a label, or one series whose value is the state.",
            data,
            OptionValue::Select {
                default: d.shape.saved(),
                choices: ShapeChoice::choices(),
                allow_custom_value: None,
                custom_pattern: None,
            },
        ),
        spec(
            "stateLabel",
            "State label",
            "Label holding the state name on one-hot series.",
            data,
            OptionValue::Text { default: d.state_label },
        ),
        spec(
            "identityLabels",
            "Identity labels",
            "Labels that identify a machine, in the order its name shows them (e.g. provider, key_id). Empty: detect them.",
            data,
            OptionValue::StringArray {
                default: d.identity_labels,
            },
        ),
        spec(
            "kind",
            "Kind",
            "Which states and transitions the machines have. Type the name of a custom kind to use it.",
            data,
            OptionValue::Select {
                default: KIND_AUTO,
                choices: KIND_CHOICES.to_vec(),
                allow_custom_value: Some(true),
                custom_pattern: Some(format!("^[a-z][a-z0-9_]{{0,{}}}$", MAX_NAME_LEN - 1)),
            },
        ),
        spec(
            "flappingThreshold",
            "Flapping threshold",
            "A machine that trips (ok -> trouble, e.g. closed -> open) at least this many times within the flapping window is marked flapping.",
            machines,
            OptionValue::Number {
                default: d.flapping_threshold,
                min: 1,
                max: MAX_COUNT,
            },
        ),
        spec(
            "flappingWindowMinutes",
            "Flapping window (minutes)",
            "",
            machines,
            OptionValue::Number {
                default: d.flapping_window_minutes,
                min: 1,
                max: MAX_COUNT,
            },
        ),
        spec(
            "tiles",
            "Tiles",
            "Auto: small cells when full tiles would take more than 3 screens.",
            machines,
            OptionValue::Radio {
                default: d.tiles.saved(),
                choices: TileSize::choices(),
            },
        ),
        spec(
            "sort",
            "Sort machines",
            "",
            machines,
            OptionValue::Select {
                default: d.sort.saved(),
                choices: SortOrder::choices(),
                allow_custom_value: None,
                custom_pattern: None,
            },
        ),
        spec(
            "search",
            "Search",
            "Show only machines whose name, kind or labels contain this text. Dashboard variables work.",
            machines,
            OptionValue::Text { default: d.search },
        ),
        spec(
            "stateFilter",
            "State filter",
            "Show only machines in this state (clicking a state in the diagram does the same).",
            machines,
            OptionValue::Text {
                default: d.state_filter.unwrap_or_default(),
            },
        ),
        spec(
            "maxTiles",
            "Max tiles",
            "Most machine tiles to show; 0 shows all (the grid is virtualised, so all is fine).",
            machines,
            // 0 means "no limit", as Grafana's number inputs are often cleared to 0.
            OptionValue::Number {
                default: d.max_tiles.map_or(0, |n| n as u64),
                min: 0,
                max: MAX_COUNT,
            },
        ),
        spec(
            "stateColors",
            "State colours",
            "State name to colour (a Grafana colour name or CSS), over the kind's colours. Not in the editor: set it in the panel's JSON.",
            None,
            OptionValue::ColorMap {
                default: d.state_colors,
            },
        ),
    ]
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
        if let Some(v) = reader.choice("view") {
            o.view = v;
        }
        if let Some(v) = reader.choice("shape") {
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
                "" | KIND_AUTO => KindChoice::Auto,
                KIND_FROM_DATA => KindChoice::FromData,
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
        if let Some(v) = reader.choice("sort") {
            o.sort = v;
        }
        // 0 means "no limit", as Grafana's number inputs are often cleared to 0.
        o.max_tiles = reader.count("maxTiles", 0).filter(|&n| n > 0).map(|n| n as usize);
        if let Some(v) = reader.choice("tiles") {
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

    fn choice<T: Choices>(&mut self, key: &str) -> Option<T> {
        let text = self.text(key)?;
        let found = T::ALL.iter().find(|(_, c)| c.value == text).map(|(v, _)| *v);
        if found.is_none() {
            let names: Vec<_> = T::ALL.iter().map(|(_, c)| c.value).collect();
            self.problems.push(format!(
                "Options: {} `{text}` is not one of {}; using {}.",
                to_snake(key),
                names.join(", "),
                T::default().saved(),
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
            Some(n) if n.is_finite() && n.fract() == 0.0 && n >= min as f64 && n <= MAX_COUNT as f64 => Some(n as u64),
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

    /// The descriptor (what the editor offers, dashboards save) and the
    /// reader agree: each described option is read under its path, its
    /// default decodes to the default options, and each of its choices is
    /// accepted and means something different from the others.
    #[test]
    fn every_described_option_is_read_with_its_default_and_choices() {
        let specs = descriptor();
        let mut paths: Vec<_> = specs.iter().map(|s| s.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), specs.len(), "an option is described twice");
        for spec in &specs {
            let one = |v: &Value| PanelOptions::from(Map::from_iter([(spec.path.to_owned(), v.clone())]));
            let described = serde_json::to_value(spec).unwrap();
            assert_eq!(
                one(&described["default"]),
                PanelOptions::default(),
                "{}'s default",
                spec.path
            );
            let wrong = one(&Value::Bool(true));
            assert!(
                wrong.problems.len() == 1 && wrong.problems[0].contains(&format!(" {} ", to_snake(spec.path))),
                "{} is not read under its path: {:?}",
                spec.path,
                wrong.problems
            );
            let decoded: Vec<_> = described["choices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| one(&c["value"]))
                .collect();
            for (i, o) in decoded.iter().enumerate() {
                assert!(o.problems.is_empty(), "{}: {:?}", spec.path, o.problems);
                assert!(!decoded[..i].contains(o), "{}: two choices decode alike", spec.path);
            }
        }
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
