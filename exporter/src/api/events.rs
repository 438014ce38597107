//! `POST /api/v1/events`: behind [`crate::api`]'s layers (writes shed past
//! their limit, then the token, both from the headers), the [`Events`]
//! extractor owns the checks of the request itself (size, read timeout,
//! content type, shape, each event's fields), so the handler only submits
//! and tells what became of each event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::state::{Api, BodyReadTimeout};
use crate::events::{Body, Event, RawEvent};
use crate::ingest::{RETRY, SubmitError};
use crate::refusal::ApiError;
use crate::store::{Applied, ApplyError, Store};
use crate::telemetry::Rejection;

/// Applies the events and answers what became of each.
pub async fn post_events(State(api): State<Arc<Api>>, Events(events): Events) -> Result<Json<Accepted>, ApiError> {
    let sent = Sent::of(&events);
    let applied = api.ingest.submit(events).await.map_err(|e| refusal(e, sent.0.len()))?;
    Ok(Json(Accepted::new(&applied, &sent, &api.ingest.read())))
}

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

/// What each event of a request named (kept, since the events go to the applier).
struct Sent(Vec<(String, String, BTreeMap<String, String>)>);

impl Sent {
    fn of(events: &[Event]) -> Sent {
        Sent(
            events
                .iter()
                .map(|e| (e.kind.clone(), e.machine.clone(), e.labels.clone()))
                .collect(),
        )
    }
}

impl Accepted {
    /// `store` is read after the batch: a machine's labels are fixed when it
    /// is created, so they are exactly what each event was held to.
    fn new(applied: &[Applied], sent: &Sent, store: &Store) -> Accepted {
        let mut answer = Accepted {
            applied: 0,
            duplicates: 0,
            unchanged: 0,
            unexpected: Vec::new(),
            stale: Vec::new(),
            labels_ignored: Vec::new(),
        };
        answer.tally(applied, sent);
        answer.list_labels_ignored(sent, store);
        answer
    }

    fn tally(&mut self, applied: &[Applied], sent: &Sent) {
        for (index, (a, (kind, machine, _))) in applied.iter().zip(&sent.0).enumerate() {
            match a {
                Applied::Applied => self.applied += 1,
                Applied::Duplicate => self.duplicates += 1,
                Applied::Unchanged => self.unchanged += 1,
                Applied::Unexpected { from, to } => {
                    self.applied += 1;
                    self.unexpected
                        .push(json!({ "index": index, "kind": kind, "machine": machine, "from": from, "to": to }));
                }
                Applied::Stale { seq, last_seq } => self.stale.push(
                    json!({ "index": index, "kind": kind, "machine": machine, "seq": seq, "last_seq": last_seq }),
                ),
            }
        }
    }

    fn list_labels_ignored(&mut self, sent: &Sent, store: &Store) {
        for (index, (kind, machine, labels)) in sent.0.iter().enumerate() {
            if let Some(m) = store.get(kind, machine)
                && labels
                    .iter()
                    .any(|(k, v)| m.labels.get(k).as_deref() != Some(v.as_str()))
            {
                self.labels_ignored.push(json!({
                    "index": index, "kind": kind, "machine": machine, "sent": labels, "kept": m.labels,
                }));
            }
        }
    }
}

/// The refusal of a batch the applier did not take; none of its `events` was kept.
fn refusal(e: SubmitError, events: usize) -> ApiError {
    let events = events as u64;
    match e {
        SubmitError::Refused(e) => refused_by_store(&e).rejects(store_rejection(&e), events),
        e @ SubmitError::Crashed(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).rejects(Rejection::Unavailable, events)
        }
        e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            .retry_after(RETRY.as_secs())
            .rejects(Rejection::Unavailable, events),
    }
}

fn store_rejection(e: &ApplyError) -> Rejection {
    match e {
        ApplyError::UnknownKind { .. } => Rejection::UnknownKind,
        ApplyError::UnknownState { .. } => Rejection::UnknownState,
        ApplyError::Illegal(_) => Rejection::Illegal,
        ApplyError::TooManyMachines { .. } | ApplyError::TooManyLabelValues { .. } => Rejection::Limit,
    }
}

