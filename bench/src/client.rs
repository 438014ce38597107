//! A keep-alive HTTP/1.1 connection, reopened when the server closes it.
//!
//! The same client times both the exporter and the Python baseline, so the
//! ratios compare servers, not clients. It reads each response body to the
//! end: a scrape is done when the last byte has arrived.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where a server listens, and the bearer token its write endpoints need.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Target {
    /// Parses `http://HOST:PORT` or `HOST:PORT` (no path: the harness knows its paths).
    pub fn parse(url: &str, token: Option<String>) -> Result<Target> {
        let hostport = url.trim_start_matches("http://").trim_end_matches('/');
        let addr = hostport
            .parse()
            .with_context(|| format!("expected http://IP:PORT, got {url:?}"))?;
        Ok(Target { addr, token })
    }
}

/// One connection to a [`Target`].
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: Target) -> Conn {
        Conn { target, sender: None }
    }

    /// `GET path`; returns the body, failing on any status but 200.
    pub async fn get(&mut self, path: &str) -> Result<Bytes> {
        let (status, body) = self.send(Method::GET, path, Bytes::new()).await?;
        if status != StatusCode::OK {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }

    /// `GET path` into `body` (cleared first), failing on any status but 200.
    ///
    /// As Prometheus reads a scrape: the body is copied into a buffer kept
    /// from the scrape before (its scrape loop takes one from a pool, sized
    /// by the last scrape) rather than into a new allocation each time, so
    /// the client's cost is a copy of each byte, not also faulting in fresh
    /// pages for every response.
    pub async fn get_into(&mut self, path: &str, body: &mut Vec<u8>) -> Result<()> {
        body.clear();
        let res = self.request(Method::GET, path, Bytes::new()).await?;
        let status = res.status();
        let mut frames = res.into_body();
        while let Some(frame) = frames.frame().await {
            if let Ok(data) = frame.context("reading the response body")?.into_data() {
                body.extend_from_slice(&data);
            }
        }
        if status != StatusCode::OK {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(body));
        }
        Ok(())
    }

    /// `POST path` with a JSON body; returns the status and body.
    pub async fn post_json(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        self.send(Method::POST, path, body).await
    }

    async fn send(&mut self, method: Method, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        let res = self.request(method, path, body).await?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok((status, body))
    }

    /// Sends a request; returns the response with its body still to read.
    async fn request(&mut self, method: Method, path: &str, body: Bytes) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.target.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Full::new(body))?;
        let res = self.ready().await?.send_request(req).await;
        match res {
            Ok(res) => Ok(res),
            Err(e) => {
                self.sender = None;
                Err(e).context("request failed")
            }
        }
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .with_context(|| format!("connecting to {}", self.target.addr))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            // The connection task ends when the server closes; `ready` notices and reconnects.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("connected above"))
    }
}
