//! The real exporter, in process: its own runtime on its own threads, serving
//! its real router on a loopback port, with its event log in a temp dir.
//! `stop()` shuts that runtime down (connections and all) and waits for the
//! applier's final snapshot; `start()` again reopens the same data and port.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use statescope_exporter::api::{self, Api};
use statescope_exporter::config::Compat;
use statescope_exporter::config::Config;
use statescope_exporter::ingest::{Applier, Ingest, SnapshotPolicy};
use statescope_exporter::store::Store;
use statescope_exporter::telemetry::Telemetry;

pub struct Exporter {
    pub addr: SocketAddr,
    data: PathBuf,
    _dir: tempfile::TempDir,
    running: Option<(tokio::runtime::Runtime, Applier)>,
    max_machines: Option<usize>,
}

impl Exporter {
    pub fn start() -> Exporter {
        Exporter::start_with(None)
    }

    /// With the machine cap set to `max_machines`.
    pub fn start_with(max_machines: Option<usize>) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut e = Exporter {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            data: dir.path().join("data"),
            _dir: dir,
            running: None,
            max_machines,
        };
        e.resume();
        e
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts (again) on the same port and data.
    pub fn resume(&mut self) {
        assert!(self.running.is_none());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut config = Config::default();
        if let Some(max) = self.max_machines {
            config.limits.max_machines = max;
        }
        let telemetry = Arc::new(Telemetry::default());
        let store = Store::new(config.catalog.clone(), config.limits.store());
        let (ingest, applier) = Ingest::open(self.data.clone(), store, SnapshotPolicy::default(), telemetry.clone())
            .expect("opening the exporter's data");
        let api = Arc::new(Api {
            ingest,
            telemetry,
            token: None,
            compat: Compat::On,
            max_events: config.limits.max_events_per_request,
            max_body_bytes: config.limits.max_body_bytes,
        });
        let listener = runtime.block_on(async {
            for _ in 0..100 {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            panic!("port {} did not come free", self.addr)
        });
        runtime.spawn(async move { axum::serve(listener, api::router(api)).await });
        self.running = Some((runtime, applier));
    }

    /// Stops serving, as a crash of the process would (open connections drop).
    pub fn stop(&mut self) {
        let (runtime, applier) = self.running.take().expect("running");
        runtime.shutdown_timeout(Duration::from_secs(2));
        applier.join().expect("the applier thread ended without an error");
    }

    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        }
    }

    /// `GET /api/v1/machines`, by machine name.
    pub fn machines(&self) -> BTreeMap<String, serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&self.get("/api/v1/machines")).unwrap();
        v["machines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["machine"].as_str().unwrap().to_owned(), m.clone()))
            .collect()
    }

    /// Non-zero samples of `name` on /metrics whose labels include `want`,
    /// keyed by the values of the labels `by`.
    pub fn samples(&self, name: &str, want: &[(&str, &str)], by: &[&str]) -> BTreeMap<Vec<String>, f64> {
        let mut out = BTreeMap::new();
        for line in self.get("/metrics").lines() {
            let Some(rest) = line.strip_prefix(name) else { continue };
            let Some(rest) = rest.strip_prefix('{') else { continue };
            let (labels, value) = rest.rsplit_once("} ").unwrap();
            let labels: BTreeMap<&str, &str> = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k, v.trim_matches('"')))
                .collect();
            if want.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                continue;
            }
            let value: f64 = value.trim().parse().unwrap();
            if value != 0.0 {
                let key = by
                    .iter()
                    .map(|k| labels.get(k).copied().unwrap_or("").to_owned())
                    .collect();
                out.insert(key, value);
            }
        }
        out
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
}
