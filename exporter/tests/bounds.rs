//! The limits per request, in process: a write is refused from its headers
//! before its body is read, writes and scrapes past their caps get a quick
//! 503 with Retry-After while `/healthz` keeps answering, a body that does
//! not arrive in time gets 408, and `/api/v1/machines` comes in pages
//! produced off the async runtime.

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use statescope_exporter::api;
use statescope_exporter::config::Config;
use statescope_exporter::ingest::Applier;
use statescope_exporter::web::Limits;
use support::{TOKEN, transition};
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

/// Long enough for anything here to answer; a hang fails the test instead of stalling it.
const PATIENCE: Duration = Duration::from_secs(10);

struct App {
    router: Router,
    _dir: tempfile::TempDir,
    _applier: Applier,
}

fn app(limits: Limits, token: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let (api, applier) = support::api_in(dir.path(), &Config::default(), token).unwrap();
    App {
        router: api::router_with(api, &limits),
        _dir: dir,
        _applier: applier,
    }
}

impl App {
    /// Sends a request and returns the answer with its body still unread.
    async fn send(&self, req: Request<Body>) -> Response<Body> {
        tokio::time::timeout(PATIENCE, self.router.clone().oneshot(req))
            .await
            .expect("no answer in 10 s")
            .unwrap()
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        read(self.send(Request::get(path).body(Body::empty()).unwrap()).await).await
    }

    async fn post(&self, body: Value) -> (StatusCode, String) {
        let req = Request::post("/api/v1/events")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        read(self.send(req).await).await
    }
}

