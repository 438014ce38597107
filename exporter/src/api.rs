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

use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, FromRef, MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{BoxError, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use statescope_model::contract::{CallOutcome, JobResult};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::auth::{WriteToken, require_token};
use crate::config::Compat;
use crate::ingest::{Condition, Ingest, RETRY};
use crate::push::post_events;
use crate::refusal::{ApiError, count_rejections, json_refusals};
use crate::scrape::{self, Scrapes};
use crate::store::{Machine, MachineKey, Store};
use crate::telemetry::{Rejection, Telemetry};
use crate::web::Limits;
use statescope_model::Kind;

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

/// Time a request body may take to arrive, from the end of its headers.
#[derive(Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// The router's state: the handlers take the parts they need.
#[derive(Clone)]
struct Shared {
    api: Arc<Api>,
    body_read_timeout: BodyReadTimeout,
}

impl FromRef<Shared> for Arc<Api> {
    fn from_ref(shared: &Shared) -> Arc<Api> {
        shared.api.clone()
    }
}

impl FromRef<Shared> for BodyReadTimeout {
    fn from_ref(shared: &Shared) -> BodyReadTimeout {
        shared.body_read_timeout
    }
}

/// The API with the default [`Limits`].
pub fn router(api: Arc<Api>) -> Router {
    router_with(api, &Limits::default())
}

/// The API, with the limits that apply per request: writes in progress and
/// their body read timeout, scrapes in progress.
pub fn router_with(api: Arc<Api>, limits: &Limits) -> Router {
    let shared = Shared {
        api: api.clone(),
        body_read_timeout: BodyReadTimeout(limits.body_read_timeout),
    };
    Router::new()
        .route("/api/v1/events", writes(&api, limits.max_writes))
        .route("/api/v1/machines", get(machines))
        .route("/api/v1/kinds", get(kinds))
        .route(
            "/metrics",
            get(scrape::metrics).layer(Extension(Scrapes(Arc::new(Semaphore::new(limits.max_scrapes))))),
        )
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route("/", get(index))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see GET /") })
        .layer(axum::extract::DefaultBodyLimit::max(api.max_body_bytes))
        .layer(middleware::from_fn(json_refusals))
        .layer(middleware::from_fn_with_state(api.telemetry.clone(), count_rejections))
        .layer(middleware::from_fn_with_state(api.clone(), count_requests))
        .with_state(shared)
}

/// `POST /api/v1/events` behind, outermost first: shedding past
/// `max_writes` (refused at once: a request waiting for a slot would hold
/// its body), then the token; both answer from the headers, before any of
/// the body is read.
fn writes(api: &Api, max_writes: usize) -> MethodRouter<Shared> {
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: BoxError| async {
            ApiError::busy("too many writes in progress; retry after the Retry-After seconds")
                .rejects(Rejection::Overloaded, 1)
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(max_writes));
    let token = WriteToken(api.token.as_deref().map(Arc::from));
    post(post_events)
        .route_layer(middleware::from_fn_with_state(token, require_token))
        .route_layer(shed)
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

/// A page of machines asked for, checked.
struct PageRequest {
    kind: Option<String>,
    state: Option<String>,
    limit: usize,
    after: Option<MachineKey>,
}

impl PageRequest {
    fn parse(query: Result<Query<MachineQuery>, QueryRejection>) -> Result<PageRequest, ApiError> {
        let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        let limit = q.limit.unwrap_or(MACHINES_PAGE);
        if !(1..=MACHINES_PAGE_MAX).contains(&limit) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("limit must be 1 to {MACHINES_PAGE_MAX} (default {MACHINES_PAGE})"),
            ));
        }
        let after = match q.after.as_deref().map(|a| a.split_once('/')) {
            None => None,
            Some(Some((kind, machine))) => Some(MachineKey {
                kind: kind.to_owned(),
                machine: machine.to_owned(),
            }),
            Some(None) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "after must be the `next` of the previous page (kind/machine)",
                ));
            }
        };
        Ok(PageRequest {
            kind: q.kind,
            state: q.state,
            limit,
            after,
        })
    }

    /// Where in (kind, machine) order the page starts.
    fn start(&self) -> Bound<MachineKey> {
        match (&self.after, &self.kind) {
            (Some(after), _) => Bound::Excluded(after.clone()),
            (None, Some(kind)) => Bound::Included(MachineKey {
                kind: kind.clone(),
                machine: String::new(),
            }),
            (None, None) => Bound::Unbounded,
        }
    }
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

impl MachineJson {
    fn of(key: &MachineKey, m: &Machine, kind: &Kind) -> MachineJson {
        MachineJson {
            kind: key.kind.clone(),
            machine: key.machine.clone(),
            state: kind.state_name(m.state).to_owned(),
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
        }
    }
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
async fn machines(
    State(api): State<Arc<Api>>,
    query: Result<Query<MachineQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let request = PageRequest::parse(query)?;
    let json = tokio::task::spawn_blocking(move || {
        let page = copy_page(&api.ingest.read(), &request)?;
        serde_json::to_vec(&page).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing machines failed: {e}"),
        )
    })??;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response())
}

/// The page asked for, or why not (404: an unknown kind).
fn copy_page(store: &Store, request: &PageRequest) -> Result<MachinePage, ApiError> {
    if let Some(kind) = &request.kind
        && store.catalog().get(kind).is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown kind {kind:?}; known kinds: {:?}", store.catalog().names()),
        ));
    }
    let mut page = MachinePage {
        machines: Vec::new(),
        next: None,
    };
    for (key, m, kind) in listed(store, request) {
        if page.machines.len() == request.limit {
            // One more matches: there is a next page, starting after the last one listed.
            page.next = page
                .machines
                .last()
                .map(|last| format!("{}/{}", last.kind, last.machine));
            break;
        }
        page.machines.push(MachineJson::of(key, m, kind));
    }
    Ok(page)
}

/// The machines from the page's start on that match its kind and state.
fn listed<'a>(
    store: &'a Store,
    request: &'a PageRequest,
) -> impl Iterator<Item = (&'a MachineKey, &'a Machine, &'a Kind)> + 'a {
    store
        .machines()
        .range((request.start(), Bound::Unbounded))
        // Keys are in kind order: past the kind asked for, nothing more matches.
        .take_while(|(key, _)| request.kind.as_ref().is_none_or(|kind| key.kind <= *kind))
        .filter(|(key, _)| request.kind.as_ref().is_none_or(|kind| key.kind == *kind))
        .filter_map(|(key, m)| Some((key, m, store.catalog().get(&key.kind)?)))
        .filter(|(_, m, kind)| request.state.as_ref().is_none_or(|s| s == kind.state_name(m.state)))
}

async fn kinds(State(api): State<Arc<Api>>) -> Json<Value> {
    let store = api.ingest.read();
    let kinds: Vec<_> = store.catalog().all().iter().map(|k| k.to_spec()).collect();
    Json(json!({ "kinds": kinds }))
}
