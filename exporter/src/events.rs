//! The push API's data: what a service reports, as JSON, and the checked form
//! the store applies.
//!
//! Parsing is two steps so every error can name the field that is wrong:
//! serde reads a [`RawEvent`] (all fields optional but `type`), then
//! [`RawEvent::check`] turns it into an [`Event`] whose body can only hold the
//! fields its type needs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use statescope_model::contract::{CallOutcome, DEFAULT_IDENTITY_LABELS, JobResult};
use thiserror::Error;

/// Longest machine id accepted. Ids are label values on every series.
pub const MAX_MACHINE_LEN: usize = 128;
/// Longest identity label value accepted.
pub const MAX_LABEL_VALUE_LEN: usize = 128;
/// Longest event id accepted.
pub const MAX_EVENT_ID_LEN: usize = 128;
/// Longest job duration or queue wait accepted, in seconds: one year. Far
/// above any real job, and far enough below `f64::MAX` that the histogram
/// sums they add to stay finite (a sum of +Inf could not be saved).
pub const MAX_JOB_SECONDS: f64 = 31_536_000.0;

/// The `type` field of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Transition,
    Call,
    Heartbeat,
    Job,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::Transition,
        EventType::Call,
        EventType::Heartbeat,
        EventType::Job,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Transition => "transition",
            EventType::Call => "call",
            EventType::Heartbeat => "heartbeat",
            EventType::Job => "job",
        }
    }
}

/// An event as it arrives: every field but `type` optional, so that a missing
/// field gets our message instead of serde's.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub kind: Option<String>,
    pub machine: Option<String>,
    pub to: Option<String>,
    pub outcome: Option<CallOutcome>,
    pub failure_count: Option<u64>,
    pub result: Option<JobResult>,
    pub duration_seconds: Option<f64>,
    pub queue_seconds: Option<f64>,
    pub labels: Option<BTreeMap<String, String>>,
    pub seq: Option<u64>,
    pub id: Option<String>,
}

/// Highest `seq` accepted: 2^53 - 1, the largest integer every JSON client
/// keeps exact. A seq is never lowered, so a bogus huge one (`-1` sent as
/// u64::MAX) would make every later event of its machine a "retry".
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// A request body: one event, or `{"events": [...]}`, each event still the
/// JSON text it was sent as (borrowed from the body).
///
/// An object with an `events` field is a batch, and that field must be a
/// list: `{"events": {...}}` is refused as such, not read as one event with
/// an unknown field `events`. Nothing may stand beside it.
///
/// Events stay text until [`RawEvent::parse_with`] reads each straight into
/// its fields: a tree of `serde_json::Value`s per event (a map, a string per
/// key and value) was a third of the request workers' CPU at 100k events/s,
/// in the allocator.
#[derive(Debug)]
pub enum Body<'a> {
    Batch { events: Vec<&'a RawValue> },
    One(&'a RawValue),
}

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Body<'de>, D::Error> {
        use serde::de::Error as _;
        let whole = <&RawValue>::deserialize(d)?;
        // Only the top level's keys are read here; anything but an object is one (bad) event.
        let Ok(top) = serde_json::from_str::<BTreeMap<Cow<'de, str>, &'de RawValue>>(whole.get()) else {
            return Ok(Body::One(whole));
        };
        let Some(events) = top.get("events") else {
            return Ok(Body::One(whole));
        };
        if let Some(other) = top.keys().find(|k| *k != "events") {
            return Err(D::Error::custom(format_args!(
                "unexpected field `{}` beside `events`: a batch is `{{\"events\": [...]}}` alone (labels go on each event)",
                other.chars().take(64).collect::<String>()
            )));
        }
        match serde_json::from_str::<Vec<&'de RawValue>>(events.get()) {
            Ok(events) => Ok(Body::Batch { events }),
            Err(_) => Err(D::Error::custom(format_args!(
                "`events` must be a list of events (`{{\"events\": [...]}}`), got {}",
                json_type(events)
            ))),
        }
    }
}

