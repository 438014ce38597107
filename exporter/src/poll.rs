//! Poll mode, for services that cannot push: the exporter GETs a JSON
//! document at an interval and sets machine states from it.
//!
//! One machine per document (`machine` + `state_pointer`):
//! ```toml
//! [[poll]]
//! url = "http://127.0.0.1:8080/actuator/health"
//! interval = "10s"                 # default 15s
//! timeout = "2s"                   # default 5s
//! kind = "circuit_breaker"
//! machine = "payments/stripe"
//! state_pointer = "/components/circuitBreakers/details/stripe/details/state"
//! value_map = { CLOSED = "closed", OPEN = "open", HALF_OPEN = "half_open" }
//! labels = { provider = "stripe" }
//! ```
//! Many machines (`items_pointer` + `state_field`, optional `machine_field`),
//! from an array of objects or an object keyed by machine:
//! ```toml
//! [[poll]]
//! url = "http://127.0.0.1:9000/breakers"
//! kind = "circuit_breaker"
//! items_pointer = "/breakers"      # [{"name": "openai/key-1", "state": 0}, ...] or {"openai/key-1": {"state": 0}}
//! machine_field = "name"           # omit to use an object's keys
//! state_field = "state"
//! value_map = { "0" = "closed", "1" = "open", "2" = "half_open" }
//! ```
//! Pointers are JSON Pointers (RFC 6901: `""` is the whole document,
//! `/a/0/b` goes down by key and index). A field is a key of the item, or a
//! JSON Pointer into the item when it starts with `/` (`"/status/state"`); the
//! empty field `""` is the item itself (`{"openai/key-1": "OPEN", ...}`).
//!
//! Values are read as text (`0`, `true`, `"OPEN"`) and mapped through
//! `value_map`; without a map the text is the state name. What a poll sees
//! is the service's truth, so it is applied as an observation
//! ([`Action::Polled`]) even when the kind would not allow the move (the
//! store counts such a move as unexpected), and a machine first seen by a poll
//! is created in the state seen, with no transition. A successful poll is
//! proof of life: it counts as the machine's heartbeat, and holds off
//! heartbeat expiry until the next poll should have answered (interval plus
//! timeout), so polled workers are not flapped to `offline`. A document that
//! cannot be read whole gives an error and no events, so a poll never
//! applies half a view, nor counts as a heartbeat.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use statescope_model::Kind;
use statescope_model::contract::DEFAULT_IDENTITY_LABELS;
use thiserror::Error;

use crate::events::{Action, Event, MAX_LABEL_VALUE_LEN, MAX_MACHINE_LEN, printable};

/// Largest document read. Health and breaker endpoints answer a few KiB; a
/// target pointed at something else must not fill the exporter's memory.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Where the machines and their states are in the document.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    /// One machine, whose state is at a JSON Pointer.
    One { machine: String, state_pointer: String },
    /// The items of the array or object at `items_pointer`. The machine name
    /// is `machine_field` of each item, or (for an object, when absent) its key.
    Many {
        items_pointer: String,
        machine_field: Option<String>,
        state_field: String,
    },
}

/// One `[[poll]]` table of the config.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawTarget")]
pub struct PollTarget {
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub kind: String,
    pub select: Selector,
    /// Text of a polled value -> state name. Empty: the text is the state name.
    pub value_map: BTreeMap<String, String>,
    /// Identity labels of every machine of this target.
    pub labels: BTreeMap<String, String>,
}

/// The table as written: flat, so serde names an unknown field, and
/// [`PollTarget`]'s conversion names a selector field that is missing or
/// does not belong.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    url: String,
    #[serde(default = "default_interval", deserialize_with = "duration")]
    interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    timeout: Duration,
    kind: String,
    machine: Option<String>,
    state_pointer: Option<String>,
    items_pointer: Option<String>,
    machine_field: Option<String>,
    state_field: Option<String>,
    #[serde(default)]
    value_map: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// What is wrong with a poll target's configuration.
