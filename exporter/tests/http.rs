//! Every endpoint and every error case of the HTTP API, in process.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use statescope_exporter::api::{self, Api};
use statescope_exporter::config::{Config, Limits};
use statescope_exporter::encode::Compat;
use statescope_exporter::ingest::{Applier, Ingest, SnapshotPolicy};
use statescope_exporter::store::Store;
use statescope_exporter::telemetry::Telemetry;
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef-test-token";

struct App {
    router: Router,
    _dir: tempfile::TempDir,
    _applier: Applier,
}

fn app_with(config: Config, token: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let telemetry = Arc::new(Telemetry::default());
    let store = Store::new(config.catalog.clone(), config.limits.store());
    let (ingest, applier) = Ingest::open(
        dir.path().to_owned(),
        store,
        SnapshotPolicy::default(),
        telemetry.clone(),
    )
    .unwrap();
    let api = Arc::new(Api {
        ingest,
        telemetry,
        token: token.map(str::to_owned),
        compat: Compat::On,
        max_events: config.limits.max_events_per_request,
        max_body_bytes: config.limits.max_body_bytes,
    });
    App {
        router: api::router(api),
        _dir: dir,
        _applier: applier,
    }
}

fn app() -> App {
    app_with(Config::default(), None)
}

impl App {
    async fn call(&self, req: Request<Body>) -> (StatusCode, String, Option<String>) {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), ct)
    }

    async fn post(&self, body: impl Into<String>) -> (StatusCode, Value) {
        self.post_with(body, &[]).await
    }

    async fn post_with(&self, body: impl Into<String>, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = Request::post("/api/v1/events").header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (status, text, _) = self.call(req.body(Body::from(body.into())).unwrap()).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let (status, text, _) = self.call(Request::get(path).body(Body::empty()).unwrap()).await;
        (status, text)
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }
}

fn transition(machine: &str, to: &str) -> Value {
    json!({"type": "transition", "kind": "circuit_breaker", "machine": machine, "to": to})
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_legal_transition_is_applied_and_served_on_metrics() {
    let app = app();
    let (status, body) = app.post(transition("openai/key-1", "open").to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"applied": 1, "duplicates": 0, "unchanged": 0}));
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_state{kind="circuit_breaker",machine="openai/key-1",state="open"} 1"#
        ),
        "{m}"
    );
    assert!(
        has_line(
            &m,
            r#"circuit_breaker_state{provider="",key_id="openai/key-1",machine="openai/key-1"} 1"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn an_illegal_transition_is_a_409_naming_the_state_and_the_way_out_and_is_counted() {
    let app = app();
    app.post(transition("b", "open").to_string()).await;
    let (status, body) = app.post(transition("b", "closed").to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["machine"], "b");
    assert_eq!(body["current"], "open");
    assert_eq!(body["allowed"], json!(["half_open", "forced_open", "disabled"]));
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_illegal_transitions_total{kind="circuit_breaker",machine="b"} 1"#
        ),
        "{m}"
    );
    assert!(
        has_line(&m, r#"statescope_exporter_events_rejected_total{reason="illegal"} 1"#),
        "{m}"
    );
    assert!(has_line(
        &m,
        r#"statescope_state{kind="circuit_breaker",machine="b",state="open"} 1"#
    ));
}

#[tokio::test]
async fn a_batch_with_one_bad_event_applies_nothing() {
    let app = app();
    let batch = json!({"events": [transition("c", "open"), transition("c", "closed")]});
    let (status, body) = app.post(batch.to_string()).await;
    assert_eq!((status, body["index"].as_u64()), (StatusCode::CONFLICT, Some(1)));
    let (_, machines) = app.get("/api/v1/machines").await;
    assert_eq!(
        serde_json::from_str::<Value>(&machines).unwrap(),
        json!({"machines": []})
    );
}

