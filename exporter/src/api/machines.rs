//! `GET /api/v1/machines` (paged, copied under the store's lock and
//! serialised off it) and `GET /api/v1/kinds`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use statescope_model::Kind;
use statescope_model::contract::{CallOutcome, JobResult};

use super::state::Api;
use crate::refusal::ApiError;
use crate::store::{Machine, MachineKey, Store};

/// Machines per page of `GET /api/v1/machines` when `limit` is not given, and at most.
pub const MACHINES_PAGE: usize = 1000;
pub const MACHINES_PAGE_MAX: usize = 10_000;

#[derive(Deserialize)]
pub(super) struct MachineQuery {
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
            labels: m.labels.to_map(),
            transitions: m.transitions.total(),
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
pub(super) async fn machines(
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

pub(super) async fn kinds(State(api): State<Arc<Api>>) -> Json<Value> {
    let store = api.ingest.read();
    let kinds: Vec<_> = store.catalog().all().iter().map(|k| k.to_spec()).collect();
    Json(json!({ "kinds": kinds }))
}