async fn read(res: Response<Body>) -> (StatusCode, String) {
    let status = res.status();
    let body = tokio::time::timeout(PATIENCE, res.into_body().collect())
        .await
        .expect("body not read in 10 s")
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A request body that sends `first` and then what comes through the
/// returned sender; `reading` fires when the server starts reading it.
fn trickled(first: &'static str) -> (Body, oneshot::Receiver<()>, mpsc::UnboundedSender<Bytes>) {
    let (started, reading) = oneshot::channel();
    let (more, rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::unfold((Some(started), rx), move |(started, mut rx)| async move {
        if let Some(started) = started {
            let _ = started.send(());
            return Some((
                Ok::<_, std::io::Error>(Bytes::from_static(first.as_bytes())),
                (None, rx),
            ));
        }
        let next = rx.recv().await?;
        Some((Ok(next), (None, rx)))
    });
    (Body::from_stream(stream), reading, more)
}

fn events_request(body: Body) -> Request<Body> {
    Request::post("/api/v1/events")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn a_write_without_the_token_is_refused_from_its_headers_without_reading_the_body() {
    let app = app(Limits::default(), Some(TOKEN));
    // A 1 MB upload that never sends a byte: answering must not wait for it.
    let (body, mut reading, _more) = trickled("");
    let mut req = events_request(body);
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, "1000000".parse().unwrap());
    let res = app.send(req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert!(
        reading.try_recv().is_err(),
        "the body was read before the token was checked"
    );
    let (_, text) = read(res).await;
    assert!(text.contains("bearer token"), "{text}");
    // A declared size over the limit is refused at once too, before reading.
    let (body, mut reading, _more) = trickled("");
    let mut req = events_request(body);
    req.headers_mut()
        .insert(header::AUTHORIZATION, format!("Bearer {TOKEN}").parse().unwrap());
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, "2000000".parse().unwrap());
    let res = app.send(req).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reading.try_recv().is_err(), "an announced oversized body was read");
}

#[tokio::test]
async fn past_max_writes_a_write_gets_503_with_retry_after_at_once_and_healthz_still_answers() {
    let limits = Limits {
        max_writes: 2,
        ..Limits::default()
    };
    let app = app(limits, None);
    // Two writes whose bodies are still arriving hold both slots.
    let mut held = Vec::new();
    for i in 0..2 {
        let (body, reading, more) = trickled(r#"{"events": ["#);
        let call = tokio::spawn(app.router.clone().oneshot(events_request(body)));
        tokio::time::timeout(PATIENCE, reading)
            .await
            .expect("the held write was not read")
            .unwrap();
        held.push((call, more, i));
    }
    let (status, text) = app.post(transition("c", "open")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let res = app
        .send(events_request(Body::from(transition("c", "open").to_string())))
        .await;
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    let body: Value = serde_json::from_str(&read(res).await.1).unwrap();
    assert!(body["error"].as_str().unwrap().contains("too many writes"), "{body}");
    assert_eq!(app.get("/healthz").await, (StatusCode::OK, "ok\n".into()));
    // The held writes finish; their slots come back.
    for (call, more, i) in held {
        more.send(Bytes::from(format!("{}]}}", transition(&format!("held-{i}"), "open"))))
            .unwrap();
        drop(more);
        let res = tokio::time::timeout(PATIENCE, call).await.unwrap().unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(app.post(transition("c", "open")).await.0, StatusCode::OK);
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains(r#"statescope_exporter_events_rejected_total{reason="overloaded"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_body_slower_than_the_body_read_timeout_gets_408_and_nothing_is_applied() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = app(limits, None);
    let (body, _reading, more) = trickled(r#"{"events": ["#);
    let res = app.send(events_request(body)).await;
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(res.headers()[header::CONNECTION], "close");
    let (_, text) = read(res).await;
    assert!(text.contains("did not arrive within 300ms"), "{text}");
    drop(more);
    let (_, machines) = app.get("/api/v1/machines").await;
    assert_eq!(serde_json::from_str::<Value>(&machines).unwrap()["machines"], json!([]));
}

/// Past `max_writes` a write is shed before its token is looked at, so an
/// overloaded exporter spends nothing on a flood, with or without tokens.
#[tokio::test]
async fn writes_are_shed_before_the_token_is_checked() {
    let limits = Limits {
        max_writes: 1,
        ..Limits::default()
    };
    let app = app(limits, Some(TOKEN));
    let (body, reading, more) = trickled(r#"{"events": ["#);
    let mut held = events_request(body);
    held.headers_mut()
        .insert(header::AUTHORIZATION, format!("Bearer {TOKEN}").parse().unwrap());
    let call = tokio::spawn(app.router.clone().oneshot(held));
    tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("the held write was not read")
        .unwrap();
    let (status, text) = app.post(transition("c", "open")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    drop(more);
    tokio::time::timeout(PATIENCE, call).await.unwrap().unwrap().unwrap();
    assert_eq!(app.post(transition("c", "open")).await.0, StatusCode::UNAUTHORIZED);
}

/// Refusals made before the handler runs (by the token layer, by the body's
/// extractor) count their events under their reason, as the applier's do.
#[tokio::test]
async fn refusals_before_the_handler_are_counted_under_their_reason() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let app = app(limits, Some(TOKEN));
    let with_token = |body: Body, content_type: &str| {
        Request::post("/api/v1/events")
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(body)
            .unwrap()
    };
    let no_token = events_request(Body::from(transition("a", "open").to_string()));
    assert_eq!(app.send(no_token).await.status(), StatusCode::UNAUTHORIZED);
    let (body, _reading, _more) = trickled(r#"{"events": ["#);
    assert_eq!(
        app.send(with_token(body, "application/json")).await.status(),
        StatusCode::REQUEST_TIMEOUT
    );
    let text = Body::from(transition("a", "open").to_string());
    assert_eq!(
        app.send(with_token(text, "text/plain")).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let huge = Body::from("x".repeat(Config::default().limits.max_body_bytes + 1));
    assert_eq!(
        app.send(with_token(huge, "application/json")).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (_, metrics) = app.get("/metrics").await;
    for reason in ["unauthorized", "timeout", "malformed", "too_large"] {
        let line = format!(r#"statescope_exporter_events_rejected_total{{reason="{reason}"}} 1"#);
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn past_max_scrapes_a_scrape_gets_503_with_retry_after_until_a_scraper_is_done() {
    let limits = Limits {
        max_scrapes: 2,
        ..Limits::default()
    };
    let app = app(limits, None);
    assert_eq!(app.post(transition("a", "open")).await.0, StatusCode::OK);
    // Two scrapers that have not read their bodies yet hold both slots.
    let first = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let second = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let third = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()[header::RETRY_AFTER], "1");
    // /healthz is not a scrape.
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
    // One scraper reads its body to the end: its slot comes back.
    let (_, text) = read(first).await;
    assert!(
        text.contains(r#"statescope_state{kind="circuit_breaker",machine="a",state="open"} 1"#),
        "{text}"
    );
    let (status, _) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // One that hangs up without reading gives its slot back too.
    drop(second);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let a = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
        let b = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
        if (a.status(), b.status()) == (StatusCode::OK, StatusCode::OK) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a dropped scrape kept its slot");
        drop((a, b));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn machines_come_in_pages_with_a_cursor_to_the_next() {
    let app = app(Limits::default(), None);
    let mut events: Vec<Value> = (0..25).map(|i| transition(&format!("b{i:02}"), "open")).collect();
    events.extend((0..5).map(|i| json!({"type": "heartbeat", "kind": "worker", "machine": format!("w{i}")})));
    assert_eq!(app.post(json!({ "events": events })).await.0, StatusCode::OK);

    let mut seen = Vec::new();
    let mut path = "/api/v1/machines?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let (status, text) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let page: Value = serde_json::from_str(&text).unwrap();
        let list = page["machines"].as_array().unwrap();
        assert!(list.len() <= 10);
        seen.extend(
            list.iter()
                .map(|m| format!("{}/{}", m["kind"].as_str().unwrap(), m["machine"].as_str().unwrap())),
        );
        pages += 1;
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/machines?limit=10&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3, "30 machines, 10 a page");
    let mut expected: Vec<_> = (0..25).map(|i| format!("circuit_breaker/b{i:02}")).collect();
    expected.extend((0..5).map(|i| format!("worker/w{i}")));
    assert_eq!(seen, expected, "every machine once, in order");

    // Filters page too: the cursor of a filtered page continues the filter.
    let (_, text) = app.get("/api/v1/machines?kind=worker&limit=3").await;
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["machines"].as_array().unwrap().len(), 3);
    assert_eq!(page["next"], "worker/w2");
    let (_, text) = app.get("/api/v1/machines?kind=worker&limit=3&after=worker/w2").await;
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["machines"].as_array().unwrap().len(), 2);
    assert_eq!(page.get("next"), None, "the last page has no next");
    // A full last page says there is nothing more.
    let (_, text) = app.get("/api/v1/machines?kind=worker&limit=5").await;
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap().get("next"), None);
    // The default page holds them all here.
    let (_, text) = app.get("/api/v1/machines").await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["machines"]
            .as_array()
            .unwrap()
            .len(),
        30
    );

    for bad in ["limit=0", "limit=10001", "limit=ten", "after=no-slash"] {
        let (status, text) = app.get(&format!("/api/v1/machines?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{bad}: not JSON: {text}"));
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

/// On a single-threaded runtime, a handler that lists machines on the
/// runtime itself finishes before anything else runs; one that works on a
/// blocking thread lets `/healthz` answer first.
#[tokio::test(flavor = "current_thread")]
async fn a_long_listing_of_machines_does_not_hold_up_healthz() {
    let app = app(Limits::default(), None);
    for batch in 0..10 {
        let events: Vec<Value> = (0..1000)
            .map(|i| transition(&format!("m{batch}-{i:04}"), "open"))
            .collect();
        assert_eq!(app.post(json!({ "events": events })).await.0, StatusCode::OK);
    }
    let order = std::sync::Mutex::new(Vec::new());
    let listing = async {
        let (status, _) = app.get("/api/v1/machines?limit=10000").await;
        assert_eq!(status, StatusCode::OK);
        order.lock().unwrap().push("machines");
    };
    let health = async {
        assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
        order.lock().unwrap().push("healthz");
    };
    tokio::join!(listing, health);
    assert_eq!(*order.lock().unwrap(), ["healthz", "machines"]);
}