/// What a JSON value is, with an article, for error messages (read from its
/// first character: the text is valid JSON, without leading space).
fn json_type(value: &RawValue) -> &'static str {
    match value.get().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// What an event does, with exactly the fields its type needs.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Move the machine to state `to` (by name; the store checks it against the kind).
    Transition {
        to: String,
    },
    /// A call through a breaker; `failure_count` is the reporter's own count
    /// of failures in its window, when it has one.
    Call {
        outcome: CallOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure_count: Option<u64>,
    },
    Heartbeat,
    Job {
        result: JobResult,
        duration_seconds: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_seconds: Option<f64>,
    },
    /// The machine is in `state`, as the exporter decided: its heartbeat
    /// expired, so it goes to its kind's heartbeat-lost state. Not a sign of
    /// life. Never parsed from a request: it is applied even when the kind
    /// does not allow the move, and such a move is counted as unexpected.
    ///
    /// Logs written before [`Action::Polled`] existed hold polled states as
    /// this too; they replay as they were applied then.
    #[cfg_attr(feature = "schema", schemars(skip))]
    Observe {
        state: String,
    },
    /// The machine is in `state`, as a successful poll of its service saw it
    /// (see [`crate::poll`]). Never parsed from a request. What was observed
    /// is applied even when the kind does not allow the move (the exporter
    /// would otherwise stay stuck on a stale state), and such a move is
    /// counted as unexpected; a machine not known yet is created in `state`,
    /// with no transition. A successful poll is also proof of life: it counts
    /// as a heartbeat, and holds off heartbeat expiry for at least
    /// `alive_seconds` (the poll's interval plus its timeout, by when the
    /// next poll should have answered), so a poll interval at or above the
    /// heartbeat TTL does not flap the machine to its heartbeat-lost state.
    #[cfg_attr(feature = "schema", schemars(skip))]
    Polled {
        state: String,
        alive_seconds: f64,
    },
}

impl Action {
    pub fn event_type(&self) -> EventType {
        match self {
            Action::Transition { .. } => EventType::Transition,
            Action::Call { .. } => EventType::Call,
            Action::Heartbeat => EventType::Heartbeat,
            Action::Job { .. } => EventType::Job,
            Action::Observe { .. } | Action::Polled { .. } => EventType::Transition,
        }
    }
}

/// A checked event. Identity labels use only the configured names
/// ([`DEFAULT_IDENTITY_LABELS`] unless the config names others).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    pub machine: String,
    #[serde(flatten)]
    pub action: Action,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Per-machine sequence number, in the order the machine did things: an
    /// event with the seq last applied to its machine is a retry, one below
    /// it is stale (a newer report came first); neither is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Event id: an id seen recently is a retry and is not applied again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Event {
    /// An event with no labels, seq or id (demo, poller, heartbeat expiry).
    pub fn new(kind: &str, machine: &str, action: Action) -> Event {
        Event {
            kind: kind.to_owned(),
            machine: machine.to_owned(),
            action,
            labels: BTreeMap::new(),
            seq: None,
            id: None,
        }
    }

    pub fn with_labels(mut self, labels: &[(&str, &str)]) -> Event {
        self.labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self
    }
}

/// Why an event is malformed, before any state is consulted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EventError {
    #[error("{0}")]
    Json(String),
    #[error("field `{field}` is required for a {event_type} event")]
    Missing {
        event_type: &'static str,
        field: &'static str,
    },
    #[error("field `{field}` does not belong to a {event_type} event")]
    Unexpected {
        event_type: &'static str,
        field: &'static str,
    },
    #[error("machine id must be 1-{MAX_MACHINE_LEN} printable characters, got {0:?}")]
    BadMachine(String),
    #[error("label `{name}` is not an identity label; use one of: {}", allowed.join(", "))]
    BadLabelName { name: String, allowed: Vec<String> },
    #[error("label `{name}` value must be 1-{MAX_LABEL_VALUE_LEN} printable characters")]
    BadLabelValue { name: String },
    #[error("event id must be 1-{MAX_EVENT_ID_LEN} printable characters")]
    BadId,
    #[error("field `seq` must be at most {MAX_SEQ} (2^53 - 1), got {0}")]
    BadSeq(u64),
    #[error("field `{field}` must be a number of seconds from 0 to {MAX_JOB_SECONDS} (one year), got {value:?}")]
    BadSeconds { field: &'static str, value: f64 },
}

/// Non-empty, at most `max` characters (not bytes: the limits are documented
/// in characters), and no control characters.
pub(crate) fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// serde's message without " at line L column C": the position is in the
/// event's own text, which the sender does not see as such (the message
/// already names the event by its index in the batch).
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&position) {
        Some(bare) => bare.to_owned(),
        None => message,
    }
}

impl RawEvent {
    /// Parses one JSON value as an event, with the default identity labels.
    pub fn parse(value: serde_json::Value) -> Result<Event, EventError> {
        let defaults: Vec<String> = DEFAULT_IDENTITY_LABELS.iter().map(|l| (*l).to_owned()).collect();
        RawEvent::parse_with(&value.to_string(), &defaults)
    }

    /// Parses one event's JSON text as an event whose labels may be `identity_labels`.
    pub fn parse_with(json: &str, identity_labels: &[String]) -> Result<Event, EventError> {
        let raw: RawEvent = serde_json::from_str(json).map_err(|e| EventError::Json(without_position(&e)))?;
        raw.check(identity_labels)
    }

