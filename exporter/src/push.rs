//! `POST /api/v1/events`: behind [`crate::api`]'s write guard (token from
//! the headers, body size and read timeout), the [`Events`] extractor owns
//! the checks of the request itself (content type, shape, each event's
//! fields), so the handler only submits and translates the outcome.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::Api;
use crate::events::{Body, Event, RawEvent};
use crate::ingest::{RETRY, SubmitError};
use crate::refusal::ApiError;
use crate::store::{Applied, ApplyError};
use crate::telemetry::Rejection;

/// The answer to a request that was applied: what became of its events.
#[derive(Serialize)]
pub struct Accepted {
    applied: usize,
    duplicates: usize,
    unchanged: usize,
    /// Applied transitions the machine's kind does not expect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unexpected: Vec<Value>,
    /// Events older (by `seq`) than a report applied before them: not applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale: Vec<Value>,
    /// Events whose labels differ from those the machine was created with:
    /// applied, without the labels (a machine's labels never change).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels_ignored: Vec<Value>,
}

/// The events of a `POST /api/v1/events`, checked in the order that costs
/// least: the content type, the size, the JSON shape, then each event's
/// fields (the token was checked from the headers before the body was read).
pub struct Events(Vec<Event>);

impl FromRequest<Arc<Api>> for Events {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Arc<Api>) -> Result<Events, ApiError> {
        let t = &api.telemetry;
        let refuse = |reason: Rejection, events: u64, status: StatusCode, message: String| {
            t.reject(reason, events);
            ApiError::new(status, message)
        };
        if let Err(message) = json_content_type(req.headers().get(header::CONTENT_TYPE)) {
            return Err(refuse(
                Rejection::Malformed,
                1,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message,
            ));
        }
        let body = match Bytes::from_request(req, api).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(refuse(
                    Rejection::TooLarge,
                    1,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body over {} bytes; send fewer events per request",
                        api.max_body_bytes
                    ),
                ));
            }
            Err(e) => return Err(refuse(Rejection::Malformed, 1, e.status(), e.body_text())),
        };
        let values = match serde_json::from_slice::<Body>(&body) {
            Ok(Body::Batch { events }) => events,
            Ok(Body::One(value)) => vec![value],
            // Well-formed JSON of the wrong shape (`{"events": {...}}`): the message says what is wrong.
            Err(e) if e.is_data() => {
                return Err(refuse(Rejection::Malformed, 1, StatusCode::BAD_REQUEST, e.to_string()));
            }
            Err(e) => {
                return Err(refuse(
                    Rejection::Malformed,
                    1,
                    StatusCode::BAD_REQUEST,
                    format!("invalid JSON: {e}"),
                ));
            }
        };
        let count = values.len() as u64;
        if values.is_empty() {
            return Err(refuse(
                Rejection::Malformed,
                1,
                StatusCode::BAD_REQUEST,
                "no events in the request".into(),
            ));
        }
        if values.len() > api.max_events {
            return Err(refuse(
                Rejection::TooLarge,
                count,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{} events in one request; at most {} are accepted",
                    values.len(),
                    api.max_events
                ),
            ));
        }
        let identity_labels = api.ingest.read().catalog().identity_labels().to_vec();
        let mut events = Vec::with_capacity(values.len());
        for (index, value) in values.into_iter().enumerate() {
            match RawEvent::parse_with(value, &identity_labels) {
                Ok(e) => events.push(e),
                Err(e) => {
                    let message = format!("event {index}: {e}; nothing in this request was applied");
                    return Err(
                        refuse(Rejection::Malformed, count, StatusCode::BAD_REQUEST, message).with("index", index)
                    );
                }
            }
        }
        Ok(Events(events))
    }
}

