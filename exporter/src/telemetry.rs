//! The exporter's own metrics (events, rejections, HTTP requests), kept in a
//! prometheus-client registry, and the process metrics read from `/proc`.

use std::fmt::Write as _;
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use statescope_model::contract as c;

use crate::events::{Event, EventType};
use crate::store::Applied;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// See [`method_label`]: a bounded set, whatever clients send.
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// The labels of `statescope_build_info`, as prometheus/common's build_info
/// has them (`goversion` becomes `rustversion`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    revision: &'static str,
    rustversion: &'static str,
}

const BUILD: BuildLabels = BuildLabels {
    version: env!("CARGO_PKG_VERSION"),
    revision: env!("STATESCOPE_REVISION"),
    rustversion: env!("STATESCOPE_RUSTC_VERSION"),
};

/// Why an event was refused (the `reason` label of the rejection counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Unauthorized,
    TooLarge,
    UnknownKind,
    UnknownState,
    Illegal,
    Limit,
    Unavailable,
    /// Shed: too many writes in progress.
    Overloaded,
    /// The body did not arrive within the body read timeout.
    Timeout,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Unauthorized => "unauthorized",
            Rejection::TooLarge => "too_large",
            Rejection::UnknownKind => "unknown_kind",
            Rejection::UnknownState => "unknown_state",
            Rejection::Illegal => "illegal",
            Rejection::Limit => "limit",
            Rejection::Unavailable => "unavailable",
            Rejection::Overloaded => "overloaded",
            Rejection::Timeout => "timeout",
        }
    }
}

pub struct Telemetry {
    registry: Registry,
    events: Family<TypeLabel, Counter>,
    duplicates: Counter,
    stale: Counter,
    rejected: Family<ReasonLabel, Counter>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabel, Histogram>,
}

/// Registered without `_total`: prometheus-client appends it to counters.
fn counter_name(full: &str) -> &str {
    full.strip_suffix("_total")
        .expect("counter names in the contract end in _total")
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        let mut registry = Registry::default();
        let events = Family::<TypeLabel, Counter>::default();
        let duplicates = Counter::default();
        let stale = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        registry.register(
            counter_name(c::EXPORTER_EVENTS_TOTAL),
            "Events applied, by type",
            events.clone(),
        );
        registry.register(
            "statescope_exporter_duplicate_events",
            "Events not applied because their seq or id showed a retry",
            duplicates.clone(),
        );
        registry.register(
            "statescope_exporter_stale_events",
            "Events not applied because a newer report (higher seq) of their machine was applied first",
            stale.clone(),
        );
        registry.register(
            counter_name(c::EXPORTER_EVENTS_REJECTED_TOTAL),
            "Events refused, by reason",
            rejected.clone(),
        );
        registry.register(
            counter_name(c::EXPORTER_HTTP_REQUESTS_TOTAL),
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            c::EXPORTER_HTTP_REQUEST_DURATION_SECONDS,
            "Time to answer HTTP requests, by route",
            durations.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BUILD).set(1);
        registry.register(
            "statescope_build_info",
            "A metric with a constant '1' value labeled by version, revision and rustversion from which statescope-exporter was built",
            build,
        );
        // Every type and reason from the start, so rate() has a baseline.
        for t in EventType::ALL {
            let _ = events.get_or_create(&TypeLabel { r#type: t.as_str() });
        }
        Telemetry {
            registry,
            events,
            duplicates,
            stale,
            rejected,
            requests,
            durations,
        }
    }
}

impl Telemetry {
    pub fn count_events(&self, events: &[Event], applied: &[Applied]) {
        for (event, a) in events.iter().zip(applied) {
            if *a == Applied::Duplicate {
                self.duplicates.inc();
            } else if matches!(a, Applied::Stale { .. }) {
                self.stale.inc();
            } else {
                self.events
                    .get_or_create(&TypeLabel {
                        r#type: event.action.event_type().as_str(),
                    })
                    .inc();
            }
        }
    }

    pub fn reject(&self, reason: Rejection, events: u64) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc_by(events);
    }

    pub fn request(&self, method: &Method, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                route,
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabel { route })
            .observe(took.as_secs_f64());
    }

    /// The registry in OpenMetrics text, without the final `# EOF`.
    pub fn encode_openmetrics(&self, out: &mut String) {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
            .expect("writing to a String cannot fail");
    }
}

