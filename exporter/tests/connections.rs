//! The real binary's connection bounds, over raw sockets as an attacker
//! would hold them: a slowloris header, an idle keep-alive connection and a
//! stalled TLS handshake are closed after `--web.header-read-timeout`, a
//! trickled body gets 408 after `--web.body-read-timeout`, connections past
//! `--web.max-connections` wait until one closes, and a scraper that stops
//! reading loses its `/metrics` slot after `--web.write-timeout`.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;

/// Far beyond the timeouts under test (1 s): a connection still open then was not bounded.
const PATIENCE: Duration = Duration::from_secs(10);

struct Exporter {
    child: Child,
    addr: String,
}

impl Exporter {
    /// Starts the exporter on a free loopback port and waits until it
    /// listens (a connection then waits for the accept loop, if need be).
    fn start(data_dir: &Path, args: &[&str]) -> Exporter {
        let addr = format!("127.0.0.1:{}", support::free_port());
        let child = support::exporter_command(&addr, data_dir).args(args).spawn().unwrap();
        let mut exporter = Exporter { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&exporter.addr).is_err() {
            assert!(exporter.child.try_wait().unwrap().is_none(), "the exporter exited");
            assert!(Instant::now() < deadline, "the exporter did not start in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        exporter
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `raw` on a new connection and reads the answer to its end.
fn request(addr: &str, raw: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(PATIENCE)).ok()?;
    s.write_all(raw.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Reads until the server closes the connection; panics if it is still
/// open when the stream's read timeout passes. Returns what was read.
fn read_until_closed(s: &mut impl Read, what: &str) -> String {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset, or a TLS stream cut without close_notify: closed all the same.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof) => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: still open after {:?}", started.elapsed())
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_slowloris_header_and_an_idle_keep_alive_connection_are_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("data"), &["--web.header-read-timeout", "1s"]);

    let mut slow = exporter.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let got = read_until_closed(&mut slow, "a connection whose headers never end");
    assert!(!got.contains("200 OK"), "{got}");

    let mut idle = exporter.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let got = read_until_closed(&mut idle, "an idle keep-alive connection");
    assert!(got.starts_with("HTTP/1.1 200 OK") && got.ends_with("ok\n"), "{got}");

    let mut silent = exporter.connect();
    read_until_closed(&mut silent, "a connection that never sends anything");
}

#[test]
fn stalled_tls_handshakes_and_slowloris_headers_over_tls_are_closed_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let (cert_path, key_path) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let exporter = Exporter::start(
        &dir.path().join("data"),
        &[
            "--web.header-read-timeout",
            "1s",
            "--tls-cert",
            cert_path,
            "--tls-key",
            key_path,
        ],
    );
    // Five seconds, for a one-second timeout (and half the handshake
    // timeout of the TLS library the exporter used before).
    let connect = || {
        let s = exporter.connect();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    // Half a ClientHello: a record header announcing 512 bytes, then nothing.
    let mut stalled = connect();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    read_until_closed(&mut stalled, "a TLS handshake that stops halfway");
    read_until_closed(&mut connect(), "a TLS connection that never says hello");

    // A full handshake, then headers that never end.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tls = rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut slow = rustls::StreamOwned::new(tls, connect());
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    slow.flush().unwrap();
    let got = read_until_closed(&mut slow, "headers that never end, over TLS");
    assert!(!got.contains("200 OK"), "{got}");
}

#[test]
fn a_body_trickled_slower_than_the_body_read_timeout_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&dir.path().join("data"), &["--web.body-read-timeout", "1s"]);
    let mut s = exporter.connect();
    s.write_all(
        b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ev",
    )
    .unwrap();
    // One byte every 300 ms: each arrives well within any per-read timeout,
    // the whole body never within the body read timeout.
    let trickle = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut trickle = trickle;
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(300));
            if trickle.write_all(b" ").is_err() {
                break;
            }
        }
    });
    let got = read_until_closed(&mut s, "a trickled body");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("did not arrive within 1s"), "{got}");
    writer.join().unwrap();
}

#[test]
fn connections_past_max_connections_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(
        &dir.path().join("data"),
        &["--web.max-connections", "3", "--web.header-read-timeout", "60s"],
    );
    // Three idle connections take every slot (accepted in the order they came).
    let holders: Vec<_> = (0..3).map(|_| exporter.connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = exporter.connect();
    fourth.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    match fourth.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a fourth connection was served past --web.max-connections 3: {other:?}"),
    }
    drop(holders);
    fourth.set_read_timeout(Some(PATIENCE)).unwrap();
    let got = read_until_closed(&mut fourth, "the waiting connection");
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
}

#[test]
fn a_scraper_that_stops_reading_loses_its_slot_after_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(
        &dir.path().join("data"),
        &["--web.max-requests", "1", "--web.write-timeout", "1s"],
    );
    // 10,000 machines: a body of megabytes, more than the socket buffers hold.
    for batch in 0..10 {
        let events: Vec<_> = (0..1000)
            .map(|i| {
                json!({"type": "transition", "kind": "circuit_breaker", "machine": format!("p{batch}/key-{i:04}"),
                       "to": "open", "labels": {"provider": format!("p{batch}"), "key_id": format!("key-{i:04}")}})
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        let answer = request(
            &exporter.addr,
            &format!(
                "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut stalled = exporter.connect();
    stalled.write_all(scrape.as_bytes()).unwrap();
    // While it holds the only slot, another scrape is refused with Retry-After...
    std::thread::sleep(Duration::from_millis(300));
    let refused = request(&exporter.addr, scrape).unwrap();
    assert!(
        refused.starts_with("HTTP/1.1 503"),
        "{}",
        &refused[..refused.len().min(300)]
    );
    assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
    // ...until the write timeout cuts the stalled scraper off.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = request(&exporter.addr, scrape).unwrap();
        if answer.starts_with("HTTP/1.1 200") {
            assert!(answer.contains("statescope_build_info{"), "a whole body");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot was still held 10 s after the scraper stopped reading"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut cut = Vec::new();
    let _ = stalled.read_to_end(&mut cut);
    assert!(
        !String::from_utf8_lossy(&cut).contains("# EOF") && !String::from_utf8_lossy(&cut).ends_with("0\r\n\r\n"),
        "the stalled scrape was not cut off"
    );
}
