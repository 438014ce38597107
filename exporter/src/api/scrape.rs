//! `GET /metrics` as HTTP: which format the scraper asked for (`Accept`),
//! whether it takes gzip (`Accept-Encoding`, as Prometheus sends by
//! default), at most so many answers at once, and the body streamed from the
//! encoder thread as [`crate::metrics`] writes it.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::{Semaphore, mpsc};

use super::state::Api;
use crate::metrics::{self, Format};
use crate::refusal::ApiError;

/// Pieces of a `/metrics` body sent as soon as they are encoded.
pub const METRICS_CHUNK_BYTES: usize = 256 * 1024;
/// Pieces waiting for the scraper, at most, before the encoder keeps them itself.
const METRICS_QUEUE: usize = 4;
/// Piece buffers a scrape keeps for its next pieces once sent, at most
/// (about 2 MiB): more than its pieces in flight, so it allocates only a few.
const KEPT_BUFFERS: usize = 8;

/// The `/metrics` answers that may be in progress at once; one permit is
/// held by the encoder and by the body until the last byte is sent (or the
/// scraper goes), so a storm of scrapers that never read holds at most this
/// many bodies in memory.
#[derive(Clone)]
pub(crate) struct Scrapes(pub(crate) Arc<Semaphore>);

/// Piece buffers of one scrape that came back once their piece was sent,
/// for its next pieces: a 10k-machine body is 87 pieces of 256 KiB, each
/// otherwise a fresh allocation the encoder thread touches page by page and
/// a tokio worker frees (glibc then consolidates its arena, on the thread
/// that also parses ingest's requests). Holds at most [`KEPT_BUFFERS`], and
/// goes with its scrape: buffers kept between scrapes would pin the
/// allocator's memory around them (measured: 0.8 KiB more resident memory
/// per machine at 10k machines), so nothing outlives the body.
#[derive(Default)]
pub(crate) struct Buffers(Mutex<Vec<String>>);

impl Buffers {
    /// An empty buffer, reused if one came back.
    fn take(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, mut buffer: String) {
        // One that grew past a piece (never, as the writer cuts them) is not worth keeping.
        if buffer.capacity() > 2 * METRICS_CHUNK_BYTES {
            return;
        }
        buffer.clear();
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEPT_BUFFERS {
            kept.push(buffer);
        }
    }

    /// `piece` as the body's bytes, without copying; its buffer comes back here once sent.
    fn send(self: &Arc<Buffers>, piece: String) -> Bytes {
        Bytes::from_owner(Piece {
            text: piece,
            buffers: self.clone(),
        })
    }
}

/// A piece of a body on its way to the scraper; its buffer goes back to
/// [`Buffers`] when hyper has written it (or the scraper went).
struct Piece {
    text: String,
    buffers: Arc<Buffers>,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        self.buffers.give_back(std::mem::take(&mut self.text));
    }
}