#[derive(Debug, Error, PartialEq)]
pub enum TargetError {
    #[error("url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("`interval` must be at least 1s")]
    Interval,
    #[error("`timeout` must be above 0")]
    Timeout,
    #[error("`{one}` (one machine) and `{many}` (many machines) do not go together")]
    MixedSelector { one: &'static str, many: &'static str },
    #[error("`{field}` needs `{needs}`")]
    Needs { field: &'static str, needs: &'static str },
    #[error(
        "no machine to poll: set `machine` and `state_pointer` (one machine), or `items_pointer` and `state_field` (many)"
    )]
    NoSelector,
    #[error("`{field}` = {value:?} is not a JSON Pointer (one starts with '/', or is \"\" for the whole document)")]
    NotAPointer { field: &'static str, value: String },
    #[error(
        "label `{0}` is not an identity label (see `identity_labels` in the config; by default {defaults})",
        defaults = DEFAULT_IDENTITY_LABELS.join(", ")
    )]
    LabelName(String),
    #[error("label `{0}` value must be 1-{MAX_LABEL_VALUE_LEN} printable characters")]
    LabelValue(String),
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("value_map maps {value:?} to {state:?}, which is not a state of {kind} (states: {states:?})")]
    NotAState {
        value: String,
        state: String,
        kind: String,
        states: Vec<String>,
    },
}

/// Why one poll gave no events. Each names the target's url.
#[derive(Debug, Error, PartialEq)]
pub enum PollError {
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the document is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url}: the document is not JSON: {message}")]
    InvalidJson { url: String, message: String },
    #[error("{url}: nothing at JSON pointer {pointer:?}")]
    Missing { url: String, pointer: String },
    #[error("{url}: {pointer:?} is neither an array nor an object")]
    NotAList { url: String, pointer: String },
    #[error("{url}: {pointer:?} is an array, so `machine_field` is needed to name its machines")]
    NoMachineField { url: String, pointer: String },
    #[error("{url}: value {value} at {pointer:?} is not a string, number or boolean")]
    NotAValue {
        url: String,
        pointer: String,
        value: String,
    },
    #[error(
        "{url}: machine name {name} at {pointer:?} must be a string or number of 1-{MAX_MACHINE_LEN} printable characters"
    )]
    BadMachine { url: String, pointer: String, name: String },
    #[error("{url}: machine {machine:?}: value {value:?} is not in value_map (it maps {known:?})")]
    Unmapped {
        url: String,
        machine: String,
        value: String,
        known: Vec<String>,
    },
}

impl TryFrom<RawTarget> for PollTarget {
    type Error = TargetError;

    fn try_from(raw: RawTarget) -> Result<PollTarget, TargetError> {
        let select = match raw {
            RawTarget {
                machine: Some(machine),
                state_pointer: Some(state_pointer),
                items_pointer: None,
                machine_field: None,
                state_field: None,
                ..
            } => Selector::One { machine, state_pointer },
            RawTarget {
                machine: None,
                state_pointer: None,
                items_pointer: Some(items_pointer),
                machine_field,
                state_field: Some(state_field),
                ..
            } => Selector::Many {
                items_pointer,
                machine_field,
                state_field,
            },
            _ => return Err(selector_error(&raw)),
        };
        let target = PollTarget {
            url: raw.url,
            interval: raw.interval,
            timeout: raw.timeout,
            kind: raw.kind,
            select,
            value_map: raw.value_map,
            labels: raw.labels,
        };
        target.check_form()?;
        Ok(target)
    }
}

/// Names what is wrong with a selector that matched neither form.
fn selector_error(raw: &RawTarget) -> TargetError {
    let one = [("machine", &raw.machine), ("state_pointer", &raw.state_pointer)];
    let many = [
        ("items_pointer", &raw.items_pointer),
        ("state_field", &raw.state_field),
        ("machine_field", &raw.machine_field),
    ];
    let first = |fields: &[(&'static str, &Option<String>)]| fields.iter().find(|(_, v)| v.is_some()).map(|f| f.0);
    match (first(&one), first(&many)) {
        (Some(one), Some(many)) => TargetError::MixedSelector { one, many },
        (Some(field), None) => TargetError::Needs {
            field,
            needs: if field == "machine" { "state_pointer" } else { "machine" },
        },
        (None, Some(field)) => TargetError::Needs {
            field,
            needs: if field == "items_pointer" {
                "state_field"
            } else {
                "items_pointer"
            },
        },
        (None, None) => TargetError::NoSelector,
    }
}

/// RFC 6901 escaping of one path segment, for error messages that point at a key.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A field of an item: a key, or a JSON Pointer into the item ("" is the item).
fn field<'a>(item: &'a Value, field: &str) -> Option<&'a Value> {
    if field.is_empty() || field.starts_with('/') {
        item.pointer(field)
    } else {
        item.get(field)
    }
}

