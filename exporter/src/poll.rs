//! Poll mode, for services that cannot push: the exporter GETs a JSON
//! document at an interval and sets machine states from it.
//!
//! One machine per document:
//! ```toml
//! [[poll]]
//! url = "http://127.0.0.1:8080/actuator/health"
//! interval = "10s"
//! kind = "circuit_breaker"
//! machine = "payments/stripe"
//! state_pointer = "/components/circuitBreakers/details/stripe/details/state"
//! value_map = { CLOSED = "closed", OPEN = "open", HALF_OPEN = "half_open" }
//! labels = { provider = "stripe" }
//! ```
//! Many machines, from an array of objects or an object keyed by machine:
//! ```toml
//! [[poll]]
//! url = "http://127.0.0.1:9000/breakers"
//! kind = "circuit_breaker"
//! items_pointer = "/breakers"      # [{"name": "openai/key-1", "state": 0}, ...] or {"openai/key-1": {"state": 0}}
//! machine_field = "/name"          # JSON Pointer within an item; omit for an object's keys
//! state_field = "/state"
//! value_map = { "0" = "closed", "1" = "open", "2" = "half_open" }
//! ```
//! Values are read as text (`0`, `true`, `"OPEN"`) and mapped through
//! `value_map`; without a map the text is the state name. What a poll sees
//! is the service's truth, so it is applied as an observation
//! ([`Action::Observe`]) even when the kind would not allow the move.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use statescope_model::Kind;
use statescope_model::contract::IDENTITY_LABELS;
use thiserror::Error;

use crate::events::{Action, Event};

fn default_interval() -> Duration {
    Duration::from_secs(15)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Where the machines and their states are in the document.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Selector {
    One {
        machine: String,
        state_pointer: String,
    },
    Many {
        items_pointer: String,
        #[serde(default)]
        machine_field: Option<String>,
        state_field: String,
    },
}

/// One `[[poll]]` table of the config.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PollTarget {
    pub url: String,
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    pub kind: String,
    #[serde(flatten)]
    pub select: Selector,
    #[serde(default)]
    pub value_map: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[derive(Debug, Error, PartialEq)]
pub enum PollError {
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: nothing at JSON pointer {pointer:?}")]
    Missing { url: String, pointer: String },
    #[error("{url}: {pointer:?} is neither an array nor an object")]
    NotAList { url: String, pointer: String },
    #[error("{url}: value {value} at {pointer:?} is not a string, number or boolean")]
    NotAValue {
        url: String,
        pointer: String,
        value: String,
    },
    #[error("{url}: value {value:?} is not in value_map (it maps {known:?})")]
    Unmapped {
        url: String,
        value: String,
        known: Vec<String>,
    },
    #[error("{0}")]
    Config(String),
}

impl PollTarget {
    /// Checks the target against the known kinds when the config is loaded.
    pub fn check<'a>(&self, kinds: impl Fn(&str) -> Option<&'a Kind>) -> Result<(), PollError> {
        let bad = |m: String| Err(PollError::Config(m));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return bad(format!("url {:?} must start with http:// or https://", self.url));
        }
        if self.interval < Duration::from_secs(1) || self.timeout.is_zero() {
            return bad("interval must be at least 1s and timeout above 0".into());
        }
        let Some(kind) = kinds(&self.kind) else {
            return bad(format!("unknown kind {:?}", self.kind));
        };
        for name in self.labels.keys() {
            if !IDENTITY_LABELS.contains(&name.as_str()) {
                return bad(format!("label {name:?} is not an identity label ({IDENTITY_LABELS:?})"));
            }
        }
        for state in self.value_map.values() {
            if kind.state_id(state).is_none() {
                return bad(format!(
                    "value_map maps to {state:?}, which is not a state of {}",
                    self.kind
                ));
            }
        }
        let pointers: Vec<&str> = match &self.select {
            Selector::One { state_pointer, .. } => vec![state_pointer],
            Selector::Many {
                items_pointer,
                machine_field,
                state_field,
            } => [Some(items_pointer), machine_field.as_ref(), Some(state_field)]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
        };
        for p in pointers {
            if !(p.is_empty() || p.starts_with('/')) {
                return bad(format!("{p:?} is not a JSON Pointer (they start with '/')"));
            }
        }
        Ok(())
    }

    fn state_of(&self, pointer: &str, value: &Value) -> Result<String, PollError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(PollError::NotAValue {
                    url: self.url.clone(),
                    pointer: pointer.into(),
                    value: other.to_string(),
                });
            }
        };
        if self.value_map.is_empty() {
            return Ok(text);
        }
        self.value_map.get(&text).cloned().ok_or_else(|| PollError::Unmapped {
            url: self.url.clone(),
            value: text,
            known: self.value_map.keys().cloned().collect(),
        })
    }

    fn event(&self, machine: &str, state: String) -> Event {
        let mut e = Event::new(&self.kind, machine, Action::Observe { state });
        e.labels = self.labels.clone();
        e
    }
}

