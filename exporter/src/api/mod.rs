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

mod events;
mod health;
mod machines;
pub mod scrape;
mod state;

pub use machines::{MACHINES_PAGE, MACHINES_PAGE_MAX};
pub use state::{Api, BodyReadTimeout};

use std::sync::Arc;
use std::time::Instant;

use axum::BoxError;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Extension, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use self::events::post_events;
use self::scrape::Scrapes;
use self::state::Shared;
use crate::auth::{WriteToken, require_token};
use crate::refusal::{ApiError, count_rejections, json_refusals};
use crate::telemetry::Rejection;
use crate::web::Limits;

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
        .route("/api/v1/machines", get(machines::machines))
        .route("/api/v1/kinds", get(machines::kinds))
        .route(
            "/metrics",
            get(scrape::metrics).layer(Extension(Scrapes(Arc::new(Semaphore::new(limits.max_scrapes))))),
        )
        .route("/healthz", get(health::alive))
        .route("/readyz", get(health::ready))
        .route("/", get(health::index))
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
