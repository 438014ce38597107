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

use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::encode::{self, Compat, Format};
use crate::events::{JobResult, Outcome};
use crate::ingest::{Condition, Ingest, RETRY};
use crate::push::post_events;
use crate::refusal::{ApiError, json_refusals};
use crate::telemetry::Telemetry;

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

fn error(status: StatusCode, message: String) -> Response {
    ApiError::new(status, message).into_response()
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
    use super::stream_blocking;

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
}