    /// Checks field presence and form; kinds and states are the store's business.
    pub fn check(mut self, identity_labels: &[String]) -> Result<Event, EventError> {
        let kind = self.kind.take().ok_or_else(|| self.missing("kind"))?;
        let machine = self.machine.take().ok_or_else(|| self.missing("machine"))?;
        if !printable(&machine, MAX_MACHINE_LEN) {
            return Err(EventError::BadMachine(machine));
        }
        self.refuse_foreign_fields()?;
        let action = self.action()?;
        let labels = self.labels.take().unwrap_or_default();
        check_labels(&labels, identity_labels)?;
        self.check_id_and_seq()?;
        Ok(Event {
            kind,
            machine,
            action,
            labels,
            seq: self.seq,
            id: self.id,
        })
    }

    fn missing(&self, field: &'static str) -> EventError {
        EventError::Missing {
            event_type: self.event_type.as_str(),
            field,
        }
    }

    /// Fields that belong to other event types are refused rather than
    /// ignored: a reporter sending `to` on a call event has a bug to see.
    fn refuse_foreign_fields(&self) -> Result<(), EventError> {
        let present = [
            ("to", self.to.is_some()),
            ("outcome", self.outcome.is_some()),
            ("failure_count", self.failure_count.is_some()),
            ("result", self.result.is_some()),
            ("duration_seconds", self.duration_seconds.is_some()),
            ("queue_seconds", self.queue_seconds.is_some()),
        ];
        let allowed: &[&str] = match self.event_type {
            EventType::Transition => &["to"],
            EventType::Call => &["outcome", "failure_count"],
            EventType::Heartbeat => &[],
            EventType::Job => &["result", "duration_seconds", "queue_seconds"],
        };
        match present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            Some((field, _)) => Err(EventError::Unexpected {
                event_type: self.event_type.as_str(),
                field,
            }),
            None => Ok(()),
        }
    }

    /// What the event says, from the fields of its type.
    fn action(&mut self) -> Result<Action, EventError> {
        Ok(match self.event_type {
            EventType::Transition => Action::Transition {
                to: self.to.take().ok_or_else(|| self.missing("to"))?,
            },
            EventType::Call => Action::Call {
                outcome: self.outcome.ok_or_else(|| self.missing("outcome"))?,
                failure_count: self.failure_count,
            },
            EventType::Heartbeat => Action::Heartbeat,
            EventType::Job => Action::Job {
                result: self.result.ok_or_else(|| self.missing("result"))?,
                duration_seconds: seconds("duration_seconds", self.duration_seconds)?
                    .ok_or_else(|| self.missing("duration_seconds"))?,
                queue_seconds: seconds("queue_seconds", self.queue_seconds)?,
            },
        })
    }

    fn check_id_and_seq(&self) -> Result<(), EventError> {
        if let Some(id) = &self.id
            && !printable(id, MAX_EVENT_ID_LEN)
        {
            return Err(EventError::BadId);
        }
        if let Some(seq) = self.seq.filter(|&s| s > MAX_SEQ) {
            return Err(EventError::BadSeq(seq));
        }
        Ok(())
    }
}

/// A job's seconds, if given, within 0 to [`MAX_JOB_SECONDS`].
fn seconds(field: &'static str, v: Option<f64>) -> Result<Option<f64>, EventError> {
    match v {
        Some(value) if !(0.0..=MAX_JOB_SECONDS).contains(&value) => Err(EventError::BadSeconds { field, value }),
        other => Ok(other),
    }
}

