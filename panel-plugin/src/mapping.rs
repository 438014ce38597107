//! Enum-shaped series: a sample's value to a state, through the field's
//! Grafana value mappings, else the kind's enum values (a state's position:
//! circuit_breaker closed 0, open 1, half_open 2), else a state name in text.

use statescope_model::Kind;

use crate::input::{Cell, FieldConfig, MappingResult, SpecialMatch, ValueMapping};

/// A state name as the panel spells it: lower case, `_` for spaces and dashes,
/// other characters dropped, a leading letter ensured (`"Half Open"` ->
/// `half_open`, `"HALF_OPEN"` -> `half_open`, `"2xx"` -> `s_2xx`). `None` when
/// nothing usable is left.
pub fn state_name(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' | '_' => out.push(c),
            ' ' | '-' | '.' | '/' => out.push('_'),
            _ => {}
        }
    }
    if out.is_empty() {
        return None;
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "s_");
    }
    out.truncate(statescope_model::kind::MAX_NAME_LEN);
    Some(out)
}

/// The state names a field's value mappings produce, in mapping order (the
/// `index` Grafana stores, then declaration order).
pub fn mapped_names(config: &FieldConfig) -> Vec<(String, Option<String>)> {
    let mut results: Vec<(i64, &MappingResult)> = Vec::new();
    for m in &config.mappings {
        match m {
            ValueMapping::Value { options } => {
                results.extend(options.values().map(|r| (r.index.unwrap_or(i64::MAX), r)));
            }
            ValueMapping::Range { options } => {
                results.push((options.result.index.unwrap_or(i64::MAX), &options.result))
            }
            ValueMapping::Special { options } => {
                results.push((options.result.index.unwrap_or(i64::MAX), &options.result))
            }
            ValueMapping::Unsupported => {}
        }
    }
    let mut order: Vec<usize> = (0..results.len()).collect();
    crate::series::sort_indices(&mut order, &|a, b| results[a].0.cmp(&results[b].0));
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for r in order.into_iter().map(|i| results[i].1) {
        if let Some(name) = r.text.as_deref().and_then(state_name)
            && !out.iter().any(|(n, _)| *n == name)
        {
            out.push((name, r.color.clone()));
        }
    }
    out
}

/// What one sample says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    State(usize),
    /// No value at this instant (null, NaN).
    Gap,
    /// A value that names no state of the kind.
    Unmapped,
}

/// Decodes the samples of one field for one kind; built once per series so
/// each sample costs a few comparisons and no allocation.
pub struct Decoder {
    exact: Vec<(f64, Option<usize>)>,
    texts: Vec<(String, Option<usize>)>,
    ranges: Vec<(f64, f64, Option<usize>)>,
    null: Option<Option<usize>>,
    nan: Option<Option<usize>>,
    bool_true: Option<Option<usize>>,
    bool_false: Option<Option<usize>>,
    empty: Option<Option<usize>>,
    /// State names of the kind, for text samples.
    names: Vec<String>,
}

impl Decoder {
    pub fn new(config: &FieldConfig, kind: &Kind) -> Decoder {
        // A mapping without a text only sets a colour: it says nothing of
        // the state (None here, and it is skipped).
        let target = |r: &MappingResult| {
            r.text
                .as_deref()
                .map(|text| state_name(text).and_then(|n| kind.state_id(&n)).map(|s| s.index()))
        };
        let mut d = Decoder {
            exact: Vec::new(),
            texts: Vec::new(),
            ranges: Vec::new(),
            null: None,
            nan: None,
            bool_true: None,
            bool_false: None,
            empty: None,
            names: kind.states().iter().map(|s| s.name.clone()).collect(),
        };
        for m in &config.mappings {
            match m {
                ValueMapping::Value { options } => {
                    for (key, r) in options {
                        let Some(t) = target(r) else { continue };
                        match key.trim().parse::<f64>() {
                            Ok(n) => d.exact.push((n, t)),
                            Err(_) => d.texts.push((key.clone(), t)),
                        }
                    }
                }
                ValueMapping::Range { options } => {
                    if let Some(t) = target(&options.result) {
                        d.ranges.push((
                            options.from.unwrap_or(f64::NEG_INFINITY),
                            options.to.unwrap_or(f64::INFINITY),
                            t,
                        ));
                    }
                }
                ValueMapping::Special { options } => {
                    let Some(t) = target(&options.result).map(Some) else {
                        continue;
                    };
                    match options.match_ {
                        SpecialMatch::Null => d.null = d.null.or(t),
                        SpecialMatch::NaN => d.nan = d.nan.or(t),
                        SpecialMatch::NullAndNaN => {
                            d.null = d.null.or(t);
                            d.nan = d.nan.or(t);
                        }
                        SpecialMatch::True => d.bool_true = d.bool_true.or(t),
                        SpecialMatch::False => d.bool_false = d.bool_false.or(t),
                        SpecialMatch::Empty => d.empty = d.empty.or(t),
                        SpecialMatch::Other => {}
                    }
                }
                ValueMapping::Unsupported => {}
            }
        }
        d
    }