/// The machines and states in a polled document.
pub fn extract(target: &PollTarget, body: &Value) -> Result<Vec<Event>, PollError> {
    let missing = |pointer: &str| PollError::Missing {
        url: target.url.clone(),
        pointer: pointer.to_owned(),
    };
    match &target.select {
        Selector::One { machine, state_pointer } => {
            let value = body.pointer(state_pointer).ok_or_else(|| missing(state_pointer))?;
            Ok(vec![target.event(machine, target.state_of(state_pointer, value)?)])
        }
        Selector::Many {
            items_pointer,
            machine_field,
            state_field,
        } => {
            let items = body.pointer(items_pointer).ok_or_else(|| missing(items_pointer))?;
            let entries: Vec<(Option<&str>, &Value)> = match items {
                Value::Array(a) => a.iter().map(|v| (None, v)).collect(),
                Value::Object(o) => o.iter().map(|(k, v)| (Some(k.as_str()), v)).collect(),
                _ => {
                    return Err(PollError::NotAList {
                        url: target.url.clone(),
                        pointer: items_pointer.clone(),
                    });
                }
            };
            let mut events = Vec::with_capacity(entries.len());
            for (i, (key, item)) in entries.into_iter().enumerate() {
                let at = |field: &str| format!("{items_pointer}/{}{field}", key.map_or(i.to_string(), str::to_owned));
                let machine = match (machine_field, key) {
                    (Some(field), _) => {
                        let v = item.pointer(field).ok_or_else(|| missing(&at(field)))?;
                        v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
                    }
                    (None, Some(key)) => key.to_owned(),
                    (None, None) => return Err(missing(&at("(machine_field is needed for an array)"))),
                };
                let value = item.pointer(state_field).ok_or_else(|| missing(&at(state_field)))?;
                events.push(target.event(&machine, target.state_of(&at(state_field), value)?));
            }
            Ok(events)
        }
    }
}

