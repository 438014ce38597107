//! What goes on the wire: the exporter's push format (`POST /api/v1/events`).
//! The test `client_events_are_what_the_exporter_parses` checks every variant
//! against the exporter's own parser, so this cannot drift from it.

use std::collections::BTreeMap;

use serde::Serialize;

/// How a call through a circuit breaker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Timeout,
    /// The breaker refused the call without trying it.
    Rejected,
}

/// How a worker's job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    Succeeded,
    Failed,
}

/// The exporter's bounds on job times: 0 to one year, in seconds.
pub(crate) const MAX_JOB_SECONDS: f64 = 31_536_000.0;

/// What happened to a machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Body {
    Transition {
        to: String,
    },
    Call {
        outcome: Outcome,
        #[serde(skip_serializing_if = "Option::is_none")]
        failure_count: Option<u64>,
    },
    Heartbeat,
    Job {
        result: JobResult,
        duration_seconds: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_seconds: Option<f64>,
    },
}

/// One event as sent.
#[derive(Serialize)]
pub(crate) struct WireEvent<'a> {
    pub kind: &'a str,
    pub machine: &'a str,
    #[serde(flatten)]
    pub body: &'a Body,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: &'a BTreeMap<String, String>,
    pub seq: u64,
    pub id: &'a str,
}

/// A job time in the exporter's range; NaN (unknown) is 0.
pub(crate) fn clamp_seconds(s: f64) -> f64 {
    if s.is_nan() { 0.0 } else { s.clamp(0.0, MAX_JOB_SECONDS) }
}

/// The exporter's name for a library's state: `"half-open"`, `"HALF_OPEN"`,
/// `"HalfOpen"` and `"Half Open"` are all `half_open`.
pub fn state_name(state: &str) -> String {
    let mut out = String::with_capacity(state.len() + 2);
    let mut prev_lower = false;
    for c in state.trim().chars() {
        if c == '-' || c == ' ' || c == '_' {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        } else if c.is_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_state_names_map_to_the_exporters() {
        for s in ["half-open", "HALF_OPEN", "HalfOpen", "Half Open", "half_open"] {
            assert_eq!(state_name(s), "half_open", "{s}");
        }
        assert_eq!(state_name("Closed"), "closed");
        assert_eq!(state_name("FORCED_OPEN"), "forced_open");
    }

    #[test]
    fn job_times_are_clamped_to_the_exporters_range() {
        assert_eq!(clamp_seconds(f64::NAN), 0.0);
        assert_eq!(clamp_seconds(-1.0), 0.0);
        assert_eq!(clamp_seconds(1e308), MAX_JOB_SECONDS);
        assert_eq!(clamp_seconds(2.5), 2.5);
    }
}
