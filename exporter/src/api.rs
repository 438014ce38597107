//! The HTTP API: the push endpoint, JSON reads of machines and kinds,
//! `/metrics`, and health checks.
//!
//! Every refusal is JSON `{"error": "..."}` with a status that says whose
//! problem it is: 400 malformed, 401 no or wrong token, 408 a body slower
//! than the body read timeout, 409 a transition a strict kind does not
//! expect (with the machine's state and where it may go; other kinds apply
//! it and list it under `unexpected`), 413 too big, 415 not JSON, 422
//! unknown kind or state, 429 a cardinality cap, 503 the exporter cannot
//! persist or is busy (with `Retry-After`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use statescope_model::contract::{CallOutcome, JobResult};
use tokio::sync::{Semaphore, mpsc};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::auth::bearer_matches;
use crate::encode::{self, Compat, Format};
use crate::ingest::{Condition, Ingest, RETRY};
use crate::push::post_events;
use crate::refusal::{ApiError, json_refusals};
use crate::store::MachineKey;
use crate::telemetry::{Rejection, Telemetry};
use crate::web::Limits;

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

/// The API with the default [`Limits`].
pub fn router(api: Arc<Api>) -> Router {
    router_with(api, &Limits::default())
}

/// The API, with the limits that apply per request: writes in progress and
/// their body read timeout, scrapes in progress.
pub fn router_with(api: Arc<Api>, limits: &Limits) -> Router {
    let max_body = api.max_body_bytes;
    let telemetry = api.telemetry.clone();
    // Outermost on the write route: past max_writes, refuse at once, before
    // the body is read (a request waiting for a slot would hold its body).
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |_: BoxError| {
            let telemetry = telemetry.clone();
            async move {
                telemetry.reject(Rejection::Overloaded, 1);
                busy("too many writes in progress; retry after the Retry-After seconds".into())
            }
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_writes));
    let guard = middleware::from_fn_with_state((api.clone(), limits.body_read_timeout), guard_write);
    Router::new()
        .route("/api/v1/events", post(post_events).route_layer(guard).route_layer(shed))
        .route("/api/v1/machines", get(machines))
        .route("/api/v1/kinds", get(kinds))
        .route(
            "/metrics",
            get(metrics).layer(Extension(Scrapes(Arc::new(Semaphore::new(limits.max_scrapes))))),
        )
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route("/", get(index))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see GET /".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(json_refusals))
        .layer(middleware::from_fn_with_state(api.clone(), count_requests))
        .with_state(api)
}

pub(crate) fn error(status: StatusCode, message: String) -> Response {
    ApiError::new(status, message).into_response()
}

/// 503 with `Retry-After`: the exporter is at a limit, the client should back off.
pub(crate) fn busy(message: String) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
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
/// Pieces waiting for the scraper, at most, before the encoder keeps them itself.
const METRICS_QUEUE: usize = 4;

/// The `/metrics` answers that may be in progress at once; one permit is
/// held by the encoder and by the body until the last byte is sent (or the
/// scraper goes), so a storm of scrapers that never read holds at most this
/// many bodies in memory.
#[derive(Clone)]
struct Scrapes(Arc<Semaphore>);

/// `/metrics`: encoded on a blocking thread (a 10k-machine body takes
/// milliseconds of CPU that would otherwise stall this async worker's other
/// requests) and streamed as it is written, so on a multi-core machine the
/// body goes out while the rest is still being encoded. The store's read
/// lock is held only for the encoding, never while waiting on a slow
/// scraper: pieces the scraper has not taken yet wait with the encoder, and
/// once the lock is released the encoder waits for the scraper.
async fn metrics(State(api): State<Arc<Api>>, Extension(scrapes): Extension<Scrapes>, headers: HeaderMap) -> Response {
    let Ok(permit) = scrapes.0.try_acquire_owned() else {
        return busy("too many /metrics answers in progress; retry after the Retry-After seconds".into());
    };
    let permit = Arc::new(permit);
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = stream_blocking(permit, move |emit| {
        let store = api.ingest.read();
        encode::encode_chunked(&store, &api.telemetry, api.compat, format, METRICS_CHUNK_BYTES, emit);
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))],
        body,
    )
        .into_response()
}