impl PollTarget {
    /// What can be checked without the kinds: url, times, pointers, labels.
    fn check_form(&self) -> Result<(), TargetError> {
        let url_error = |reason: String| TargetError::Url {
            url: self.url.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&self.url).map_err(|e| url_error(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(url_error("only http:// and https:// can be polled".into()));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(TargetError::Interval);
        }
        if self.timeout.is_zero() {
            return Err(TargetError::Timeout);
        }
        let pointer = match &self.select {
            Selector::One { state_pointer, .. } => ("state_pointer", state_pointer),
            Selector::Many { items_pointer, .. } => ("items_pointer", items_pointer),
        };
        if !(pointer.1.is_empty() || pointer.1.starts_with('/')) {
            return Err(TargetError::NotAPointer {
                field: pointer.0,
                value: pointer.1.clone(),
            });
        }
        for (name, value) in &self.labels {
            if !printable(value, MAX_LABEL_VALUE_LEN) {
                return Err(TargetError::LabelValue(name.clone()));
            }
        }
        Ok(())
    }

    /// Checks the target when the config is loaded: its form, that its kind
    /// exists, that its labels are identity labels, and that every
    /// `value_map` state is a state of the kind.
    pub fn check<'a>(
        &self,
        kinds: impl Fn(&str) -> Option<&'a Kind>,
        identity_labels: &[String],
    ) -> Result<(), TargetError> {
        self.check_form()?;
        if let Some(name) = self.labels.keys().find(|n| !identity_labels.contains(n)) {
            return Err(TargetError::LabelName(name.clone()));
        }
        let kind = kinds(&self.kind).ok_or_else(|| TargetError::UnknownKind(self.kind.clone()))?;
        for (value, state) in &self.value_map {
            if kind.state_id(state).is_none() {
                return Err(TargetError::NotAState {
                    value: value.clone(),
                    state: state.clone(),
                    kind: self.kind.clone(),
                    states: kind.states().iter().map(|s| s.name.clone()).collect(),
                });
            }
        }
        Ok(())
    }

    fn missing(&self, pointer: String) -> PollError {
        PollError::Missing {
            url: self.url.clone(),
            pointer,
        }
    }

    /// The state named by the value at `pointer`, for `machine`.
    fn state_of(&self, machine: &str, pointer: &str, value: &Value) -> Result<String, PollError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(PollError::NotAValue {
                    url: self.url.clone(),
                    pointer: pointer.to_owned(),
                    value: other.to_string(),
                });
            }
        };
        if self.value_map.is_empty() {
            return Ok(text);
        }
        self.value_map.get(&text).cloned().ok_or_else(|| PollError::Unmapped {
            url: self.url.clone(),
            machine: machine.to_owned(),
            value: text,
            known: self.value_map.keys().cloned().collect(),
        })
    }

    fn machine_name(&self, pointer: &str, value: &Value) -> Result<String, PollError> {
        let name = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if printable(&name, MAX_MACHINE_LEN) {
            Ok(name)
        } else {
            Err(PollError::BadMachine {
                url: self.url.clone(),
                pointer: pointer.to_owned(),
                name: value.to_string(),
            })
        }
    }

    fn event(&self, machine: &str, state: String) -> Event {
        let alive_seconds = (self.interval + self.timeout).as_secs_f64();
        let mut e = Event::new(&self.kind, machine, Action::Polled { state, alive_seconds });
        e.labels = self.labels.clone();
        e
    }
}

