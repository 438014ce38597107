//! Every endpoint and every error case of the HTTP API, in process, and
//! requests real clients send that once went wrong: odd HTTP methods, `Accept`
//! q-values, a lower-case `bearer`, non-ASCII machine ids, an `events` object
//! instead of a list, absurd job durations.

mod support;

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use statescope_exporter::api;
use statescope_exporter::config::{Config, Limits};
use statescope_exporter::ingest::Applier;
use support::{TOKEN, transition};
use tower::ServiceExt;

struct App {
    router: Router,
    _dir: tempfile::TempDir,
    _applier: Applier,
}

fn app_with(config: Config, token: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let (api, applier) = support::api_in(dir.path(), &config, token).unwrap();
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
async fn a_reported_transition_is_a_fact_applied_and_an_unexpected_one_is_listed_and_counted() {
    let app = app();
    // pybreaker's close() on an open breaker: a manual move, applied, nothing unexpected.
    app.post(transition("b", "open").to_string()).await;
    let (status, body) = app.post(transition("b", "closed").to_string()).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({"applied": 1, "duplicates": 0, "unchanged": 0}))
    );
    // A worker's starting -> draining is in neither its flow nor a manual move: applied, and said so.
    app.post(json!({"type": "heartbeat", "kind": "worker", "machine": "w"}).to_string())
        .await;
    let batch = json!({"events": [
        json!({"type": "heartbeat", "kind": "worker", "machine": "w"}),
        json!({"type": "transition", "kind": "worker", "machine": "w", "to": "draining"}),
    ]});
    let (status, body) = app.post(batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["unexpected"],
        json!([{"index": 1, "kind": "worker", "machine": "w", "from": "starting", "to": "draining"}])
    );
    assert_eq!(body["applied"], 2);
    let m = app.metrics().await;
    for line in [
        r#"statescope_state{kind="circuit_breaker",machine="b",state="closed"} 1"#,
        r#"statescope_state{kind="worker",machine="w",state="draining"} 1"#,
        r#"statescope_transitions_total{kind="worker",machine="w",from="starting",to="draining"} 1"#,
        r#"statescope_transitions_total{kind="circuit_breaker",machine="b",from="open",to="closed"} 1"#,
        r#"statescope_unexpected_transitions_total{kind="worker",machine="w"} 1"#,
        r#"statescope_unexpected_transitions_total{kind="circuit_breaker",machine="b"} 0"#,
        r#"statescope_transition_allowed{kind="circuit_breaker",from="open",to="closed",flow="manual"} 1"#,
        r#"statescope_transition_allowed{kind="circuit_breaker",from="half_open",to="closed",flow="normal"} 1"#,
    ] {
        assert!(has_line(&m, line), "missing {line}\n{m}");
    }
    assert!(
        !m.contains(r#"from="starting",to="draining",flow="#),
        "starting -> draining is no edge of the worker"
    );
}

