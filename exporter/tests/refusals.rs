//! Refusals as the API documents them: only `application/json` is taken,
//! nothing unexpected beside `events`, every refusal (axum's own too) is a
//! JSON body, a huge bad value is not echoed back, a bogus `seq` cannot
//! poison a machine, and a scrape whose encoding panics fails visibly.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use statescope_exporter::wal::RealDisk;
use support::{App, TOKEN, app_on, transition};

fn app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (app_on(Arc::new(RealDisk), dir.path(), None), dir)
}

#[tokio::test]
async fn only_json_is_taken_and_the_refusal_says_so() {
    let (app, _dir) = app();
    let body = transition("a", "open").to_string();
    let req = Request::post("/api/v1/events").body(Body::from(body.clone())).unwrap();
    let answer = app.call(req).await;
    assert_eq!(
        answer.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no Content-Type: {}",
        answer.text
    );
    assert!(answer.json()["error"].as_str().unwrap().contains("no Content-Type"));
    for refused in [
        "application/jsonp",
        "application/json-seq",
        "application/vnd.api+json",
        "text/json",
        "application/json; charset=latin1",
        "application/json; boundary=x",
    ] {
        let answer = app.post_as(refused, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{refused}: {}",
            answer.text
        );
        assert!(answer.json()["error"].as_str().unwrap().contains("application/json"));
    }
    for taken in [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
    ] {
        let answer = app.post_as(taken, body.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{taken}: {}", answer.text);
    }
}

#[tokio::test]
async fn a_field_beside_events_is_a_400_naming_it() {
    let (app, _dir) = app();
    let answer = app
        .post(json!({"events": [transition("a", "open")], "labels": {}}).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("unexpected field `labels` beside `events`"),
        "{}",
        answer.text
    );
    assert!(app.machines().await.is_empty(), "nothing of it was applied");
}

#[tokio::test]
async fn every_refusal_is_json_axums_own_included() {
    let (app, _dir) = app();
    let cases = [
        (
            Method::DELETE,
            "/api/v1/events",
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (
            Method::POST,
            "/metrics",
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (Method::GET, "/nope", StatusCode::NOT_FOUND, "no such endpoint"),
        (
            Method::GET,
            "/api/v1/machines?kind=a&kind=b",
            StatusCode::BAD_REQUEST,
            "kind",
        ),
    ];
    for (method, path, status, says) in cases {
        let answer = app
            .call(
                Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.text);
        assert_eq!(
            answer.headers[header::CONTENT_TYPE],
            "application/json",
            "{method} {path}"
        );
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{method} {path}: {error}");
    }
    // 405 says what is allowed in its header.
    let answer = app
        .call(Request::delete("/api/v1/events").body(Body::empty()).unwrap())
        .await;
    assert_eq!(answer.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn a_huge_bad_value_is_not_echoed_back() {
    let (app, _dir) = app();
    let huge = "x".repeat(900_000);
    for body in [
        json!({"type": "heartbeat", "kind": "worker", "machine": huge}),
        json!({"type": "call", "kind": "circuit_breaker", "machine": "a", "outcome": huge}),
        json!({"type": "heartbeat", "kind": "worker", "machine": "w", "seq": huge}),
    ] {
        let answer = app.post(body.to_string()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.text.len() < 600, "a {} byte answer", answer.text.len());
        assert!(
            answer.json()["error"].as_str().unwrap().contains("characters cut"),
            "{}",
            answer.text
        );
    }
    let answer = app
        .post(json!({"type": "heartbeat", "kind": huge, "machine": "w"}).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.text.len() < 600, "a {} byte answer", answer.text.len());
}

#[tokio::test]
async fn a_seq_no_client_can_exceed_is_refused_and_the_machine_keeps_working() {
    let (app, _dir) = app();
    let with_seq = |to: &str, seq: u64| {
        let mut e = transition("b1", to);
        e["seq"] = json!(seq);
        e.to_string()
    };
    for seq in [u64::MAX, (1 << 53) + 1] {
        let answer = app.post(with_seq("open", seq)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{seq}: {}", answer.text);
        assert!(
            answer.json()["error"]
                .as_str()
                .unwrap()
                .contains("`seq` must be at most 9007199254740991")
        );
    }
    let answer = app.post(with_seq("open", 1)).await;
    assert_eq!(
        (answer.status, answer.json()["applied"].clone()),
        (StatusCode::OK, json!(1)),
        "{}",
        answer.text
    );
    let answer = app.post(with_seq("half_open", (1 << 53) - 1)).await;
    assert_eq!(answer.json()["applied"], 1, "{}", answer.text);
}

#[tokio::test]
async fn tokens_of_any_length_but_the_right_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_on(Arc::new(RealDisk), dir.path(), Some(TOKEN));
    let post = |token: String| {
        Request::post("/api/v1/events")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(transition("a", "open").to_string()))
            .unwrap()
    };
    for wrong in [
        String::new(),
        "0".into(),
        TOKEN[..TOKEN.len() - 1].into(),
        format!("{TOKEN}x"),
        TOKEN.to_uppercase(),
    ] {
        let answer = app.call(post(wrong.clone())).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
        answer.json();
    }
    assert_eq!(app.call(post(TOKEN.into())).await.status, StatusCode::OK);
}
