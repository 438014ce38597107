//! Who may call what: the bearer token writes need, and the basic-auth users
//! of `--web.config.file`, checked as exporter-toolkit checks them (bcrypt
//! hashes; a user that does not exist costs as much as a wrong password;
//! outcomes cached, since one bcrypt check costs tens of milliseconds).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::refusal::ApiError;
use crate::telemetry::Rejection;

/// The bearer token writes need, if one is set.
#[derive(Clone)]
pub struct WriteToken(pub Option<Arc<str>>);

/// Layer on the write routes: with a token set, a request without it is
/// refused from its headers, before any of its body is read (nothing of a
/// token-less upload is buffered).
pub async fn require_token(State(WriteToken(token)): State<WriteToken>, req: Request, next: Next) -> Response {
    match token {
        Some(token) if !bearer_matches(&token, req.headers()) => ApiError::unauthorized(
            "Bearer",
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        )
        .rejects(Rejection::Unauthorized, 1)
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in
/// constant time. The SHA-256 digests are compared, not the tokens:
/// comparing slices of different lengths returns at once, which would tell
/// an attacker the token's length.
pub fn bearer_matches(token: &str, headers: &HeaderMap) -> bool {
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

/// The user and password of an `Authorization: Basic ...` value.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Outcomes remembered, at most; the cache is emptied when full.
const CACHE_ENTRIES: usize = 100;
/// How long a request waits for its turn at bcrypt before a 503.
const CHECK_WAIT: Duration = Duration::from_secs(1);

/// The basic-auth users, with what protects the exporter from its own
/// password checks: one bcrypt at a time, and a bounded wait for it.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Checked for users that do not exist, so that their answers take as long.
    decoy: String,
    /// A request carrying the write token needs no password: the token is
    /// the stronger credential, and one `Authorization` header cannot hold both.
    token: Option<String>,
    cache: Mutex<HashMap<(String, String), bool>>,
    bcrypt: Arc<Semaphore>,
}

enum Check {
    Allowed,
    Denied,
    Busy,
}

impl BasicAuth {
    /// `users` map names to bcrypt hashes (already validated).
    pub fn new(users: BTreeMap<String, String>, token: Option<String>) -> BasicAuth {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash("statescope decoy password", cost).expect("bcrypt costs in the file were validated");
        BasicAuth {
            users,
            decoy,
            token,
            cache: Mutex::new(HashMap::new()),
            bcrypt: Arc::new(Semaphore::new(1)),
        }
    }

    async fn check(&self, user: String, password: String) -> Check {
        let key = (user, password);
        if let Some(ok) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return if *ok { Check::Allowed } else { Check::Denied };
        }
        let Ok(Ok(turn)) = tokio::time::timeout(CHECK_WAIT, self.bcrypt.clone().acquire_owned()).await else {
            return Check::Busy;
        };
        let hash = self.users.get(&key.0).cloned();
        let (decoy, password) = (self.decoy.clone(), key.1.clone());
        let ok = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let matched = bcrypt::verify(password, hash.as_deref().unwrap_or(&decoy)).unwrap_or(false);
            matched && hash.is_some()
        })
        .await
        .unwrap_or(false);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        if ok { Check::Allowed } else { Check::Denied }
    }
}

/// Middleware: every endpoint needs a basic-auth user (or the write token).
pub async fn require_basic_auth(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    if auth.token.as_deref().is_some_and(|t| bearer_matches(t, req.headers())) {
        return next.run(req).await;
    }
    let check = match basic_credentials(req.headers()) {
        Some((user, password)) => auth.check(user, password).await,
        None => Check::Denied,
    };
    match check {
        Check::Allowed => next.run(req).await,
        Check::Busy => ApiError::busy("too many password checks at once; retry shortly").into_response(),
        Check::Denied => {
            ApiError::unauthorized("Basic", "missing or wrong basic-auth user or password").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        for value in ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR  tok"] {
            assert_eq!(bearer_token(value), Some("tok"), "{value:?}");
        }
        for value in ["Basic tok", "Bearertok", "tok", "", "Bearer"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn basic_credentials_are_decoded_and_a_colon_may_be_in_the_password() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("prometheus:pa:ss");
        headers.insert(header::AUTHORIZATION, format!("basic {encoded}").parse().unwrap());
        assert_eq!(
            basic_credentials(&headers),
            Some(("prometheus".to_owned(), "pa:ss".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
    }
}