/// GETs the target's document.
pub async fn fetch(client: &reqwest::Client, target: &PollTarget) -> Result<Value, PollError> {
    let fail = |message: String| PollError::Fetch {
        url: target.url.clone(),
        message,
    };
    let res = client
        .get(&target.url)
        .timeout(target.timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                fail(format!("no answer within {:?}", target.timeout))
            } else {
                fail(e.to_string())
            }
        })?;
    if !res.status().is_success() {
        return Err(PollError::Status {
            url: target.url.clone(),
            status: res.status().as_u16(),
        });
    }
    res.json().await.map_err(|e| fail(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use statescope_model::builtin;

    use super::*;

    fn target(toml_text: &str) -> PollTarget {
        toml::from_str(toml_text).unwrap()
    }

    fn states(events: &[Event]) -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| match &e.action {
                Action::Observe { state } => (e.machine.clone(), state.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_machine_from_a_pointer_through_the_value_map() {
        let t = target(
            r#"url = "http://x/health"
            kind = "circuit_breaker"
            machine = "payments/stripe"
            state_pointer = "/cb/state"
            value_map = { OPEN = "open", CLOSED = "closed" }
            labels = { provider = "stripe" }"#,
        );
        assert!(matches!(t.select, Selector::One { .. }));
        let events = extract(&t, &json!({"cb": {"state": "OPEN"}})).unwrap();
        assert_eq!(states(&events), [("payments/stripe".into(), "open".into())]);
        assert_eq!(events[0].labels["provider"], "stripe");
        let err = extract(&t, &json!({"cb": {"state": "WEIRD"}})).unwrap_err();
        assert!(err.to_string().contains("\"WEIRD\" is not in value_map"), "{err}");
        let err = extract(&t, &json!({"cb": {}})).unwrap_err();
        assert_eq!(
            err,
            PollError::Missing {
                url: "http://x/health".into(),
                pointer: "/cb/state".into()
            }
        );
    }

    #[test]
    fn many_machines_from_an_array_or_an_object_with_enum_numbers() {
        let t = target(
            r#"url = "http://x/b"
            kind = "circuit_breaker"
            items_pointer = "/breakers"
            machine_field = "/name"
            state_field = "/state"
            value_map = { "0" = "closed", "1" = "open", "2" = "half_open" }"#,
        );
        let body = json!({"breakers": [{"name": "a", "state": 0}, {"name": "b", "state": 2}]});
        assert_eq!(
            states(&extract(&t, &body).unwrap()),
            [("a".into(), "closed".into()), ("b".into(), "half_open".into())]
        );
        let by_key = target(
            r#"url = "http://x/b"
            kind = "worker"
            items_pointer = ""
            state_field = "/up"
            value_map = { "true" = "idle", "false" = "offline" }"#,
        );
        let body = json!({"w1": {"up": true}, "w2": {"up": false}});
        assert_eq!(
            states(&extract(&by_key, &body).unwrap()),
            [("w1".into(), "idle".into()), ("w2".into(), "offline".into())]
        );
        let err = extract(&t, &json!({"breakers": 3})).unwrap_err();
        assert!(matches!(err, PollError::NotAList { .. }));
        let err = extract(&t, &json!({"breakers": [{"name": "a", "state": {"x": 1}}]})).unwrap_err();
        assert!(err.to_string().contains("/breakers/0/state"), "{err}");
    }

    #[test]
    fn config_checks_name_what_is_wrong() {
        let kinds = [builtin::circuit_breaker()];
        let find = |n: &str| kinds.iter().find(|k| k.name() == n);
        let ok = target(
            r#"url = "http://x"
            kind = "circuit_breaker"
            machine = "m"
            state_pointer = "/s""#,
        );
        assert_eq!(ok.check(find), Ok(()));
        assert_eq!(ok.interval, Duration::from_secs(15));
        let bad_state = PollTarget {
            value_map: [("1".into(), "ajar".into())].into(),
            ..ok.clone()
        };
        assert!(bad_state.check(find).unwrap_err().to_string().contains("\"ajar\""));
        let bad_kind = PollTarget {
            kind: "toaster".into(),
            ..ok.clone()
        };
        assert!(bad_kind.check(find).unwrap_err().to_string().contains("unknown kind"));
        let bad_label = PollTarget {
            labels: [("pod".into(), "x".into())].into(),
            ..ok.clone()
        };
        assert!(bad_label.check(find).is_err());
        let bad_pointer = PollTarget {
            select: Selector::One {
                machine: "m".into(),
                state_pointer: "s".into(),
            },
            ..ok
        };
        assert!(
            bad_pointer
                .check(find)
                .unwrap_err()
                .to_string()
                .contains("JSON Pointer")
        );
        assert!(toml::from_str::<PollTarget>("url = \"http://x\"\nkind = \"k\"\nmachine = \"m\"").is_err());
    }

    /// A loopback server answering every request with `status` and `body` after `delay`.
    async fn serve(status: u16, body: &'static str, delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
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

    #[tokio::test]
    async fn fetch_reads_json_and_reports_http_errors_and_timeouts() {
        let client = reqwest::Client::new();
        let t = one(serve(200, r#"{"state":"open"}"#, Duration::ZERO).await);
        let body = fetch(&client, &t).await.unwrap();
        assert_eq!(states(&extract(&t, &body).unwrap()), [("m".into(), "open".into())]);
        let t = one(serve(500, "{}", Duration::ZERO).await);
        assert!(matches!(
            fetch(&client, &t).await,
            Err(PollError::Status { status: 500, .. })
        ));
        let t = one(serve(200, "not json", Duration::ZERO).await);
        assert!(
            fetch(&client, &t)
                .await
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
        let t = one(serve(200, "{}", Duration::from_secs(3)).await);
        assert!(
            fetch(&client, &t)
                .await
                .unwrap_err()
                .to_string()
                .contains("no answer within 500ms")
        );
    }
}
