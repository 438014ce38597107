//! `GET /`, `/healthz` and `/readyz`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::Api;
use crate::ingest::{Condition, RETRY};
use crate::refusal::ApiError;

pub(super) async fn index() -> Json<Value> {
    Json(json!({
        "name": "statescope-exporter",
        "endpoints": ["POST /api/v1/events", "GET /api/v1/machines", "GET /api/v1/kinds", "GET /metrics", "GET /healthz", "GET /readyz"],
    }))
}

/// Alive unless the applier crashed (a restart is then the only way out).
pub(super) async fn alive(State(api): State<Arc<Api>>) -> Response {
    match api.ingest.condition() {
        Condition::Crashed(why) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
        _ => "ok\n".into_response(),
    }
}

/// Ready when writes can be persisted.
pub(super) async fn ready(State(api): State<Arc<Api>>) -> Response {
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