    pub fn decode(&self, value: Cell) -> Decoded {
        let mapped = |m: Option<usize>| m.map_or(Decoded::Unmapped, Decoded::State);
        match value {
            Cell::Null => self.null.map_or(Decoded::Gap, mapped),
            Cell::Bool(b) => match (b, self.bool_true, self.bool_false) {
                (true, Some(m), _) | (false, _, Some(m)) => mapped(m),
                _ => self.number(f64::from(u8::from(b))),
            },
            Cell::Number(n) if n.is_nan() => self.nan.map_or(Decoded::Gap, mapped),
            Cell::Number(n) => self.number(n),
            Cell::Text("") => self.empty.map_or(Decoded::Gap, mapped),
            Cell::Text(s) => {
                if let Some((_, m)) = self.texts.iter().find(|(k, _)| k == s) {
                    return mapped(*m);
                }
                if let Ok(n) = s.trim().parse::<f64>() {
                    return if n.is_nan() {
                        self.nan.map_or(Decoded::Gap, mapped)
                    } else {
                        self.number(n)
                    };
                }
                match state_name(s).and_then(|name| self.names.iter().position(|n| *n == name)) {
                    Some(i) => Decoded::State(i),
                    None => Decoded::Unmapped,
                }
            }
        }
    }

    fn number(&self, n: f64) -> Decoded {
        let mapped = |m: Option<usize>| m.map_or(Decoded::Unmapped, Decoded::State);
        if let Some((_, m)) = self.exact.iter().find(|(k, _)| *k == n) {
            return mapped(*m);
        }
        if let Some((_, _, m)) = self.ranges.iter().find(|(lo, hi, _)| *lo <= n && n <= *hi) {
            return mapped(*m);
        }
        // A number no mapping names is the state at that position (the
        // kind's own numbering, `circuit_breaker_state`'s 0/1/2) only when no
        // mapping names a number: a user who maps some numbers the states
        // their own way.
        let positional = self.exact.is_empty() && self.ranges.is_empty();
        if positional && n.is_finite() && n >= 0.0 && n.fract() == 0.0 && (n as usize) < self.names.len() {
            return Decoded::State(n as usize);
        }
        Decoded::Unmapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statescope_model::builtin;

    fn config(mappings: &str) -> FieldConfig {
        serde_json::from_str(&format!("{{\"mappings\": {mappings}}}")).unwrap()
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(state_name("HALF_OPEN").as_deref(), Some("half_open"));
        assert_eq!(state_name(" Half Open ").as_deref(), Some("half_open"));
        assert_eq!(state_name("forced-open").as_deref(), Some("forced_open"));
        assert_eq!(state_name("2xx").as_deref(), Some("s_2xx"));
        assert_eq!(state_name("!!"), None);
    }

    #[test]
    fn kind_enum_values_apply_without_mappings() {
        let d = Decoder::new(&FieldConfig::default(), &builtin::circuit_breaker());
        assert_eq!(d.decode(Cell::Number(0.0)), Decoded::State(0));
        assert_eq!(d.decode(Cell::Number(2.0)), Decoded::State(2));
        assert_eq!(d.decode(Cell::Number(7.0)), Decoded::Unmapped);
        assert_eq!(d.decode(Cell::Number(0.5)), Decoded::Unmapped);
        assert_eq!(d.decode(Cell::Null), Decoded::Gap);
        assert_eq!(d.decode(Cell::Number(f64::NAN)), Decoded::Gap);
        assert_eq!(d.decode(Cell::Text("OPEN")), Decoded::State(1));
        assert_eq!(d.decode(Cell::Text("1")), Decoded::State(1));
    }

    #[test]
    fn grafana_value_range_and_special_mappings_win() {
        let c = config(
            r#"[{"type":"value","options":{"10":{"text":"Open","index":1},"20":{"text":"Closed","index":0},
                                           "HO":{"text":"half open"}}},
                {"type":"range","options":{"from":30,"to":40,"result":{"text":"disabled"}}},
                {"type":"special","options":{"match":"null","result":{"text":"forced open"}}}]"#,
        );
        let d = Decoder::new(&c, &builtin::circuit_breaker());
        assert_eq!(d.decode(Cell::Number(10.0)), Decoded::State(1));
        assert_eq!(d.decode(Cell::Number(20.0)), Decoded::State(0));
        assert_eq!(d.decode(Cell::Text("HO")), Decoded::State(2));
        assert_eq!(d.decode(Cell::Number(35.0)), Decoded::State(4));
        assert_eq!(d.decode(Cell::Null), Decoded::State(3));
        let names: Vec<_> = mapped_names(&c).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["closed", "open", "half_open", "disabled", "forced_open"]);
    }
}
