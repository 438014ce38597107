//! The transfer floor of `/metrics`: what serving the body costs without
//! encoding it. The exporter's own body, fetched once, is served pre-encoded
//! through the exporter's own HTTP stack ([`statescope_exporter::web::serve`]
//! with its default limits), so a scrape of it times the socket, hyper and the
//! client alone, measured by the same client as the real scrape:
//!
//! - `/metrics` goes the way the exporter's does: pieces of the same size
//!   handed from a blocking thread through the same bounded queue
//!   ([`scrape::stream_blocking`]), as chunked transfer encoding;
//! - `/metrics/whole` is the body as one piece with a `Content-Length`, which
//!   hyper writes at once: the floor under the streaming itself.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::header;
use axum::routing::get;
use bytes::Bytes;
use statescope_exporter::api::scrape::{self, METRICS_CHUNK_BYTES};
use statescope_exporter::web::{self, Limits};
use tokio::net::TcpListener;

/// Content type of the exporter's Prometheus text.
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The routes serving `body` pre-encoded.
pub fn router(body: Bytes) -> Router {
    let streamed = body.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = streamed.clone();
                async move {
                    let pieces = scrape::stream_blocking(Arc::new(()), move |emit| {
                        // Slices of one buffer: handing them on copies nothing.
                        for start in (0..body.len()).step_by(METRICS_CHUNK_BYTES) {
                            emit(body.slice(start..body.len().min(start + METRICS_CHUNK_BYTES)));
                        }
                    });
                    ([(header::CONTENT_TYPE, TEXT)], pieces)
                }
            }),
        )
        .route(
            "/metrics/whole",
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, TEXT)], body) }
            }),
        )
}

/// Serves the body in `file` on 127.0.0.1 (a free port, written to
/// `port_file` once listening) until the process is stopped.
pub async fn serve(file: &Path, port_file: &Path) -> Result<()> {
    let body = Bytes::from(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    std::fs::write(port_file, listener.local_addr()?.port().to_string())?;
    web::serve(listener, None, router(body), Limits::default(), std::future::pending()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Conn, Target};

    /// Both routes hand the client the body it was given, byte for byte,
    /// across several pieces.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_floor_serves_the_body_it_was_given() {
        let body: Bytes = (0..METRICS_CHUNK_BYTES * 2 + 123)
            .map(|i| b"abc\n"[i % 4])
            .collect::<Vec<u8>>()
            .into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(body.clone());
        tokio::spawn(web::serve(
            listener,
            None,
            app,
            Limits::default(),
            std::future::pending(),
        ));
        let mut conn = Conn::new(Target { addr, token: None });
        assert_eq!(conn.get("/metrics").await.unwrap(), body);
        assert_eq!(conn.get("/metrics/whole").await.unwrap(), body);
    }
}