/// A body that `produce` writes on a blocking thread (the read lock it takes
/// is released when it returns), streamed as the scraper takes it; `permit`
/// is held until the last piece is out.
///
/// If `produce` panics, the body ends in an error instead of a clean end: the
/// server then cuts the connection, so a scraper records a failed scrape
/// rather than accepting a truncated page as the whole truth.
fn stream_blocking<P: Send + Sync + 'static>(
    permit: Arc<P>,
    produce: impl FnOnce(&mut dyn FnMut(String)) + Send + 'static,
) -> axum::body::Body {
    let (tx, rx) = mpsc::channel::<Bytes>(METRICS_QUEUE);
    let encoder_permit = permit.clone();
    let encoder = tokio::task::spawn_blocking(move || {
        let _permit = encoder_permit;
        let mut waiting = std::collections::VecDeque::new();
        produce(&mut |chunk| {
            waiting.push_back(Bytes::from(chunk));
            hand_over(&tx, &mut waiting);
        });
        for chunk in waiting {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    // After the last piece, the encoder's outcome: a panic must end the
    // body with an error (the connection is cut), not as if it were complete.
    let pieces = futures_util::stream::unfold((rx, Some(encoder), permit), |(mut rx, encoder, permit)| async move {
        if let Some(chunk) = rx.recv().await {
            return Some((Ok(chunk), (rx, encoder, permit)));
        }
        match encoder?.await {
            Ok(()) => None,
            Err(e) => Some((
                Err(std::io::Error::other(format!("encoding /metrics failed: {e}"))),
                (rx, None, permit),
            )),
        }
    });
    axum::body::Body::from_stream(pieces)
}

/// Passes the waiting pieces to the scraper as far as its queue has room,
/// without blocking; drops them all once the scraper has gone.
fn hand_over(tx: &mpsc::Sender<Bytes>, waiting: &mut std::collections::VecDeque<Bytes>) {
    while let Some(chunk) = waiting.pop_front() {
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                waiting.push_front(chunk);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                waiting.clear();
                return;
            }
        }
    }
}

/// In front of `POST /api/v1/events`: the token is checked from the headers
/// before any of the body is read (a token-less upload is refused at once,
/// nothing buffered), then the body is read within the body read timeout
/// and the size limit, so the handler gets it whole.
async fn guard_write(State((api, body_timeout)): State<(Arc<Api>, Duration)>, req: Request, next: Next) -> Response {
    let t = &api.telemetry;
    if let Some(token) = &api.token
        && !bearer_matches(token, req.headers())
    {
        t.reject(Rejection::Unauthorized, 1);
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let too_large = || {
        t.reject(Rejection::TooLarge, 1);
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body over {} bytes; send fewer events per request",
                api.max_body_bytes
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.max_body_bytes as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(body_timeout, axum::body::to_bytes(body, api.max_body_bytes)).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if is_length_limit(&e) => return too_large(),
        Ok(Err(e)) => {
            t.reject(Rejection::Malformed, 1);
            return error(StatusCode::BAD_REQUEST, format!("reading the request body failed: {e}"));
        }
        Err(_) => {
            t.reject(Rejection::Timeout, 1);
            let mut r = error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(body_timeout)
                ),
            );
            // The rest of the body may still come: this connection is done.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
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

/// Machines per page of `GET /api/v1/machines` when `limit` is not given, and at most.
pub const MACHINES_PAGE: usize = 1000;
pub const MACHINES_PAGE_MAX: usize = 10_000;

#[derive(Deserialize)]
struct MachineQuery {
    kind: Option<String>,
    state: Option<String>,
    limit: Option<usize>,
    /// The `next` of the previous page: `kind/machine`.
    after: Option<String>,
}

/// One machine as `GET /api/v1/machines` lists it, copied out of the store
/// so that it is serialised after the store's lock is released.
#[derive(Serialize)]
struct MachineJson {
    kind: String,
    machine: String,
    state: String,
    severity: &'static str,
    since: f64,
    labels: BTreeMap<String, String>,
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

#[derive(Serialize)]
struct MachinePage {
    machines: Vec<MachineJson>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /api/v1/machines`: one page, in (kind, machine) order. The page is
/// copied out under the store's read lock and serialised after it is
/// released, both on a blocking thread: a page of 10,000 machines takes
/// milliseconds that would stall this async worker's other requests.
async fn machines(State(api): State<Arc<Api>>, query: Result<Query<MachineQuery>, QueryRejection>) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(MACHINES_PAGE);
    if !(1..=MACHINES_PAGE_MAX).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit must be 1 to {MACHINES_PAGE_MAX} (default {MACHINES_PAGE})"),
        );
    }
    let after = match q.after.as_deref().map(|a| a.split_once('/')) {
        None => None,
        Some(Some((kind, machine))) => Some(MachineKey {
            kind: kind.to_owned(),
            machine: machine.to_owned(),
        }),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "after must be the `next` of the previous page (kind/machine)".into(),
            );
        }
    };
    let page = tokio::task::spawn_blocking(move || {
        let page = copy_page(&api, &q, after.as_ref(), limit)?;
        serde_json::to_vec(&page).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    match page {
        Ok(Ok(json)) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json,
        )
            .into_response(),
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing machines failed: {e}"),
        ),
    }
}

/// The page `q` asks for, or why not (404: an unknown kind).
fn copy_page(
    api: &Api,
    q: &MachineQuery,
    after: Option<&MachineKey>,
    limit: usize,
) -> Result<MachinePage, (StatusCode, String)> {
    let store = api.ingest.read();
    if let Some(kind) = &q.kind
        && store.catalog().get(kind).is_none()
    {
        return Err((
            StatusCode::NOT_FOUND,
            format!("unknown kind {kind:?}; known kinds: {:?}", store.catalog().names()),
        ));
    }
    let start = match (after, &q.kind) {
        (Some(after), _) => Bound::Excluded(after.clone()),
        (None, Some(kind)) => Bound::Included(MachineKey {
            kind: kind.clone(),
            machine: String::new(),
        }),
        (None, None) => Bound::Unbounded,
    };
    let mut page = MachinePage {
        machines: Vec::new(),
        next: None,
    };
    for (key, m) in store.machines().range((start, Bound::Unbounded)) {
        if let Some(kind) = &q.kind {
            match key.kind.cmp(kind) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => {}
                std::cmp::Ordering::Greater => break,
            }
        }
        let Some(kind) = store.catalog().get(&key.kind) else {
            continue;
        };
        let state = kind.state_name(m.state);
        if q.state.as_ref().is_some_and(|s| s != state) {
            continue;
        }
        if page.machines.len() == limit {
            // One more matches: there is a next page, starting after the last one listed.
            page.next = page
                .machines
                .last()
                .map(|last| format!("{}/{}", last.kind, last.machine));
            break;
        }
        page.machines.push(MachineJson {
            kind: key.kind.clone(),
            machine: key.machine.clone(),
            state: state.to_owned(),
            severity: kind.severity(m.state).as_str(),
            since: m.since,
            labels: m.labels.clone(),
            transitions: m.transitions.values().sum(),
            unexpected_transitions: m.unexpected,
            calls: m
                .has_calls()
                .then(|| CallOutcome::ALL.iter().map(|o| o.as_str()).zip(m.calls).collect()),
            failures: (m.has_calls() || key.kind == statescope_model::builtin::CIRCUIT_BREAKER).then_some(m.failures),
            jobs: m
                .has_jobs()
                .then(|| JobResult::ALL.iter().map(|r| r.as_str()).zip(m.jobs).collect()),
            last_heartbeat: m.last_heartbeat,
        });
    }
    Ok(page)
}

async fn kinds(State(api): State<Arc<Api>>) -> Json<Value> {
    let store = api.ingest.read();
    let kinds: Vec<_> = store.catalog().all().iter().map(|k| k.to_spec()).collect();
    Json(json!({ "kinds": kinds }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::stream_blocking;

    /// A panic while encoding must fail the scrape (a truncated page that
    /// ends cleanly is accepted by Prometheus as the whole truth). Checked as
    /// a client sees it, over a socket.
    #[tokio::test]
    async fn a_panic_while_streaming_a_body_cuts_the_response_off() {
        let app = axum::Router::new()
            .route(
                "/whole",
                axum::routing::get(|| async { stream_blocking(Arc::new(()), |emit| emit("all of it\n".into())) }),
            )
            .route(
                "/panics",
                axum::routing::get(|| async {
                    stream_blocking(Arc::new(()), |emit| {
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