/// `/metrics`: encoded on a blocking thread (a 10k-machine body takes
/// milliseconds of CPU that would otherwise stall this async worker's other
/// requests) and streamed as it is written, so on a multi-core machine the
/// body goes out while the rest is still being encoded. The store's read
/// lock is held only while the scrape copies what it writes
/// ([`metrics::Snapshot`], a few percent of the encoding's time), never
/// while encoding nor while waiting on a slow scraper: pieces the scraper
/// has not taken yet wait with the encoder.
///
/// Gzip, when asked for, is done on the same thread, piece by piece as the
/// encoder writes (level 1: the body is repetitive text, which the fastest
/// level already shrinks about 20 times; higher levels cost several times
/// the CPU for a few percent).
pub(crate) async fn metrics(
    State(api): State<Arc<Api>>,
    Extension(scrapes): Extension<Scrapes>,
    headers: HeaderMap,
) -> Response {
    let Ok(permit) = scrapes.0.try_acquire_owned() else {
        return ApiError::busy("too many /metrics answers in progress; retry after the Retry-After seconds")
            .into_response();
    };
    let permit = Arc::new(permit);
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let format = format_from_accept(header(header::ACCEPT));
    let gzip = gzip_accepted(header(header::ACCEPT_ENCODING));
    let body = stream_blocking(permit, move |emit| {
        // The read lock is held for the copy only: ingest waits for that, not for the encoding.
        let snapshot = metrics::Snapshot::take(&api.ingest.read(), api.compat);
        let encode =
            |emit: &mut metrics::Emit<'_>| snapshot.encode_chunked(&api.telemetry, format, METRICS_CHUNK_BYTES, emit);
        let buffers = &Arc::new(Buffers::default());
        if !gzip {
            return encode(&mut |piece| {
                emit(buffers.send(piece));
                buffers.take()
            });
        }
        let mut gz = Gzip::new();
        encode(&mut |piece| {
            if let Some(compressed) = gz.push(&piece) {
                emit(compressed);
            }
            piece
        });
        emit(gz.finish());
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(format.content_type())),
            // Caches between the scraper and us must not hand a gzip body to a client that did not ask.
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ],
        body,
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// A body compressed piece by piece as it is written, each piece handed on
/// as soon as the compressor lets go of it.
pub struct Gzip(GzEncoder<Vec<u8>>);

impl Default for Gzip {
    fn default() -> Gzip {
        Gzip::new()
    }
}

impl Gzip {
    pub fn new() -> Gzip {
        Gzip(GzEncoder::new(Vec::new(), Compression::fast()))
    }

    /// Compresses `piece`; returns what is ready to send, if anything.
    pub fn push(&mut self, piece: &str) -> Option<Bytes> {
        self.0
            .write_all(piece.as_bytes())
            .expect("compressing into memory cannot fail");
        let ready = std::mem::take(self.0.get_mut());
        (!ready.is_empty()).then(|| Bytes::from(ready))
    }

    /// The rest of the compressed body and the gzip trailer.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.0.finish().expect("compressing into memory cannot fail"))
    }
}

/// Whether an `Accept-Encoding` header takes gzip (RFC 9110 12.5.3): `gzip`
/// (or `x-gzip`, or `*` when gzip is not named) with a q above 0.
fn gzip_accepted(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut star = false;
    for element in header.split(',') {
        let mut parts = element.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f64>().ok());
        let wanted = q.is_some_and(|q| q > 0.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return wanted;
        }
        if coding == "*" {
            star = wanted;
        }
    }
    star
}

/// A body that `produce` writes on a blocking thread (the read lock it takes
/// is released when it returns), streamed as the scraper takes it; `permit`
/// is held until the last piece is out.
///
/// If `produce` panics, the body ends in an error instead of a clean end: the
/// server then cuts the connection, so a scraper records a failed scrape
/// rather than accepting a truncated page as the whole truth.
pub fn stream_blocking<P: Send + Sync + 'static>(
    permit: Arc<P>,
    produce: impl FnOnce(&mut dyn FnMut(Bytes)) + Send + 'static,
) -> axum::body::Body {
    let (tx, rx) = mpsc::channel::<Bytes>(METRICS_QUEUE);
    let encoder_permit = permit.clone();
    let encoder = tokio::task::spawn_blocking(move || {
        let _permit = encoder_permit;
        let mut waiting = std::collections::VecDeque::new();
        produce(&mut |chunk| {
            waiting.push_back(chunk);
            hand_over(&tx, &mut waiting);
        });
        for chunk in waiting {
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
    });
    // After the last piece, the encoder's outcome: a panic must end the
    // body with an error (the connection is cut), not as if it were complete.
    let pieces = futures_util::stream::unfold((rx, Some(encoder), permit), |(mut rx, encoder, permit)| async move {
        if let Some(chunk) = rx.recv().await {
            return Some((Ok(chunk), (rx, encoder, permit)));
        }
        match encoder?.await {
            Ok(()) => None,
            Err(e) => Some((
                Err(std::io::Error::other(format!("encoding /metrics failed: {e}"))),
                (rx, None, permit),
            )),
        }
    });
    axum::body::Body::from_stream(pieces)
}

/// Passes the waiting pieces to the scraper as far as its queue has room,
/// without blocking; drops them all once the scraper has gone.
fn hand_over(tx: &mpsc::Sender<Bytes>, waiting: &mut std::collections::VecDeque<Bytes>) {
    while let Some(chunk) = waiting.pop_front() {
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                waiting.push_front(chunk);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                waiting.clear();
                return;
            }
        }
    }
}