/// The machines and states in a polled document, as observations: all of
/// them, or an error naming the first thing that is wrong.
pub fn extract(target: &PollTarget, body: &Value) -> Result<Vec<Event>, PollError> {
    match &target.select {
        Selector::One { machine, state_pointer } => {
            let value = body
                .pointer(state_pointer)
                .ok_or_else(|| target.missing(state_pointer.clone()))?;
            Ok(vec![
                target.event(machine, target.state_of(machine, state_pointer, value)?),
            ])
        }
        Selector::Many {
            items_pointer,
            machine_field,
            state_field,
        } => {
            let items = body
                .pointer(items_pointer)
                .ok_or_else(|| target.missing(items_pointer.clone()))?;
            let entries: Vec<(String, Option<&str>, &Value)> = match items {
                Value::Array(a) => a.iter().enumerate().map(|(i, v)| (i.to_string(), None, v)).collect(),
                Value::Object(o) => o.iter().map(|(k, v)| (escape(k), Some(k.as_str()), v)).collect(),
                _ => {
                    return Err(PollError::NotAList {
                        url: target.url.clone(),
                        pointer: items_pointer.clone(),
                    });
                }
            };
            let mut events = Vec::with_capacity(entries.len());
            for (segment, key, item) in entries {
                let item_pointer = format!("{items_pointer}/{segment}");
                // Where a field is, as one pointer from the document root.
                let at = |f: &str| match f {
                    "" => item_pointer.clone(),
                    f if f.starts_with('/') => format!("{item_pointer}{f}"),
                    f => format!("{item_pointer}/{}", escape(f)),
                };
                let machine = match (machine_field, key) {
                    (Some(f), _) => {
                        let value = field(item, f).ok_or_else(|| target.missing(at(f)))?;
                        target.machine_name(&at(f), value)?
                    }
                    (None, Some(key)) => target.machine_name(&item_pointer, &Value::String(key.to_owned()))?,
                    (None, None) => {
                        return Err(PollError::NoMachineField {
                            url: target.url.clone(),
                            pointer: items_pointer.clone(),
                        });
                    }
                };
                let value = field(item, state_field).ok_or_else(|| target.missing(at(state_field)))?;
                let state = target.state_of(&machine, &at(state_field), value)?;
                events.push(target.event(&machine, state));
            }
            Ok(events)
        }
    }
}

