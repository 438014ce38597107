//! The HTTP API: the push endpoint, JSON reads of machines and kinds,
//! `/metrics`, and health checks.
//!
//! Every refusal is JSON `{"error": "..."}` with a status that says whose
//! problem it is: 400 malformed, 401 no or wrong token, 409 a transition a
//! strict kind does not expect (with the machine's state and where it may
//! go; other kinds apply it and list it under `unexpected`), 413 too big,
//! 415 not JSON, 422 unknown kind or state, 429 a cardinality cap, 503 the
//! exporter cannot persist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::encode::{self, Compat, Format};
use crate::events::{Body, EventError, JobResult, Outcome, RawEvent};
use crate::ingest::{Ingest, SubmitError};
use crate::store::{Applied, ApplyError};
use crate::telemetry::{Rejection, Telemetry};

/// What the handlers share.
pub struct Api {
    pub ingest: Ingest,
    pub telemetry: Arc<Telemetry>,
    /// Bearer token the write endpoint requires, if any.
    pub token: Option<String>,
    pub compat: Compat,
    pub max_events: usize,
    pub max_body_bytes: usize,
}

pub fn router(api: Arc<Api>) -> Router {
    let max_body = api.max_body_bytes;
    Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/machines", get(machines))
        .route("/api/v1/kinds", get(kinds))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/", get(index))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see GET /".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(api.clone(), count_requests))
        .with_state(api)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn count_requests(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The route template, not the raw path: unknown paths must not create series.
    let route: &'static str = match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/api/v1/events") => "/api/v1/events",
        Some("/api/v1/machines") => "/api/v1/machines",
        Some("/api/v1/kinds") => "/api/v1/kinds",
        Some("/metrics") => "/metrics",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/") => "/",
        _ => "other",
    };
    let response = next.run(req).await;
    api.telemetry
        .request(&method, route, response.status().as_u16(), started.elapsed());
    response
}

async fn index() -> Json<Value> {
    Json(json!({
        "name": "statescope-exporter",
        "endpoints": ["POST /api/v1/events", "GET /api/v1/machines", "GET /api/v1/kinds", "GET /metrics", "GET /healthz", "GET /readyz"],
    }))
}

async fn ready(State(api): State<Arc<Api>>) -> Response {
    if api.ingest.is_healthy() {
        "ready\n".into_response()
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event log cannot be written; see the exporter's log".into(),
        )
    }
}

/// Pieces of a `/metrics` body sent as soon as they are encoded.
const METRICS_CHUNK_BYTES: usize = 256 * 1024;

/// `/metrics`: encoded on a blocking thread (a 10k-machine body takes
/// milliseconds of CPU that would otherwise stall this async worker's other
/// requests) and streamed as it is written, so on a multi-core machine the
/// body goes out while the rest is still being encoded. The pieces queue
/// unbounded: the store's read lock is held only for the encoding, never
/// while waiting on a slow scraper.
async fn metrics(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::task::spawn_blocking(move || {
        let store = api.ingest.read();
        // A scraper that hung up leaves nobody to send to; the rest is dropped.
        encode::encode_chunked(
            &store,
            &api.telemetry,
            api.compat,
            format,
            METRICS_CHUNK_BYTES,
            &mut |chunk| {
                let _ = tx.send(chunk);
            },
        );
    });
    let pieces = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))],
        axum::body::Body::from_stream(pieces),
    )
        .into_response()
}

/// Checks the bearer token in constant time.
fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    let Some(token) = &api.token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 11.1: `bearer`, `BEARER`), and one or more
/// spaces separate it from the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