/// 422 unknown kind or state, 409 an illegal transition (with the way out),
/// 429 a cardinality cap; each says which event.
fn refused_by_store(e: &ApplyError) -> ApiError {
    let status = match e {
        ApplyError::UnknownKind { .. } | ApplyError::UnknownState { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ApplyError::Illegal(_) => StatusCode::CONFLICT,
        ApplyError::TooManyMachines { .. } | ApplyError::TooManyLabelValues { .. } => StatusCode::TOO_MANY_REQUESTS,
    };
    let refusal = ApiError::new(status, e.to_string())
        .with("index", e.index())
        .with("applied", 0);
    match e {
        ApplyError::Illegal(i) => refusal
            .with("kind", i.kind.clone())
            .with("machine", i.machine.clone())
            .with("current", i.from.clone())
            .with("to", i.to.clone())
            .with("allowed", json!(i.allowed)),
        _ => refusal,
    }
}

/// The events of a `POST /api/v1/events`, checked in the order that costs
/// least: the declared size, the body (read whole within the body read
/// timeout and the size limit), the content type, the JSON shape, then each
/// event's fields. The token was checked from the headers before.
pub struct Events(Vec<Event>);

impl<S> FromRequest<S> for Events
where
    S: Send + Sync,
    Arc<Api>: FromRef<S>,
    BodyReadTimeout: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Events, ApiError> {
        let api = Arc::<Api>::from_ref(state);
        let BodyReadTimeout(timeout) = BodyReadTimeout::from_ref(state);
        check_declared_size(req.headers(), api.max_body_bytes)?;
        let (parts, body) = req.into_parts();
        let body = read_body(body, api.max_body_bytes, timeout).await?;
        json_content_type(parts.headers.get(header::CONTENT_TYPE))
            .map_err(|message| malformed(StatusCode::UNSUPPORTED_MEDIA_TYPE, 1, message))?;
        let values = batch(&body, api.max_events)?;
        let identity_labels = api.ingest.read().catalog().identity_labels().to_vec();
        parse_each(values, &identity_labels).map(Events)
    }
}

fn malformed(status: StatusCode, events: u64, message: impl Into<String>) -> ApiError {
    ApiError::new(status, message).rejects(Rejection::Malformed, events)
}

fn too_large(max_body_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over {max_body_bytes} bytes; send fewer events per request"),
    )
    .rejects(Rejection::TooLarge, 1)
}

/// A body declared bigger than the limit is refused before any of it is read.
fn check_declared_size(headers: &HeaderMap, max_body_bytes: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > max_body_bytes as u64 => Err(too_large(max_body_bytes)),
        _ => Ok(()),
    }
}

/// The whole body, within `timeout` and `max_body_bytes`.
async fn read_body(body: HttpBody, max_body_bytes: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max_body_bytes)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large(max_body_bytes)),
        Ok(Err(e)) => Err(malformed(
            StatusCode::BAD_REQUEST,
            1,
            format!("reading the request body failed: {e}"),
        )),
        // The rest of the body may still come: this connection is done.
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {}",
                humantime::format_duration(timeout)
            ),
        )
        .close_connection()
        .rejects(Rejection::Timeout, 1)),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The events' JSON values: one event or `{"events": [...]}`, at least one
/// and at most `max_events`.
fn batch(body: &[u8], max_events: usize) -> Result<Vec<&RawValue>, ApiError> {
    let values = match serde_json::from_slice::<Body>(body) {
        Ok(Body::Batch { events }) => events,
        Ok(Body::One(value)) => vec![value],
        // Well-formed JSON of the wrong shape (`{"events": {...}}`): the message says what is wrong.
        Err(e) if e.is_data() => return Err(malformed(StatusCode::BAD_REQUEST, 1, e.to_string())),
        Err(e) => return Err(malformed(StatusCode::BAD_REQUEST, 1, format!("invalid JSON: {e}"))),
    };
    if values.is_empty() {
        return Err(malformed(StatusCode::BAD_REQUEST, 1, "no events in the request"));
    }
    if values.len() > max_events {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one request; at most {max_events} are accepted",
                values.len()
            ),
        )
        .rejects(Rejection::TooLarge, values.len() as u64));
    }
    Ok(values)
}

/// Each value as an event; the first that is not refuses the whole request.
fn parse_each(values: Vec<&RawValue>, identity_labels: &[String]) -> Result<Vec<Event>, ApiError> {
    let count = values.len() as u64;
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            RawEvent::parse_with(value.get(), identity_labels).map_err(|e| {
                let message = format!("event {index}: {e}; nothing in this request was applied");
                malformed(StatusCode::BAD_REQUEST, count, message).with("index", index)
            })
        })
        .collect()
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