/// Picks the format from an `Accept` header by q-value (RFC 9110
/// 12.5.1): OpenMetrics when the client prefers it, Prometheus text
/// otherwise (also with no header, or when neither is acceptable). Each
/// format takes the q of the most specific range that matches it
/// (`application/openmetrics-text` over `application/*` over `*/*`;
/// `version` is not looked at), and `q=0` means "not acceptable". At equal
/// q the format listed first wins, as Prometheus lists OpenMetrics first;
/// one wildcard matching both (`*/*`, as curl sends) gives text.
fn format_from_accept(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Prometheus;
    };
    let ranges: Vec<MediaRange> = accept.split(',').filter_map(MediaRange::parse).collect();
    let om = preference(&ranges, "application", "openmetrics-text");
    let text = preference(&ranges, "text", "plain");
    match (om, text) {
        (Some(om), _) if om.q == 0 => Format::Prometheus,
        (Some(_), None) => Format::OpenMetrics,
        (Some(om), Some(text)) if om.q > text.q || (om.q == text.q && om.position < text.position) => {
            Format::OpenMetrics
        }
        _ => Format::Prometheus,
    }
}

/// One element of an `Accept` header: `type/subtype;param=value;q=0.5`.
struct MediaRange<'a> {
    ty: &'a str,
    subtype: &'a str,
    /// Thousandths (q=0.5 is 500); 1000 when not given.
    q: u16,
}

impl MediaRange<'_> {
    /// None for an element that is not a media range (ignored, as RFC 9110 allows).
    fn parse(element: &str) -> Option<MediaRange<'_>> {
        let mut parts = element.split(';');
        let (ty, subtype) = parts.next()?.trim().split_once('/')?;
        let (ty, subtype) = (ty.trim(), subtype.trim());
        if ty.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                let value: f64 = value.trim().trim_matches('"').parse().ok()?;
                if !(0.0..=1.0).contains(&value) {
                    return None;
                }
                q = (value * 1000.0).round() as u16;
            }
        }
        Some(MediaRange { ty, subtype, q })
    }

    /// How specifically this range names `ty/subtype`: 2 exactly, 1 by
    /// `ty/*`, 0 by `*/*`; None if it does not match.
    fn specificity(&self, ty: &str, subtype: &str) -> Option<u8> {
        match (self.ty, self.subtype) {
            ("*", "*") => Some(0),
            (t, "*") if t.eq_ignore_ascii_case(ty) => Some(1),
            (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(subtype) => Some(2),
            _ => None,
        }
    }
}

/// How much a client wants one media type: its q, and the position of the
/// range that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Preference {
    q: u16,
    position: usize,
}