/// GETs the target's document: a 2xx answer with a JSON body of at most
/// [`MAX_BODY_BYTES`], within the target's timeout (connecting included).
pub async fn fetch(client: &reqwest::Client, target: &PollTarget) -> Result<Value, PollError> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            PollError::Timeout {
                url: target.url.clone(),
                timeout: target.timeout,
            }
        } else {
            // The source chain says why (refused, DNS, TLS), the top error only that it failed.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message = format!("{message}: {s}");
                source = s.source();
            }
            PollError::Request {
                url: target.url.clone(),
                message,
            }
        }
    };
    let mut res = client
        .get(&target.url)
        .timeout(target.timeout)
        .send()
        .await
        .map_err(failed)?;
    if !res.status().is_success() {
        return Err(PollError::Status {
            url: target.url.clone(),
            status: res.status().as_u16(),
        });
    }
    let too_large = || PollError::TooLarge {
        url: target.url.clone(),
    };
    if res.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // Read in chunks, so a body without a length stops at the cap too.
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| PollError::InvalidJson {
        url: target.url.clone(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use statescope_model::builtin;

    use super::*;

    fn target(toml_text: &str) -> PollTarget {
        toml::from_str(toml_text).unwrap()
    }

    /// The error of a `[[poll]]` table, as check-config shows it.
    fn table_error(toml_text: &str) -> String {
        toml::from_str::<PollTarget>(toml_text).unwrap_err().to_string()
    }

    fn states(events: &[Event]) -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| match &e.action {
                Action::Polled { state, .. } => (e.machine.clone(), state.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    const ONE: &str = r#"url = "http://x/health"
        kind = "circuit_breaker"
        machine = "payments/stripe"
        state_pointer = "/cb/state"
        value_map = { OPEN = "open", CLOSED = "closed" }
        labels = { provider = "stripe" }"#;

    const ARRAY: &str = r#"url = "http://x/b"
        kind = "circuit_breaker"
        items_pointer = "/breakers"
        machine_field = "name"
        state_field = "/status/state"
        value_map = { "0" = "closed", "1" = "open", "2" = "half_open" }"#;

    #[test]
    fn one_machine_from_a_pointer_through_the_value_map() {
        let t = target(ONE);
        assert_eq!(
            (t.interval, t.timeout),
            (Duration::from_secs(15), Duration::from_secs(5))
        );
        let events = extract(&t, &json!({"cb": {"state": "OPEN"}})).unwrap();
        assert_eq!(states(&events), [("payments/stripe".into(), "open".into())]);
        assert_eq!(events[0].kind, "circuit_breaker");
        assert_eq!(events[0].labels["provider"], "stripe");
        let err = extract(&t, &json!({"cb": {"state": "WEIRD"}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "http://x/health: machine \"payments/stripe\": value \"WEIRD\" is not in value_map (it maps [\"CLOSED\", \"OPEN\"])"
        );
        let err = extract(&t, &json!({"cb": {}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "http://x/health: nothing at JSON pointer \"/cb/state\""
        );
    }

    #[test]
    fn numbers_booleans_and_strings_map_by_their_text() {
        let t = target(ARRAY);
        let body = json!({"breakers": [
            {"name": "a", "status": {"state": 0}},
            {"name": "b", "status": {"state": 2}},
            {"name": 7, "status": {"state": "1"}},
        ]});
        assert_eq!(
            states(&extract(&t, &body).unwrap()),
            [
                ("a".into(), "closed".into()),
                ("b".into(), "half_open".into()),
                ("7".into(), "open".into())
            ]
        );
        let up = target(
            r#"url = "http://x/w"
            kind = "worker"
            machine = "w1"
            state_pointer = "/up"
            value_map = { "true" = "idle", "false" = "offline" }"#,
        );
        assert_eq!(
            states(&extract(&up, &json!({"up": false})).unwrap()),
            [("w1".into(), "offline".into())]
        );
        // Without a map, the text is the state name.
        let plain = PollTarget {
            value_map: BTreeMap::new(),
            ..up
        };
        assert_eq!(
            states(&extract(&plain, &json!({"up": "busy"})).unwrap()),
            [("w1".into(), "busy".into())]
        );
    }

    #[test]
    fn many_machines_from_an_object_keyed_by_machine() {
        let by_key = target(
            r#"url = "http://x/b"
            kind = "circuit_breaker"
            items_pointer = ""
            state_field = ""
            labels = { service = "gateway" }"#,
        );
        let body = json!({"openai/key-1": "open", "stripe/key-2": "closed"});
        let events = extract(&by_key, &body).unwrap();
        assert_eq!(
            states(&events),
            [
                ("openai/key-1".into(), "open".into()),
                ("stripe/key-2".into(), "closed".into())
            ]
        );
        assert!(events.iter().all(|e| e.labels["service"] == "gateway"));
        // machine_field, when set, names the machine instead of the key.
        let named = PollTarget {
            select: Selector::Many {
                items_pointer: "/b".into(),
                machine_field: Some("id".into()),
                state_field: "s".into(),
            },
            ..by_key
        };
        let body = json!({"b": {"x": {"id": "m1", "s": "open"}}});
        assert_eq!(states(&extract(&named, &body).unwrap()), [("m1".into(), "open".into())]);
    }

    #[test]
    fn every_document_error_names_the_url_and_the_place() {
        let t = target(ARRAY);
        let err = |body: Value| extract(&t, &body).unwrap_err().to_string();
        assert_eq!(err(json!({})), "http://x/b: nothing at JSON pointer \"/breakers\"");
        assert_eq!(
            err(json!({"breakers": 3})),
            "http://x/b: \"/breakers\" is neither an array nor an object"
        );
        assert_eq!(
            err(json!({"breakers": [{"name": "a"}]})),
            "http://x/b: nothing at JSON pointer \"/breakers/0/status/state\""
        );
        assert_eq!(
            err(json!({"breakers": {"a/b": {"status": {"state": 0}}}})),
            "http://x/b: nothing at JSON pointer \"/breakers/a~1b/name\""
        );
        assert_eq!(
            err(json!({"breakers": [{"name": "a", "status": {"state": [1]}}]})),
            "http://x/b: value [1] at \"/breakers/0/status/state\" is not a string, number or boolean"
        );
        assert_eq!(
            err(json!({"breakers": [{"name": "a", "status": {"state": 9}}]})),
            "http://x/b: machine \"a\": value \"9\" is not in value_map (it maps [\"0\", \"1\", \"2\"])"
        );
        for bad_name in [
            json!(""),
            json!("a\nb"),
            json!("x".repeat(MAX_MACHINE_LEN + 1)),
            json!(null),
        ] {
            let e = extract(&t, &json!({"breakers": [{"name": bad_name, "status": {"state": 0}}]})).unwrap_err();
            assert!(
                matches!(&e, PollError::BadMachine { pointer, .. } if pointer == "/breakers/0/name"),
                "{e}"
            );
        }
        let no_names = PollTarget {
            select: Selector::Many {
                items_pointer: "/breakers".into(),
                machine_field: None,
                state_field: "state".into(),
            },
            ..t.clone()
        };
        assert_eq!(
            extract(&no_names, &json!({"breakers": [{"state": 0}]})).unwrap_err(),
            PollError::NoMachineField {
                url: "http://x/b".into(),
                pointer: "/breakers".into()
            }
        );
        // One bad item spoils the document: no half views.
        assert!(
            extract(
                &t,
                &json!({"breakers": [{"name": "a", "status": {"state": 0}}, {"name": "b"}]})
            )
            .is_err()
        );
    }

    #[test]
    fn names_and_label_values_are_limited_in_characters_not_bytes() {
        let t = target(ARRAY);
        // 128 two-byte characters: 256 bytes, within the limit.
        let long = "ж".repeat(MAX_MACHINE_LEN);
        let events = extract(&t, &json!({"breakers": [{"name": long, "status": {"state": 0}}]})).unwrap();
        assert_eq!(events[0].machine, long);
        let over = "ж".repeat(MAX_MACHINE_LEN + 1);
        let err = extract(&t, &json!({"breakers": [{"name": over, "status": {"state": 0}}]})).unwrap_err();
        assert!(matches!(err, PollError::BadMachine { .. }), "{err}");
        let labelled = |value: String| {
            format!(
                "url = \"http://x/h\"\nkind = \"worker\"\nmachine = \"w\"\nstate_pointer = \"/s\"\nlabels = {{ service = {value:?} }}"
            )
        };
        let t = target(&labelled("ж".repeat(MAX_LABEL_VALUE_LEN)));
        assert_eq!(t.labels["service"].chars().count(), MAX_LABEL_VALUE_LEN);
        let err = table_error(&labelled("ж".repeat(MAX_LABEL_VALUE_LEN + 1)));
        assert!(
            err.contains("label `service` value must be 1-128 printable characters"),
            "{err}"
        );
    }

    #[test]
    fn a_polled_state_holds_off_heartbeat_expiry_until_the_next_poll_is_due() {
        let t = target(&format!("{ONE}\ninterval = \"10s\"\ntimeout = \"2s\""));
        let events = extract(&t, &json!({"cb": {"state": "OPEN"}})).unwrap();
        assert_eq!(
            events[0].action,
            Action::Polled {
                state: "open".into(),
                alive_seconds: 12.0
            }
        );
    }

    #[test]
    fn a_table_names_the_field_that_is_wrong() {
        let err = table_error(&format!("{ONE}\nintervall = \"3s\""));
        assert!(err.contains("unknown field `intervall`"), "{err}");
        let err = table_error(&format!("{ONE}\nitems_pointer = \"/a\""));
        assert!(
            err.contains("`machine` (one machine) and `items_pointer` (many machines) do not go together"),
            "{err}"
        );
        let err = table_error("url = \"http://x\"\nkind = \"worker\"\nmachine = \"m\"");
        assert!(err.contains("`machine` needs `state_pointer`"), "{err}");
        let err = table_error("url = \"http://x\"\nkind = \"worker\"\nitems_pointer = \"/a\"");
        assert!(err.contains("`items_pointer` needs `state_field`"), "{err}");
        let err = table_error("url = \"http://x\"\nkind = \"worker\"\nmachine_field = \"n\"\nstate_field = \"s\"");
        assert!(err.contains("`state_field` needs `items_pointer`"), "{err}");
        let err = table_error("url = \"http://x\"\nkind = \"worker\"");
        assert!(err.contains("no machine to poll"), "{err}");
        let err = table_error(&ONE.replace("\"/cb/state\"", "\"cb.state\""));
        assert!(
            err.contains("`state_pointer` = \"cb.state\" is not a JSON Pointer"),
            "{err}"
        );
        let err = table_error(&ONE.replace("http://x/health", "ftp://x/health"));
        assert!(err.contains("only http:// and https://"), "{err}");
        let err = table_error(&ONE.replace("http://x/health", "x/health"));
        assert!(err.contains("url \"x/health\""), "{err}");
        let err = table_error(&format!("{ONE}\ninterval = \"500ms\""));
        assert!(err.contains("`interval` must be at least 1s"), "{err}");
        let err = table_error(&format!("{ONE}\ntimeout = \"0s\""));
        assert!(err.contains("`timeout` must be above 0"), "{err}");
        let err = table_error(&format!("{ONE}\ntimeout = \"soon\""));
        assert!(err.contains("soon"), "{err}");
        let err = table_error(&ONE.replace("provider = \"stripe\"", "provider = \"\""));
        assert!(err.contains("label `provider` value"), "{err}");
    }

    #[test]
    fn check_finds_the_kind_and_its_states() {
        let kinds = builtin::all();
        let find = |n: &str| kinds.iter().find(|k| k.name() == n);
        let identity: Vec<String> = statescope_model::contract::DEFAULT_IDENTITY_LABELS
            .iter()
            .map(|l| (*l).to_owned())
            .collect();
        let check = |t: &PollTarget| t.check(find, &identity);
        let ok = target(ONE);
        assert_eq!(check(&ok), Ok(()));
        let ajar = PollTarget {
            value_map: [("1".into(), "ajar".into())].into(),
            ..ok.clone()
        };
        assert_eq!(
            check(&ajar).unwrap_err().to_string(),
            "value_map maps \"1\" to \"ajar\", which is not a state of circuit_breaker \
             (states: [\"closed\", \"open\", \"half_open\", \"forced_open\", \"disabled\", \"metrics_only\"])"
        );
        let toaster = PollTarget {
            kind: "toaster".into(),
            ..ok.clone()
        };
        assert_eq!(check(&toaster), Err(TargetError::UnknownKind("toaster".into())));
        // A target built in code gets the form checks too.
        let label = PollTarget {
            labels: [("pod".into(), "x".into())].into(),
            ..ok
        };
        assert_eq!(check(&label), Err(TargetError::LabelName("pod".into())));
        // A label the config declares is one.
        let team = vec!["team".to_owned()];
        let teamed = PollTarget {
            labels: [("team".into(), "payments".into())].into(),
            ..label
        };
        assert_eq!(teamed.check(find, &team), Ok(()));
    }

    /// A loopback server answering every request with `head` (status line and
    /// any headers) and `body` after `delay`, then closing the connection.
    async fn serve(head: &str, body: String, delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = format!("{head}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{body}");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/state")
    }

    fn one(url: String) -> PollTarget {
        target(&format!(
            "url = \"{url}\"\nkind = \"circuit_breaker\"\nmachine = \"m\"\nstate_pointer = \"/state\"\ntimeout = \"500ms\""
        ))
    }

    const OK: &str = "HTTP/1.1 200 OK";

    #[tokio::test]
    async fn fetch_reads_json_and_names_http_errors_timeouts_and_bad_bodies() {
        let client = reqwest::Client::new();
        let t = one(serve(OK, r#"{"state":"open"}"#.into(), Duration::ZERO).await);
        let body = fetch(&client, &t).await.unwrap();
        assert_eq!(states(&extract(&t, &body).unwrap()), [("m".into(), "open".into())]);

        let t = one(serve("HTTP/1.1 500 Internal Server Error", "{}".into(), Duration::ZERO).await);
        let status = PollError::Status {
            url: t.url.clone(),
            status: 500,
        };
        assert_eq!(fetch(&client, &t).await, Err(status));

        let t = one(serve(OK, "not json".into(), Duration::ZERO).await);
        let err = fetch(&client, &t).await.unwrap_err();
        assert!(matches!(err, PollError::InvalidJson { .. }), "{err}");

        // Too large, announced by its length or found while reading.
        let t = one(serve(
            &format!("{OK}\r\ncontent-length: {}", MAX_BODY_BYTES + 1),
            "{}".into(),
            Duration::ZERO,
        )
        .await);
        assert_eq!(
            fetch(&client, &t).await,
            Err(PollError::TooLarge { url: t.url.clone() })
        );
        let big = format!("[{}0]", "0,".repeat(MAX_BODY_BYTES / 2));
        let t = one(serve(OK, big, Duration::ZERO).await);
        assert_eq!(
            fetch(&client, &t).await,
            Err(PollError::TooLarge { url: t.url.clone() })
        );

        let t = one(serve(OK, "{}".into(), Duration::from_secs(3)).await);
        let err = fetch(&client, &t).await.unwrap_err();
        assert_eq!(err.to_string(), format!("{}: no answer within 500ms", t.url));

        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = one(format!("http://127.0.0.1:{port}/state"));
        let err = fetch(&client, &t).await.unwrap_err();
        assert!(matches!(err, PollError::Request { .. }), "{err}");
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
    }
}
