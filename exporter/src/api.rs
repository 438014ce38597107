//! The HTTP API: the push endpoint, JSON reads of machines and kinds,
//! `/metrics`, and health checks.
//!
//! Every refusal is JSON `{"error": "..."}` ([`ApiError`]) with a status
//! that says whose problem it is: 400 malformed, 401 no or wrong token, 404
//! no such endpoint, 405 wrong method, 409 an illegal transition (with the
//! machine's state and where it may go), 413 too big, 415 not JSON, 422
//! unknown kind or state, 429 a cardinality cap, 500 the applier crashed, 503
//! the exporter cannot persist now.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::encode::{self, Compat, Format};
use crate::events::{Body, Event, JobResult, Outcome, RawEvent};
use crate::ingest::{Condition, Ingest, RETRY, SubmitError};
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
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route("/", get(index))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see GET /".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(json_refusals))
        .layer(middleware::from_fn_with_state(api.clone(), count_requests))
        .with_state(api)
}

/// A refusal: its status and a JSON body `{"error": "...", ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Map<String, Value>,
    retry_after: Option<u64>,
}

/// Longest `error` message sent: a refused value is quoted in the message,
/// and a 1 MB bad value must not come back whole.
const MAX_MESSAGE_CHARS: usize = 240;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), Value::String(clip(message.into())));
        ApiError {
            status,
            body,
            retry_after: None,
        }
    }

    /// Adds a field to the body beside `error`.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> ApiError {
        self.body.insert(field.into(), value.into());
        self
    }

    /// Tells the client when to try again (503).
    fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(Value::Object(self.body))).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Cuts the middle out of a message too long to send back (it quotes a huge
/// value); the end stays, since serde says there where in the body it was.
fn clip(message: String) -> String {
    let chars = message.chars().count();
    if chars <= MAX_MESSAGE_CHARS {
        return message;
    }
    let (head, tail) = (MAX_MESSAGE_CHARS * 2 / 3, MAX_MESSAGE_CHARS / 4);
    let start: String = message.chars().take(head).collect();
    let end: String = message.chars().skip(chars - tail).collect();
    format!("{start}… [{} characters cut] …{end}", chars - head - tail)
}

fn error(status: StatusCode, message: String) -> Response {
    ApiError::new(status, message).into_response()
}

/// axum's own refusals (405 with an empty body, a plain-text 400 from a bad
/// query string, ...) get the same JSON shape as ours.
async fn json_refusals(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let mut message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_lowercase()
    } else {
        text
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds the `Allow` header after this layer.
        message.push_str("; the Allow header says which methods this endpoint takes, GET / lists them all");
    }
    let mut refusal = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            refusal.headers_mut().insert(name, value.clone());
        }
    }
    refusal
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

/// Alive unless the applier crashed (a restart is then the only way out).
async fn alive(State(api): State<Arc<Api>>) -> Response {
    match api.ingest.condition() {
        Condition::Crashed(why) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
        _ => "ok\n".into_response(),
    }
}

/// Ready when writes can be persisted.
async fn ready(State(api): State<Arc<Api>>) -> Response {
    match api.ingest.condition() {
        Condition::Healthy => "ready\n".into_response(),
        Condition::CannotPersist(why) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the event log cannot be written ({why}); retried every second"),
        )
        .retry_after(RETRY.as_secs())
        .into_response(),
        Condition::Crashed(why) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
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
    let body = stream_blocking(move |emit| {
        let store = api.ingest.read();
        encode::encode_chunked(&store, &api.telemetry, api.compat, format, METRICS_CHUNK_BYTES, emit);
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))],
        body,
    )
        .into_response()
}

/// A body that `produce` writes on a blocking thread, streamed as it comes.
///
/// If `produce` panics, the body ends in an error instead of a clean end: the
/// server then cuts the connection, so a scraper records a failed scrape
/// rather than accepting a truncated page as the whole truth.
fn stream_blocking(produce: impl FnOnce(&mut dyn FnMut(String)) + Send + 'static) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::task::spawn_blocking(move || {
        // A scraper that hung up leaves nobody to send to; the rest is dropped.
        produce(&mut |chunk| {
            let _ = tx.send(chunk);
        })
    });
    let pieces = futures_util::stream::unfold((rx, Some(task)), |(mut rx, task)| async move {
        if let Some(chunk) = rx.recv().await {
            return Some((Ok(chunk), (rx, task)));
        }
        // Every chunk is out: the encoder ended, by returning or by a panic.
        match task?.await {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "encoding a scrape failed; cutting the response off");
                let failed = std::io::Error::other(format!("encoding the response failed: {e}"));
                Some((Err(failed), (rx, None)))
            }
        }
    });
    axum::body::Body::from_stream(pieces)
}

/// Checks the bearer token in constant time. The SHA-256 digests are
/// compared, not the tokens: comparing slices of different lengths returns
/// at once, which would tell an attacker the token's length.
fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    let Some(token) = &api.token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest(given).as_ref().ct_eq(digest(token).as_ref()).into()
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
}

/// The events of a `POST /api/v1/events`, checked in the order that costs
/// least: the token from the headers (before the body is read), the content
/// type, the size, the JSON shape, then each event's fields.
pub struct Events(Vec<Event>);

impl FromRequest<Arc<Api>> for Events {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Arc<Api>) -> Result<Events, ApiError> {
        let t = &api.telemetry;
        let refuse = |reason: Rejection, events: u64, status: StatusCode, message: String| {
            t.reject(reason, events);
            ApiError::new(status, message)
        };
        if !authorized(api, req.headers()) {
            return Err(refuse(
                Rejection::Unauthorized,
                1,
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
            ));
        }
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
        let mut events = Vec::with_capacity(values.len());
        for (index, value) in values.into_iter().enumerate() {
            match RawEvent::parse(value) {
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

async fn post_events(State(api): State<Arc<Api>>, Events(events): Events) -> Result<Json<Accepted>, ApiError> {
    let count = events.len() as u64;
    let t = &api.telemetry;
    match api.ingest.submit(events).await {
        Ok(applied) => {
            let n = |w| applied.iter().filter(|a| **a == w).count();
            Ok(Json(Accepted {
                applied: n(Applied::Applied),
                duplicates: n(Applied::Duplicate),
                unchanged: n(Applied::Unchanged),
            }))
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
    illegal_transitions: u64,
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
            illegal_transitions: m.illegal,
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
    use super::{bearer_token, stream_blocking};

    /// A panic while encoding must fail the scrape (a truncated page that
    /// ends cleanly is accepted by Prometheus as the whole truth). Checked as
    /// a client sees it, over a socket.
    #[tokio::test]
    async fn a_panic_while_streaming_a_body_cuts_the_response_off() {
        let app = axum::Router::new()
            .route(
                "/whole",
                axum::routing::get(|| async { stream_blocking(|emit| emit("all of it\n".into())) }),
            )
            .route(
                "/panics",
                axum::routing::get(|| async {
                    stream_blocking(|emit| {
                        emit("# the first families\n".into());
                        panic!("injected panic while encoding");
                    })
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let whole = client.get(format!("http://{addr}/whole")).send().await.unwrap();
        assert_eq!(whole.text().await.unwrap(), "all of it\n");
        // The status may or may not have gone out before the panic; either
        // way the client must not end up with a complete-looking page.
        let cut = async { client.get(format!("http://{addr}/panics")).send().await?.text().await }.await;
        assert!(cut.is_err(), "the client took a truncated body as complete: {cut:?}");
    }

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
