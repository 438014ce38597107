//! What the API's handlers share: the [`Api`] and the router's state, from
//! which each handler extracts the part it needs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::config::Compat;
use crate::ingest::Ingest;
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

/// Time a request body may take to arrive, from the end of its headers.
#[derive(Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// The router's state: the handlers take the parts they need.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) api: Arc<Api>,
    pub(super) body_read_timeout: BodyReadTimeout,
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