#[tokio::test]
async fn a_strict_kind_refuses_an_unexpected_transition_with_409_naming_the_way_out_and_counts_it() {
    let config = Config::parse(Path::new("strict.toml"), "strict_transitions = [\"worker\"]").unwrap();
    let app = app_with(config, None);
    app.post(json!({"type": "heartbeat", "kind": "worker", "machine": "w"}).to_string())
        .await;
    let (status, body) = app
        .post(json!({"type": "transition", "kind": "worker", "machine": "w", "to": "draining"}).to_string())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["machine"], "w");
    assert_eq!(body["current"], "starting");
    assert_eq!(body["allowed"], json!(["idle", "offline"]));
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_unexpected_transitions_total{kind="worker",machine="w"} 1"#
        ),
        "{m}"
    );
    assert!(
        has_line(&m, r#"statescope_exporter_events_rejected_total{reason="illegal"} 1"#),
        "{m}"
    );
    assert!(has_line(
        &m,
        r#"statescope_state{kind="worker",machine="w",state="starting"} 1"#
    ));
    // Breakers are not strict here: their manual moves and the rest still apply.
    app.post(transition("b", "open").to_string()).await;
    assert_eq!(app.post(transition("b", "closed").to_string()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_older_report_arriving_after_a_newer_one_does_not_overwrite_the_state() {
    let app = app();
    let seq =
        |to: &str, n: u64| json!({"type": "transition", "kind": "circuit_breaker", "machine": "b", "to": to, "seq": n});
    app.post(seq("open", 1).to_string()).await;
    app.post(seq("half_open", 3).to_string()).await;
    // Sent before seq 3, delivered after it.
    let (status, body) = app.post(seq("open", 2).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"applied": 0, "duplicates": 0, "unchanged": 0,
               "stale": [{"index": 0, "kind": "circuit_breaker", "machine": "b", "seq": 2, "last_seq": 3}]})
    );
    // The same seq again is a retry, not a stale report.
    assert_eq!(app.post(seq("half_open", 3).to_string()).await.1["duplicates"], 1);
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_state{kind="circuit_breaker",machine="b",state="half_open"} 1"#
        ),
        "{m}"
    );
    assert!(has_line(&m, "statescope_exporter_stale_events_total 1"), "{m}");
}

