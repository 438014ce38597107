//! Refusals: one error type, [`ApiError`], that every handler, extractor and
//! layer answers with (status, message and any further fields, always as
//! JSON, and why the events were refused), a layer that counts those reasons
//! in the exporter's own metrics, and one that gives axum's own refusals
//! (405, a bad query string) the same JSON shape.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::telemetry::{Rejection, Telemetry};

/// A refusal: its status, a JSON body `{"error": "...", ...}`, the headers
/// that tell the client what to do next, and why its events were refused.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Map<String, Value>,
    retry_after: Option<u64>,
    /// The `WWW-Authenticate` scheme of a 401.
    challenge: Option<&'static str>,
    /// The rest of the request may still be arriving: end the connection.
    close: bool,
    rejected: Option<Rejected>,
}

/// Events refused and why, carried on the response to [`count_rejections`].
#[derive(Clone, Copy, Debug)]
pub struct Rejected {
    pub reason: Rejection,
    pub events: u64,
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
            challenge: None,
            close: false,
            rejected: None,
        }
    }

    /// 503 with `Retry-After: 1`: the exporter is at a limit, the client should back off.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).retry_after(1)
    }

    /// 401 asking for credentials of `scheme` (`Bearer`, `Basic`).
    pub fn unauthorized(scheme: &'static str, message: impl Into<String>) -> ApiError {
        let mut refusal = ApiError::new(StatusCode::UNAUTHORIZED, message);
        refusal.challenge = Some(scheme);
        refusal
    }

    /// Counts `events` refused events under `reason`.
    pub fn rejects(mut self, reason: Rejection, events: u64) -> ApiError {
        self.rejected = Some(Rejected { reason, events });
        self
    }

    /// Adds a field to the body beside `error`.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> ApiError {
        self.body.insert(field.into(), value.into());
        self
    }

    /// Tells the client when to try again (503).
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Ends the connection after the answer (the rest of a body may still come).
    pub fn close_connection(mut self) -> ApiError {
        self.close = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(Value::Object(self.body))).into_response();
        let headers = r.headers_mut();
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(scheme) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
        }
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(rejected) = self.rejected {
            r.extensions_mut().insert(rejected);
        }
        r
    }
}

/// Counts the events of every refused request under its reason, wherever
/// in the stack it was refused (the shedding of writes, the token check, the
/// body, the applier).
pub async fn count_rejections(State(telemetry): State<Arc<Telemetry>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if let Some(r) = response.extensions().get::<Rejected>() {
        telemetry.reject(r.reason, r.events);
    }
    response
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

/// axum's own refusals (405 with an empty body, a plain-text 400 from a bad
/// query string, ...) get the same JSON shape as ours.
pub async fn json_refusals(req: Request, next: Next) -> Response {
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

#[cfg(test)]
mod tests {
    use super::{MAX_MESSAGE_CHARS, clip};

    #[test]
    fn long_messages_lose_their_middle_and_keep_their_end() {
        let short = "field `to` is required".to_owned();
        assert_eq!(clip(short.clone()), short);
        let long = format!(
            "invalid type: string \"{}\", expected u64 at line 1 column 900012",
            "x".repeat(900_000)
        );
        let clipped = clip(long);
        assert!(clipped.chars().count() < MAX_MESSAGE_CHARS + 40, "{clipped}");
        assert!(clipped.starts_with("invalid type: string \"xxx"), "{clipped}");
        assert!(clipped.ends_with("expected u64 at line 1 column 900012"), "{clipped}");
        assert!(clipped.contains("characters cut"), "{clipped}");
    }
}
