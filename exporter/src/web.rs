//! The HTTP server around the API, bounded in connections and time: at most
//! `max_connections` at once (past it, new ones wait in the kernel's accept
//! queue, as Go's `netutil.LimitListener` makes node_exporter's do), hyper's
//! header read timeout (counted from the connection's start or its previous
//! answer, so it also closes idle keep-alive connections and stalled TLS
//! handshakes), and a write timeout that drops clients that stop reading.
//! The limits per request (scrapes and writes at once, the body read
//! timeout) are applied by the router: see [`crate::api::router_with`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// The bounds of the HTTP server (see the flag table in the README).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's headers, from the connection's start (TLS
    /// handshake included) or from the end of its previous answer.
    pub header_read_timeout: Duration,
    /// Time to send a request body, from the end of its headers.
    pub body_read_timeout: Duration,
    /// A write to the client that makes no progress for this long closes the connection.
    pub write_timeout: Duration,
    /// `/metrics` answers in progress at once; past it 503.
    pub max_scrapes: usize,
    /// `POST /api/v1/events` requests in progress at once (reading, queued, applying); past it 503.
    pub max_writes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_scrapes: 8,
            max_writes: 64,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let connection = Connection {
        tls: tls.map(TlsAcceptor::from),
        http: http1(&limits),
        app,
        limits,
    };
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let (connection, watcher) = (connection.clone(), graceful.watcher());
        tokio::spawn(async move {
            connection.serve(stream, peer, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

/// HTTP/1 with the header read timeout.
fn http1(limits: &Limits) -> Builder {
    let mut http = Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    http
}

/// The next connection, with its write timeout set.
async fn accept(listener: &TcpListener) -> (Pin<Box<TimeoutStream<TcpStream>>>, SocketAddr) {
    let (stream, peer) = loop {
        match listener.accept().await {
            Ok(accepted) => break accepted,
            Err(e) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // TCP_NODELAY: a /metrics body ends with a small write that Nagle's
    // algorithm would hold for the scraper's delayed ACK (40 ms on Linux).
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
    }
    (Box::pin(TimeoutStream::new(stream)), peer)
}

/// What each connection is served with.
#[derive(Clone)]
struct Connection {
    tls: Option<TlsAcceptor>,
    http: Builder,
    app: Router,
    limits: Limits,
}

impl Connection {
    /// Serves one connection (after its TLS handshake, within the header
    /// read timeout) until it closes or the shutdown drain ends it.
    async fn serve(self, mut stream: Pin<Box<TimeoutStream<TcpStream>>>, peer: SocketAddr, watcher: Watcher) {
        stream
            .as_mut()
            .set_write_timeout_pinned(Some(self.limits.write_timeout));
        let service = TowerToHyperService::new(self.app);
        let result = match self.tls {
            None => {
                watcher
                    .watch(self.http.serve_connection(TokioIo::new(stream), service))
                    .await
            }
            Some(acceptor) => {
                match tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        watcher
                            .watch(self.http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        Ok(())
                    }
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection closed with an error");
        }
    }
}

/// Warns when `max_connections` would leave too few file descriptors for
/// the event log, the snapshot and polls under the process's limit.
pub fn check_open_files(max_connections: usize) {
    let Ok(limits) = procfs::process::Process::myself().and_then(|me| me.limits()) else {
        return;
    };
    if let procfs::process::LimitValue::Value(soft) = limits.max_open_files.soft_limit
        && (max_connections as u64).saturating_add(64) > soft
    {
        tracing::warn!(
            max_connections,
            open_files_limit = soft,
            "--web.max-connections is close to the open-file limit (ulimit -n): \
             a storm could leave no descriptor for the event log; lower it or raise the limit"
        );
    }
}