#[tokio::test]
async fn a_machines_labels_are_those_it_was_created_with_so_it_has_one_series_history() {
    let app = app();
    // First seen through an unlabelled call, then labelled transitions.
    app.post(json!({"type": "call", "kind": "circuit_breaker", "machine": "b", "outcome": "failure"}).to_string())
        .await;
    let labelled = json!({"type": "transition", "kind": "circuit_breaker", "machine": "b", "to": "open",
                          "labels": {"provider": "openai", "key_id": "k1"}});
    let (status, body) = app.post(labelled.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["labels_ignored"],
        json!([{"index": 0, "kind": "circuit_breaker", "machine": "b",
                "sent": {"key_id": "k1", "provider": "openai"}, "kept": {}}])
    );
    let m = app.metrics().await;
    let state_series: Vec<_> = m
        .lines()
        .filter(|l| l.starts_with("statescope_state{") && l.contains(r#"machine="b""#))
        .collect();
    assert_eq!(
        state_series.len(),
        6,
        "one series per state, one label set: {state_series:?}"
    );
    assert!(
        has_line(
            &m,
            r#"statescope_state{kind="circuit_breaker",machine="b",state="open"} 1"#
        ),
        "{m}"
    );
    // Created with labels: the same labels again are fine, other values are not taken.
    let with =
        |p: &str| json!({"type": "heartbeat", "kind": "circuit_breaker", "machine": "c", "labels": {"provider": p}});
    assert!(
        app.post(with("openai").to_string())
            .await
            .1
            .get("labels_ignored")
            .is_none()
    );
    assert!(
        app.post(with("openai").to_string())
            .await
            .1
            .get("labels_ignored")
            .is_none()
    );
    let (_, body) = app.post(with("azure").to_string()).await;
    assert_eq!(body["labels_ignored"][0]["kept"], json!({"provider": "openai"}));
    let m = app.metrics().await;
    assert!(!m.contains(r#"provider="azure""#), "{m}");
}

#[tokio::test]
async fn identity_labels_come_from_the_config() {
    let config = Config::parse(Path::new("labels.toml"), r#"identity_labels = ["team", "region"]"#).unwrap();
    let app = app_with(config, None);
    let event = json!({"type": "heartbeat", "kind": "worker", "machine": "w", "labels": {"team": "payments"}});
    assert_eq!(app.post(event.to_string()).await.0, StatusCode::OK);
    let m = app.metrics().await;
    assert!(
        has_line(
            &m,
            r#"statescope_state{kind="worker",machine="w",team="payments",state="starting"} 1"#
        ),
        "{m}"
    );
    let event = json!({"type": "heartbeat", "kind": "worker", "machine": "x", "labels": {"provider": "p"}});
    let (status, body) = app.post(event.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("use one of: team, region"),
        "{body}"
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_event_applies_nothing() {
    let app = app();
    let batch = json!({"events": [transition("c", "open"), transition("c", "ajar")]});
    let (status, body) = app.post(batch.to_string()).await;
    assert_eq!(
        (status, body["index"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(1))
    );
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
        // A name twice in one object (RFC 8259: "SHOULD be unique") is refused, not read as its last value.
        (
            r#"{"type":"heartbeat","kind":"worker","machine":"w","machine":"v"}"#,
            "event 0: duplicate field `machine`",
        ),
    ];
    for (body, want) in cases {
        let (status, reply) = app.post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let msg = reply["error"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
        // Each event is read from its own text: a line and column there would point nowhere in the body sent.
        if msg.starts_with("event ") {
            assert!(!msg.contains(" at line "), "{body}: {msg}");
        }
    }
    let m = app.metrics().await;
    assert!(
        has_line(&m, r#"statescope_exporter_events_rejected_total{reason="malformed"} 8"#),
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
    // A machine's labels are fixed at creation: other values are not taken
    // (so they cannot pass the cap either), and the answer says so.
    let (status, body) = app.post(relabel.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["labels_ignored"][0]["kept"], json!({"key_id": "k1"}), "{body}");
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
    // An older seq is stale: not applied either, and reported as such.
    assert_eq!(app.post(seq(6).to_string()).await.1["stale"][0]["last_seq"], 7);
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
            r#"statescope_transition_allowed{kind="payment_job",from="running",to="failed",flow="normal"} 1"#
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

/// Prometheus asks for gzip by default: the body comes compressed, says so,
/// and reads back as the same page; a client that does not ask gets it plain.
#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_asks() {
    use std::io::Read as _;
    let app = app();
    app.post(transition("a", "open").to_string()).await;
    let get = |encoding: Option<&str>| {
        let mut req = Request::get("/metrics");
        if let Some(e) = encoding {
            req = req.header(header::ACCEPT_ENCODING, e);
        }
        app.router.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let res = get(Some("gzip")).await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(res.headers()[header::VARY], "accept-encoding");
    let gz = res.into_body().collect().await.unwrap().to_bytes();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.headers()[header::VARY], "accept-encoding");
    let plain = String::from_utf8(plain.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    // The machine series are the same; the exporter's own (requests, CPU) moved on between the two.
    let machines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("statescope_exporter_") && !l.starts_with("process_"))
            .map(str::to_owned)
            .collect()
    };
    assert!(text.contains(r#"state="open"} 1"#), "{text}");
    assert_eq!(machines(&text), machines(&plain));
    assert!(
        gz.len() * 4 < plain.len(),
        "gzip {} bytes, plain {}",
        gz.len(),
        plain.len()
    );
}

/// A body of many pieces, scraped again and again: each piece's buffer is
/// reused for later pieces once sent, and no scrape may show another's (or a
/// later piece's) bytes. Two scrapes run at once, sharing the kept buffers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_many_pieces_reads_the_same_scrape_after_scrape() {
    let app = app();
    // 600 breakers: about 0.95 MB of text, four 256 KiB pieces.
    for first in (0..600).step_by(100) {
        let events: Vec<Value> = (first..first + 100)
            .map(|i| transition(&format!("b{i:03}"), "open"))
            .collect();
        let (status, _) = app.post(json!({ "events": events }).to_string()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let machines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("statescope_exporter_") && !l.starts_with("process_"))
            .map(str::to_owned)
            .collect()
    };
    let first = app.metrics().await;
    assert!(first.len() > 3 * 256 * 1024, "{} bytes", first.len());
    let expected = machines(&first);
    for _ in 0..4 {
        let (a, b) = tokio::join!(app.metrics(), app.metrics());
        assert!(
            machines(&a) == expected && machines(&b) == expected,
            "a scrape's body changed"
        );
    }
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

/// Any client could mint a new `method` label value per request, growing the
/// request counter's series without bound (no token needed, any path): the
/// standard methods keep their names, anything else is `other`.
#[tokio::test]
async fn http_methods_cannot_grow_the_request_series_without_bound() {
    let app = app_with(Config::default(), Some(TOKEN));
    for i in 0..50 {
        let m = Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        let req = Request::builder().method(m).uri("/nope").body(Body::empty()).unwrap();
        app.call(req).await;
    }
    let text = app.metrics().await;
    let series = text
        .lines()
        .filter(|l| l.starts_with("statescope_exporter_http_requests_total{"))
        .count();
    assert!(series < 10, "{series} request series after 50 odd methods");
}

/// `q=0` means "not acceptable" (RFC 9110 12.4.2); a text-preferring Accept
/// must not get OpenMetrics either.
#[tokio::test]
async fn accept_q_values_are_honoured() {
    let app = app();
    for accept in [
        "application/openmetrics-text;q=0,text/plain;version=0.0.4",
        "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1",
    ] {
        let req = Request::get("/metrics")
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        let (_, _, ct) = app.call(req).await;
        assert_eq!(
            ct.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept}"
        );
    }
}

/// The auth scheme is case-insensitive (RFC 9110 11.1).
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = app_with(Config::default(), Some(TOKEN));
    let e = json!({"type": "heartbeat", "kind": "worker", "machine": "w"});
    let (status, body) = app
        .post_with(e.to_string(), &[("authorization", &format!("bearer {TOKEN}"))])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// README: machine "at most 128 characters"; the error says "1-128 printable
/// characters". 60 Cyrillic characters (120 bytes) fit; 100 (200 bytes) too.
#[tokio::test]
async fn machine_ids_are_limited_in_characters_not_bytes() {
    let app = app();
    let name = "ж".repeat(100);
    let e = json!({"type": "heartbeat", "kind": "worker", "machine": name});
    let (status, body) = app.post(e.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `{"events": {...}}` (an object, not a list) was reported as an unknown
/// field `events` of event 0; it is reported as "`events` must be a list".
#[tokio::test]
async fn a_non_list_events_field_is_named_as_such() {
    let app = app();
    let e = json!({"events": {"type": "heartbeat", "kind": "worker", "machine": "w"}});
    let (status, body) = app.post(e.to_string()).await;
    let body = body.to_string();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains("unknown field `events`"), "{body}");
    assert!(body.contains("`events` must be a list"), "{body}");
}

/// A job duration of 1e308 is finite, but two of them made the histogram sum
/// +Inf; serde_json wrote it as `null` in snapshot.json and the exporter then
/// could not start again. Such durations are refused (400, naming the field
/// and the bound), and jobs at the bound leave a snapshot that reads back.
#[tokio::test]
async fn accepted_jobs_never_make_the_snapshot_unreadable() {
    let app = app();
    for field in ["duration_seconds", "queue_seconds"] {
        let mut job =
            json!({"type": "job", "kind": "worker", "machine": "w", "result": "succeeded", "duration_seconds": 1.0});
        job[field] = json!(1e308);
        let (status, body) = app.post(json!({"events": [job, job]}).to_string()).await;
        let body = body.to_string();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(field) && body.contains("31536000"), "{body}");
    }
    let job = json!({"type": "job", "kind": "worker", "machine": "w", "result": "succeeded",
        "duration_seconds": 31_536_000.0, "queue_seconds": 31_536_000.0});
    let (status, body) = app.post(json!({"events": [job, job]}).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let App {
        router,
        _dir: dir,
        _applier: applier,
    } = app;
    drop(router);
    applier.join().unwrap(); // final snapshot
    let reopened = support::api_in(dir.path(), &Config::default(), None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(reopened, Ok(()));
}