/// The q of `ty/subtype`: from the most specific ranges that match it, the
/// highest (several exact ones differ by `version`); None if none matches.
fn preference(ranges: &[MediaRange], ty: &str, subtype: &str) -> Option<Preference> {
    let mut best: Option<(u8, Preference)> = None;
    for (position, range) in ranges.iter().enumerate() {
        let Some(specificity) = range.specificity(ty, subtype) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((s, p)) => specificity > s || (specificity == s && range.q > p.q),
        };
        if better {
            best = Some((specificity, Preference { q: range.q, position }));
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A piece's buffer comes back only once every handle to the piece is
    /// gone (hyper may still be writing it before), and no more than
    /// [`KEPT_BUFFERS`] are kept.
    #[test]
    fn a_piece_gives_its_buffer_back_once_sent() {
        let buffers = Arc::new(Buffers::default());
        let mut text = String::with_capacity(1000);
        text.push_str("statescope_state 1\n");
        let piece = buffers.send(text);
        let slice = piece.slice(0..10);
        assert_eq!(&piece[..], b"statescope_state 1\n");
        drop(piece);
        assert_eq!(buffers.0.lock().unwrap().len(), 0, "a slice still holds the piece");
        assert_eq!(&slice[..], b"statescope");
        drop(slice);
        let reused = buffers.take();
        assert!(
            reused.is_empty() && reused.capacity() >= 1000,
            "the buffer came back, emptied"
        );
        let many: Vec<Bytes> = (0..KEPT_BUFFERS + 5).map(|_| buffers.send("x".repeat(10))).collect();
        drop(many);
        assert_eq!(buffers.0.lock().unwrap().len(), KEPT_BUFFERS);
    }

    #[test]
    fn gzip_is_served_when_the_scraper_takes_it() {
        // What Prometheus sends (enable_compression, the default).
        assert!(gzip_accepted(Some("gzip")));
        assert!(gzip_accepted(Some("deflate, GZIP;q=0.5")));
        assert!(gzip_accepted(Some("*")));
        assert!(!gzip_accepted(None));
        assert!(!gzip_accepted(Some("identity")));
        assert!(!gzip_accepted(Some("gzip;q=0")));
        assert!(!gzip_accepted(Some("gzip;q=0.0, *")), "named gzip wins over *");
        assert!(!gzip_accepted(Some("br, deflate")));
    }

    /// A panic while encoding must fail the scrape (a truncated page that
    /// ends cleanly is accepted by Prometheus as the whole truth). Checked as
    /// a client sees it, over a socket.
    #[tokio::test]
    async fn a_panic_while_streaming_a_body_cuts_the_response_off() {
        let app = axum::Router::new()
            .route(
                "/whole",
                axum::routing::get(|| async { stream_blocking(Arc::new(()), |emit| emit("all of it\n".into())) }),
            )
            .route(
                "/panics",
                axum::routing::get(|| async {
                    stream_blocking(Arc::new(()), |emit| {
                        emit("# the first families\n".into());
                        panic!("injected panic while encoding");
                    })
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let whole = client.get(format!("http://{addr}/whole")).send().await.unwrap();
        assert_eq!(whole.text().await.unwrap(), "all of it\n");
        // The status may or may not have gone out before the panic; either
        // way the client must not end up with a complete-looking page.
        let cut = async { client.get(format!("http://{addr}/panics")).send().await?.text().await }.await;
        assert!(cut.is_err(), "the client took a truncated body as complete: {cut:?}");
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        assert_eq!(format_from_accept(None), Format::Prometheus);
        assert_eq!(
            format_from_accept(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Prometheus
        );
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5";
        assert_eq!(format_from_accept(Some(prom)), Format::OpenMetrics);
    }

    #[test]
    fn the_accept_header_is_read_by_q_value() {
        let om = |accept: &str| format_from_accept(Some(accept)) == Format::OpenMetrics;
        // What Prometheus 3 sends (scrape_protocols default).
        assert!(om(
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        ));
        // Prometheus 2.
        assert!(om(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(om("application/openmetrics-text"));
        assert!(om("Application/OpenMetrics-Text ; Q=0.9 , text/plain ; q=0.8"));
        assert!(om("application/*;q=0.9,text/plain;q=0.5"));
        // Equal q: the first listed.
        assert!(om("application/openmetrics-text,text/plain"));
        assert!(!om("text/plain,application/openmetrics-text"));
        // Not acceptable, or less wanted.
        assert!(!om("application/openmetrics-text;q=0,text/plain;version=0.0.4"));
        assert!(!om("application/openmetrics-text;q=0"));
        assert!(!om("application/openmetrics-text;q=0.000"));
        assert!(!om(
            "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1"
        ));
        // The most specific range decides: openmetrics is excluded despite */*.
        assert!(!om("*/*,application/openmetrics-text;q=0"));
        assert!(!om("*/*;q=0.9,application/*;q=0.1"));
        // curl, browsers, nothing parseable.
        assert!(!om("*/*"));
        assert!(!om("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(!om(""));
        assert!(!om("garbage"));
        assert!(!om("application/openmetrics-text;q=lots"));
    }
}