/// Labels must be identity labels, with printable values.
fn check_labels(labels: &BTreeMap<String, String>, identity_labels: &[String]) -> Result<(), EventError> {
    for (name, value) in labels {
        if !identity_labels.contains(name) {
            return Err(EventError::BadLabelName {
                name: name.clone(),
                allowed: identity_labels.to_vec(),
            });
        }
        if !printable(value, MAX_LABEL_VALUE_LEN) {
            return Err(EventError::BadLabelValue { name: name.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transition_needs_to_and_nothing_of_other_types() {
        let e = RawEvent::parse(json!({"type":"transition","kind":"worker","machine":"w1","to":"idle"})).unwrap();
        assert_eq!(e.action, Action::Transition { to: "idle".into() });
        let err = RawEvent::parse(json!({"type":"transition","kind":"worker","machine":"w1"})).unwrap_err();
        assert_eq!(err.to_string(), "field `to` is required for a transition event");
        let err = RawEvent::parse(
            json!({"type":"transition","kind":"worker","machine":"w1","to":"idle","outcome":"success"}),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "field `outcome` does not belong to a transition event");
    }

    #[test]
    fn serde_errors_name_the_field() {
        let err = RawEvent::parse(json!({"type":"call","kind":"circuit_breaker","machine":"a","outcome":"boom"}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant `boom`"), "{err}");
        let err = RawEvent::parse(json!({"type":"teleport","kind":"k","machine":"a"})).unwrap_err();
        assert!(err.to_string().contains("teleport"), "{err}");
        let err = RawEvent::parse(json!({"type":"heartbeat","kind":"k","machine":"a","colour":"red"})).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn labels_are_identity_labels_only() {
        let ok =
            RawEvent::parse(json!({"type":"heartbeat","kind":"worker","machine":"w","labels":{"worker_type":"gpu"}}));
        assert_eq!(ok.unwrap().labels["worker_type"], "gpu");
        let err = RawEvent::parse(json!({"type":"heartbeat","kind":"worker","machine":"w","labels":{"pod":"x"}}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "label `pod` is not an identity label; use one of: provider, key_id, worker_type, service"
        );
        // The config's identity labels replace the default ones.
        let own = ["team".to_owned(), "region".to_owned()];
        let team = json!({"type":"heartbeat","kind":"worker","machine":"w","labels":{"team":"payments"}});
        assert_eq!(
            RawEvent::parse_with(&team.to_string(), &own).unwrap().labels["team"],
            "payments"
        );
        let err = RawEvent::parse_with(
            r#"{"type":"heartbeat","kind":"worker","machine":"w","labels":{"provider":"x"}}"#,
            &own,
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("use one of: team, region"), "{err}");
    }

    #[test]
    fn job_durations_must_be_non_negative_and_finite() {
        let err = RawEvent::parse(
            json!({"type":"job","kind":"worker","machine":"w","result":"failed","duration_seconds":-1.0}),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            EventError::BadSeconds {
                field: "duration_seconds",
                ..
            }
        ));
    }

    #[test]
    fn job_durations_and_queue_waits_are_at_most_a_year() {
        let job = |d: f64, q: f64| {
            RawEvent::parse(json!({"type":"job","kind":"worker","machine":"w","result":"failed",
                "duration_seconds":d,"queue_seconds":q}))
        };
        assert!(job(MAX_JOB_SECONDS, MAX_JOB_SECONDS).is_ok());
        assert!(job(0.0, 0.0).is_ok());
        let err = job(1e308, 1.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `duration_seconds` must be a number of seconds from 0 to 31536000 (one year), got 1e308"
        );
        let err = job(1.0, MAX_JOB_SECONDS + 1.0).unwrap_err();
        assert!(
            matches!(
                err,
                EventError::BadSeconds {
                    field: "queue_seconds",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn machine_ids_are_printable_and_bounded() {
        let long = "x".repeat(MAX_MACHINE_LEN + 1);
        for bad in ["", "a\nb", long.as_str()] {
            let err = RawEvent::parse(json!({"type":"heartbeat","kind":"worker","machine":bad})).unwrap_err();
            assert!(matches!(err, EventError::BadMachine(_)), "{bad:?}");
        }
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        let heartbeat = |machine: &str, label: &str, id: &str| {
            RawEvent::parse(json!({"type":"heartbeat","kind":"worker","machine":machine,
                "labels":{"service":label},"id":id}))
        };
        // 128 two-byte characters: 256 bytes, within the limits.
        let most = "ж".repeat(MAX_MACHINE_LEN);
        assert!(heartbeat(&most, &most, &most).is_ok());
        let over = "ж".repeat(MAX_MACHINE_LEN + 1);
        assert!(matches!(heartbeat(&over, "x", "x"), Err(EventError::BadMachine(_))));
        assert!(matches!(
            heartbeat("x", &over, "x"),
            Err(EventError::BadLabelValue { .. })
        ));
        assert_eq!(heartbeat("x", "x", &over), Err(EventError::BadId));
    }

    #[test]
    fn a_body_is_one_event_or_a_list_of_events() {
        fn body(text: &str) -> Result<Body<'_>, serde_json::Error> {
            serde_json::from_str(text)
        }
        assert!(matches!(body(r#"{"events": [{}, {}]}"#), Ok(Body::Batch { events }) if events.len() == 2));
        assert!(matches!(body(r#"{"type": "heartbeat"}"#), Ok(Body::One(_))));
        assert!(matches!(body("[1]"), Ok(Body::One(_))));
        for (text, got) in [
            (r#"{"events": {"type": "heartbeat"}}"#, "an object"),
            (r#"{"events": null}"#, "null"),
            (r#"{"events": "x"}"#, "a string"),
        ] {
            let err = body(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "`events` must be a list of events (`{{\"events\": [...]}}`), got {got}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn checked_events_round_trip_through_the_log_format() {
        let e = RawEvent::parse(json!({"type":"job","kind":"worker","machine":"w","result":"succeeded",
            "duration_seconds":1.5,"seq":7,"labels":{"worker_type":"cpu"}}))
        .unwrap();
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }
}