#[tokio::test]
async fn malformed_requests_get_a_400_that_says_what_is_wrong() {
    let app = app();
    let cases = [
        ("{\"type\":\"transition\",", "invalid JSON"),
        (
            r#"{"type":"transition","kind":"circuit_breaker","machine":"a"}"#,
            "event 0: field `to` is required",
        ),
        (
            r#"{"events":[{"type":"heartbeat","kind":"worker","machine":"w"},{"type":"call","kind":"circuit_breaker","machine":"a","outcome":"maybe"}]}"#,
            "event 1: unknown variant `maybe`",
        ),
        (
            r#"{"type":"heartbeat","kind":"worker","machine":"w","colour":"red"}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"type":"heartbeat","kind":"worker","machine":"w","labels":{"pod":"x"}}"#,
            "label `pod` is not an identity label",
        ),
        (r#"{"events":[]}"#, "no events"),
    ];
    for (body, want) in cases {
        let (status, reply) = app.post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let msg = reply["error"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
    }
    let m = app.metrics().await;
    assert!(
        has_line(&m, r#"statescope_exporter_events_rejected_total{reason="malformed"} 7"#),
        "{m}"
    );
}

#[tokio::test]
async fn unknown_kinds_and_states_are_422_listing_what_exists() {
    let app = app();
    let (status, body) = app.post(r#"{"type":"heartbeat","kind":"toaster","machine":"t"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(r#"known kinds: ["circuit_breaker", "worker"]"#),
        "{body}"
    );
    let (status, body) = app.post(transition("a", "ajar").to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("half_open"), "{body}");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = app();
    let req = Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(transition("a", "open").to_string()))
        .unwrap();
    let (status, text, _) = app.call(req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
}

#[tokio::test]
async fn too_many_events_or_too_many_bytes_are_413() {
    let config = Config {
        limits: Limits {
            max_events_per_request: 3,
            max_body_bytes: 2048,
            ..Limits::default()
        },
        ..Config::default()
    };
    let app = app_with(config, None);
    let events: Vec<_> = (0..4).map(|i| transition(&format!("m{i}"), "open")).collect();
    let (status, body) = app.post(json!({ "events": events }).to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("at most 3"), "{body}");
    let big = json!({"type": "heartbeat", "kind": "worker", "machine": "x".repeat(3000)}).to_string();
    let (status, body) = app.post(big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("over 2048 bytes"), "{body}");
    // And it keeps serving.
    let (status, _) = app.post(transition("ok", "open").to_string()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_machine_and_label_caps_answer_429_and_keep_existing_machines_working() {
    let config = Config {
        limits: Limits {
            max_machines: 2,
            max_label_values: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let app = app_with(config, None);
    let labelled = |m: &str, key: &str| json!({"type": "transition", "kind": "circuit_breaker", "machine": m, "to": "open", "labels": {"key_id": key}});
    assert_eq!(app.post(labelled("a", "k1").to_string()).await.0, StatusCode::OK);
    assert_eq!(app.post(labelled("b", "k2").to_string()).await.0, StatusCode::OK);
    let (status, body) = app.post(transition("c", "open").to_string()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("machine limit reached (2 machines)"),
        "{body}"
    );
    let relabel = json!({"type": "heartbeat", "kind": "circuit_breaker", "machine": "a", "labels": {"key_id": "k3"}});
    let (status, body) = app.post(relabel.to_string()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body["error"].as_str().unwrap().contains("label \"key_id\""), "{body}");
    assert_eq!(
        app.post(transition("a", "half_open").to_string()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn retries_with_the_same_id_or_an_old_seq_are_not_counted_twice() {
    let app = app();
    let call = json!({"type": "call", "kind": "circuit_breaker", "machine": "a", "outcome": "failure", "id": "req-1"});
    assert_eq!(app.post(call.to_string()).await.1["applied"], 1);
    assert_eq!(
        app.post(call.to_string()).await.1,
        json!({"applied": 0, "duplicates": 1, "unchanged": 0})
    );
    let seq =
        |n: u64| json!({"type": "call", "kind": "circuit_breaker", "machine": "a", "outcome": "success", "seq": n});
    assert_eq!(app.post(seq(7).to_string()).await.1["applied"], 1);
    assert_eq!(app.post(seq(7).to_string()).await.1["duplicates"], 1);
    assert_eq!(app.post(seq(6).to_string()).await.1["duplicates"], 1);
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_breaker_calls_total{kind="circuit_breaker",machine="a",outcome="failure"} 1"#
        ),
        "{m}"
    );
    assert!(
        has_line(
            &m,
            r#"statescope_breaker_calls_total{kind="circuit_breaker",machine="a",outcome="success"} 1"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn with_a_token_writes_need_it_and_reads_do_not() {
    let app = app_with(Config::default(), Some(TOKEN));
    let body = transition("a", "open").to_string();
    let req = Request::post("/api/v1/events").header(header::CONTENT_TYPE, "application/json");
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::from(body.clone())).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _) = app
        .post_with(body.clone(), &[("authorization", "Bearer wrong-token-wrong-token")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post_with(body, &[("authorization", &format!("Bearer {TOKEN}"))])
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/metrics", "/api/v1/machines", "/api/v1/kinds", "/healthz", "/readyz"] {
        assert_eq!(app.get(path).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn machines_and_kinds_are_listed_as_json() {
    let config = Config::parse(
        std::path::Path::new("t.toml"),
        r#"
        [[kinds]]
        name = "payment_job"
        initial = "queued"
        states = [{ name = "queued" }, { name = "running" }, { name = "failed", severity = "critical" }]
        transitions = [["queued", "running"], ["*", "failed"]]
        "#,
    )
    .unwrap();
    let app = app_with(config, None);
    let batch = json!({"events": [
        transition("cb", "open"),
        {"type": "transition", "kind": "payment_job", "machine": "p1", "to": "running"},
        {"type": "heartbeat", "kind": "worker", "machine": "w1", "labels": {"worker_type": "gpu"}},
    ]});
    assert_eq!(app.post(batch.to_string()).await.0, StatusCode::OK);
    let (status, text) = app.get("/api/v1/machines?kind=payment_job").await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["machines"].as_array().unwrap().len(), 1);
    assert_eq!(list["machines"][0]["state"], "running");
    let (_, text) = app.get("/api/v1/machines?state=starting").await;
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["machines"][0]["machine"], "w1");
    assert_eq!(list["machines"][0]["labels"]["worker_type"], "gpu");
    assert_eq!(app.get("/api/v1/machines?kind=toaster").await.0, StatusCode::NOT_FOUND);
    let (_, text) = app.get("/api/v1/kinds").await;
    let kinds: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<_> = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["circuit_breaker", "worker", "payment_job"]);
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_transition_allowed{kind="payment_job",from="running",to="failed"} 1"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn metrics_speak_prometheus_text_or_openmetrics_as_asked() {
    let app = app();
    app.post(transition("a", "open").to_string()).await;
    let (_, text, ct) = app.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(ct.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(text.contains("# TYPE statescope_transitions_total counter"));
    let req = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let (_, text, ct) = app.call(req).await;
    assert_eq!(
        ct.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(text.contains("# TYPE statescope_transitions counter"));
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let app = app();
    assert_eq!(app.get("/healthz").await, (StatusCode::OK, "ok\n".into()));
    assert_eq!(app.get("/readyz").await, (StatusCode::OK, "ready\n".into()));
    let (status, text) = app.get("/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("no such endpoint"));
    app.get("/nope").await;
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_exporter_http_requests_total{method="GET",route="other",status="404"} 2"#
        ),
        "{m}"
    );
}