/// `application/json`, in any case, with no parameter but `charset=utf-8`
/// (JSON is UTF-8: RFC 8259 8.1). Other types, `application/*+json`
/// included, are refused: the body is this API's own format.
fn json_content_type(value: Option<&HeaderValue>) -> Result<(), String> {
    let expected = "send the events with Content-Type: application/json";
    let Some(value) = value else {
        return Err(format!("no Content-Type; {expected}"));
    };
    let text = value.to_str().unwrap_or("");
    let mut parts = text.split(';').map(str::trim);
    if !parts.next().is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        return Err(format!("Content-Type {text:?} is not JSON; {expected}"));
    }
    for param in parts.filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let utf8 = value.trim_matches('"').eq_ignore_ascii_case("utf-8");
        if !(name.trim().eq_ignore_ascii_case("charset") && utf8) {
            return Err(format!("Content-Type parameter {param:?} is not supported; {expected}"));
        }
    }
    Ok(())
}

pub async fn post_events(State(api): State<Arc<Api>>, Events(events): Events) -> Result<Json<Accepted>, ApiError> {
    let count = events.len() as u64;
    let t = &api.telemetry;
    let sent: Vec<_> = events
        .iter()
        .map(|e| (e.kind.clone(), e.machine.clone(), e.labels.clone()))
        .collect();
    match api.ingest.submit(events).await {
        Ok(applied) => {
            let mut answer = Accepted {
                applied: 0,
                duplicates: 0,
                unchanged: 0,
                unexpected: Vec::new(),
                stale: Vec::new(),
                labels_ignored: Vec::new(),
            };
            for (index, (a, (kind, machine, _))) in applied.iter().zip(&sent).enumerate() {
                match a {
                    Applied::Applied => answer.applied += 1,
                    Applied::Duplicate => answer.duplicates += 1,
                    Applied::Unchanged => answer.unchanged += 1,
                    Applied::Unexpected { from, to } => {
                        answer.applied += 1;
                        answer
                            .unexpected
                            .push(json!({ "index": index, "kind": kind, "machine": machine, "from": from, "to": to }));
                    }
                    Applied::Stale { seq, last_seq } => answer.stale.push(
                        json!({ "index": index, "kind": kind, "machine": machine, "seq": seq, "last_seq": last_seq }),
                    ),
                }
            }
            // A machine's labels are fixed when it is created, so reading
            // them after the batch gives exactly what each event was held to.
            let store = api.ingest.read();
            for (index, (kind, machine, labels)) in sent.iter().enumerate() {
                if let Some(m) = store.get(kind, machine)
                    && labels.iter().any(|(k, v)| m.labels.get(k) != Some(v))
                {
                    answer.labels_ignored.push(json!({
                        "index": index, "kind": kind, "machine": machine, "sent": labels, "kept": m.labels,
                    }));
                }
            }
            drop(store);
            Ok(Json(answer))
        }
        Err(SubmitError::Refused(e)) => {
            let (status, reason) = match &e {
                ApplyError::UnknownKind { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Rejection::UnknownKind),
                ApplyError::UnknownState { .. } => (StatusCode::UNPROCESSABLE_ENTITY, Rejection::UnknownState),
                ApplyError::Illegal(_) => (StatusCode::CONFLICT, Rejection::Illegal),
                ApplyError::TooManyMachines { .. } | ApplyError::TooManyLabelValues { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, Rejection::Limit)
                }
            };
            t.reject(reason, count);
            let mut refusal = ApiError::new(status, e.to_string())
                .with("index", e.index())
                .with("applied", 0);
            if let ApplyError::Illegal(i) = &e {
                refusal = refusal
                    .with("kind", i.kind.clone())
                    .with("machine", i.machine.clone())
                    .with("current", i.from.clone())
                    .with("to", i.to.clone())
                    .with("allowed", json!(i.allowed));
            }
            Err(refusal)
        }
        Err(e @ SubmitError::Crashed(_)) => {
            t.reject(Rejection::Unavailable, count);
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        Err(e) => {
            t.reject(Rejection::Unavailable, count);
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(RETRY.as_secs()))
        }
    }
}