/// The `method` label of a request: the standard methods (RFC 9110, and
/// PATCH) by name, anything else `other`. Any client, without a token, can
/// send any method token, and each would otherwise add series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Process metrics as the Prometheus client libraries name them; empty where
/// `/proc` is not available.
pub fn process_metrics() -> Vec<(&'static str, &'static str, bool, f64)> {
    let mut out = Vec::new();
    let Ok(me) = procfs::process::Process::myself() else {
        return out;
    };
    if let Ok(stat) = me.stat() {
        let tps = procfs::ticks_per_second() as f64;
        out.push((
            "process_cpu_seconds_total",
            "CPU time used, user and system",
            true,
            (stat.utime + stat.stime) as f64 / tps,
        ));
        out.push((
            "process_resident_memory_bytes",
            "Resident memory",
            false,
            (stat.rss * procfs::page_size()) as f64,
        ));
        out.push((
            "process_virtual_memory_bytes",
            "Virtual memory",
            false,
            stat.vsize as f64,
        ));
        if let Ok(boot) = procfs::boot_time_secs() {
            out.push((
                "process_start_time_seconds",
                "Start time, unix seconds",
                false,
                boot as f64 + stat.starttime as f64 / tps,
            ));
        }
    }
    if let Ok(fds) = me.fd_count() {
        out.push(("process_open_fds", "Open file descriptors", false, fds as f64));
    }
    out
}

/// Formats a float the way Prometheus text does (`+Inf`, integers without a fraction).
pub fn fmt_value(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v.fract() == 0.0 {
        if v.abs() < 1e15 {
            let _ = write!(out, "{}", v as i64);
        } else {
            // zmij would write `.0`; `fmt` writes every digit, as the bodies always had.
            let _ = write!(out, "{v}");
        }
    } else {
        // The shortest digits that read back as `v`, as `{v}` writes them
        // but found several times faster (a timestamp per machine per
        // scrape). Where two are as short and as near, the two may pick
        // differently. `fmt` for the few zmij writes with an exponent,
        // which the bodies never had.
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format_finite(v);
        if text.bytes().any(|b| b == b'e') {
            let _ = write!(out, "{v}");
        } else {
            out.push_str(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_large_whole_values_are_written_in_plain_digits() {
        let text = |v: f64| {
            let mut out = String::new();
            fmt_value(&mut out, v);
            out
        };
        assert_eq!(
            text(1_800_000_000.123_456_7),
            "1800000000.1234567",
            "a clock's reading, every digit it needs"
        );
        assert_eq!(
            text(-7_908_707_092_491_004.0),
            "-7908707092491004",
            "no `.0` on a whole value"
        );
        assert_eq!(text(1e300), format!("{}", 1e300), "no exponent");
    }

    proptest::proptest! {
        /// Values read back as themselves, in no more digits than `fmt` writes
        /// (and as it writes them for specials and whole values).
        #[test]
        fn values_read_back_exactly_in_the_fewest_digits(v in proptest::num::f64::ANY, seconds in 1.0e9f64..4.0e9) {
            for v in [v, seconds] {
                let mut text = String::new();
                fmt_value(&mut text, v);
                if v.is_nan() {
                    proptest::prop_assert_eq!(text, "NaN");
                } else if v.is_infinite() {
                    proptest::prop_assert_eq!(text, if v > 0.0 { "+Inf" } else { "-Inf" });
                } else if v.fract() == 0.0 && v.abs() < 1e15 {
                    proptest::prop_assert_eq!(text, (v as i64).to_string());
                } else {
                    proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), v, "{} written as {}", v, text);
                    proptest::prop_assert!(!text.contains('e'));
                    proptest::prop_assert!(text.len() <= v.to_string().len(), "{} written as {}", v, text);
                }
            }
        }
    }

    #[test]
    fn request_methods_are_a_bounded_set_of_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for odd in ["X1", "get", "PROPFIND", "BREW"] {
            assert_eq!(
                method_label(&Method::from_bytes(odd.as_bytes()).unwrap()),
                "other",
                "{odd}"
            );
        }
    }
}