#[derive(Serialize)]
struct Accepted {
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

async fn post_events(
    State(api): State<Arc<Api>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    debug_assert_eq!(method, Method::POST);
    let t = &api.telemetry;
    if !authorized(&api, &headers) {
        t.reject(Rejection::Unauthorized, 1);
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !ct
            .to_str()
            .is_ok_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
    {
        t.reject(Rejection::Malformed, 1);
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the events as Content-Type: application/json".into(),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            t.reject(Rejection::TooLarge, 1);
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body over {} bytes; send fewer events per request",
                    api.max_body_bytes
                ),
            );
        }
        Err(e) => {
            t.reject(Rejection::Malformed, 1);
            return error(e.status(), e.body_text());
        }
    };
    let values = match serde_json::from_slice::<Body>(&body) {
        Ok(Body::Batch { events }) => events,
        Ok(Body::One(value)) => vec![value],
        // Well-formed JSON of the wrong shape (`{"events": {...}}`): the message says what is wrong.
        Err(e) if e.is_data() => {
            t.reject(Rejection::Malformed, 1);
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
        Err(e) => {
            t.reject(Rejection::Malformed, 1);
            return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}"));
        }
    };
    let count = values.len() as u64;
    if values.is_empty() {
        t.reject(Rejection::Malformed, 1);
        return error(StatusCode::BAD_REQUEST, "no events in the request".into());
    }
    if values.len() > api.max_events {
        t.reject(Rejection::TooLarge, count);
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one request; at most {} are accepted",
                values.len(),
                api.max_events
            ),
        );
    }
    let identity_labels = api.ingest.read().catalog().identity_labels().to_vec();
    let mut events = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        match RawEvent::parse_with(value, &identity_labels) {
            Ok(e) => events.push(e),
            Err(e) => {
                t.reject(Rejection::Malformed, count);
                return event_error(index, &e);
            }
        }
    }
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
            Json(answer).into_response()
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
            let mut body = json!({ "error": e.to_string(), "index": e.index(), "applied": 0 });
            if let ApplyError::Illegal(i) = &e {
                body["kind"] = json!(i.kind);
                body["machine"] = json!(i.machine);
                body["current"] = json!(i.from);
                body["to"] = json!(i.to);
                body["allowed"] = json!(i.allowed);
            }
            (status, Json(body)).into_response()
        }
        Err(e) => {
            t.reject(Rejection::Unavailable, count);
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

fn event_error(index: usize, e: &EventError) -> Response {
    let body = json!({ "error": format!("event {index}: {e}; nothing in this request was applied"), "index": index });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

#[derive(Deserialize)]
struct MachineQuery {
    kind: Option<String>,
    state: Option<String>,
}

/// One machine as `GET /api/v1/machines` lists it.
#[derive(Serialize)]
struct MachineJson<'a> {
    kind: &'a str,
    machine: &'a str,
    state: &'a str,
    severity: &'static str,
    since: f64,
    labels: &'a BTreeMap<String, String>,
    transitions: u64,
    unexpected_transitions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    calls: Option<BTreeMap<&'static str, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<BTreeMap<&'static str, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_heartbeat: Option<f64>,
}

async fn machines(State(api): State<Arc<Api>>, Query(q): Query<MachineQuery>) -> Response {
    let store = api.ingest.read();
    if let Some(kind) = &q.kind
        && store.catalog().get(kind).is_none()
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown kind {kind:?}; known kinds: {:?}", store.catalog().names()),
        );
    }
    let mut list = Vec::new();
    for (key, m) in store.machines() {
        if q.kind.as_ref().is_some_and(|k| *k != key.kind) {
            continue;
        }
        let Some(kind) = store.catalog().get(&key.kind) else {
            continue;
        };
        let state = kind.state_name(m.state);
        if q.state.as_ref().is_some_and(|s| s != state) {
            continue;
        }
        list.push(MachineJson {
            kind: &key.kind,
            machine: &key.machine,
            state,
            severity: kind.severity(m.state).as_str(),
            since: m.since,
            labels: &m.labels,
            transitions: m.transitions.values().sum(),
            unexpected_transitions: m.unexpected,
            calls: m
                .has_calls()
                .then(|| Outcome::ALL.iter().map(|o| o.as_str()).zip(m.calls).collect()),
            failures: (m.has_calls() || key.kind == statescope_model::builtin::CIRCUIT_BREAKER).then_some(m.failures),
            jobs: m
                .has_jobs()
                .then(|| JobResult::ALL.iter().map(|r| r.as_str()).zip(m.jobs).collect()),
            last_heartbeat: m.last_heartbeat,
        });
    }
    Json(json!({ "machines": list })).into_response()
}

async fn kinds(State(api): State<Arc<Api>>) -> Json<Value> {
    let store = api.ingest.read();
    let kinds: Vec<_> = store.catalog().all().iter().map(|k| k.to_spec()).collect();
    Json(json!({ "kinds": kinds }))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        for value in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR  tok"] {
            assert_eq!(bearer_token(value), Some("tok"), "{value:?}");
        }
        for value in ["Basic tok", "Bearertok", "tok", "", "Bearer"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
