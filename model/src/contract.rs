//! The metric contract: names and labels the exporter emits and the panel,
//! dashboards and alert rules read. Changing a name here is a breaking change
//! for every user's dashboards; add, don't rename.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Label: the machine's kind (`circuit_breaker`, `worker`, or a custom kind).
pub const LABEL_KIND: &str = "kind";
/// Label: the machine's id, unique within its kind (`openai/key-3`, `worker-07`).
pub const LABEL_MACHINE: &str = "machine";
/// Label: a state name on one-hot series.
pub const LABEL_STATE: &str = "state";
/// Labels: the two ends of a transition.
pub const LABEL_FROM: &str = "from";
pub const LABEL_TO: &str = "to";

/// Label of `statescope_transition_allowed`: `normal` or `manual` (see
/// [`crate::Flow`]), so a diagram can draw manual moves apart.
pub const LABEL_FLOW: &str = "flow";

/// Identity labels a reporter may attach to a machine when the exporter's
/// config names none (`identity_labels = [...]`); they are copied onto its
/// per-machine series so dashboards can group by them. Any other label name is
/// refused, which keeps series shapes predictable.
///
/// A machine is its `kind` and `machine`: its identity labels are those of the
/// event that created it and never change afterwards (later events that carry
/// other values are applied without them, and the answer says so), so one
/// machine never has two series histories.
pub const DEFAULT_IDENTITY_LABELS: [&str; 4] = [LABEL_PROVIDER, LABEL_KEY_ID, LABEL_WORKER_TYPE, LABEL_SERVICE];
/// Identity label: the upstream a breaker guards (`openai`); with
/// [`LABEL_KEY_ID`], what the compatibility series are labelled by.
pub const LABEL_PROVIDER: &str = "provider";
/// Identity label: the credential or endpoint a breaker guards (`key-3`).
pub const LABEL_KEY_ID: &str = "key_id";
/// Identity label: a worker's pool; the job histograms are kept per kind and
/// worker_type.
pub const LABEL_WORKER_TYPE: &str = "worker_type";
/// Identity label: the service that reports the machine.
pub const LABEL_SERVICE: &str = "service";
/// Most identity label names a config may declare: each one is a label on
/// every per-machine series.
pub const MAX_IDENTITY_LABELS: usize = 8;

/// Gauge, one-hot: 1 for the machine's current state, 0 for its kind's other
/// states (the OpenMetrics StateSet shape, as Resilience4j exports).
/// Labels: kind, machine, state, identity labels.
pub const STATE: &str = "statescope_state";
/// Counter of transitions taken, counted at the source so flaps between two
/// scrapes are not lost. Labels: kind, machine, from, to, identity labels.
pub const TRANSITIONS_TOTAL: &str = "statescope_transitions_total";
/// Gauge: unix time (seconds) the current state was entered. Labels: kind, machine, identity labels.
pub const STATE_SINCE_TIMESTAMP_SECONDS: &str = "statescope_state_since_timestamp_seconds";
/// Gauge, 1 for each allowed transition of each kind, so a custom kind's
/// diagram can be drawn from the data alone. Labels: kind, from, to, flow
/// (`normal` for the kind's own flow, `manual` for moves an operator forces).
pub const TRANSITION_ALLOWED: &str = "statescope_transition_allowed";
/// Gauge: each state's severity, 0 ok, 1 info, 2 warning, 3 critical. Labels: kind, state.
pub const STATE_SEVERITY: &str = "statescope_state_severity";
/// Counter of reported transitions the machine's kind does not expect (in
/// neither its normal flow nor its manual moves). A reported transition is a
/// fact: it is applied (and counted in [`TRANSITIONS_TOTAL`] too, where its
/// `from`/`to` are), unless the exporter runs with `strict_transitions`, which
/// refuses it and still counts it here. Labels: kind, machine.
pub const UNEXPECTED_TRANSITIONS_TOTAL: &str = "statescope_unexpected_transitions_total";

/// Counter of calls through a breaker. Labels: kind, machine, outcome, identity labels.
pub const BREAKER_CALLS_TOTAL: &str = "statescope_breaker_calls_total";
/// Label of [`BREAKER_CALLS_TOTAL`], a [`CallOutcome`].
pub const LABEL_OUTCOME: &str = "outcome";
/// Gauge: failures in the breaker's current window, as last reported (or
/// consecutive failures counted by the exporter when the reporter sends none).
/// Not `..._failure_count`: Prometheus reserves the `_count` suffix for
/// histograms and summaries, and `promtool check metrics` rejects it.
pub const BREAKER_FAILURES: &str = "statescope_breaker_failures";

/// Counter of jobs a worker finished. Labels: kind, machine, result, identity labels.
pub const WORKER_JOBS_TOTAL: &str = "statescope_worker_jobs_total";
/// Label of [`WORKER_JOBS_TOTAL`], a [`JobResult`].
pub const LABEL_RESULT: &str = "result";
/// Histograms per kind and worker_type (not per machine, to bound series):
/// how long jobs ran, and how long they waited in the queue before starting.
pub const WORKER_JOB_DURATION_SECONDS: &str = "statescope_worker_job_duration_seconds";
pub const WORKER_QUEUE_WAIT_SECONDS: &str = "statescope_worker_queue_wait_seconds";
/// Gauge: unix time of the machine's last heartbeat. Labels: kind, machine, identity labels.
pub const LAST_HEARTBEAT_TIMESTAMP_SECONDS: &str = "statescope_last_heartbeat_timestamp_seconds";

/// Counters that exist, at 0, from the moment their machine is created, so
/// that Prometheus' `increase()`/`rate()` and the panel see the first
/// increment of each (a counter that appears at 1 has no earlier sample to
/// count from):
/// - [`TRANSITIONS_TOTAL`] for every normal-flow pair of the machine's kind
///   (manual and unexpected pairs appear when first taken);
/// - [`UNEXPECTED_TRANSITIONS_TOTAL`];
/// - [`BREAKER_CALLS_TOTAL`] for every outcome, on `circuit_breaker` machines
///   (other kinds: from their first call);
/// - [`WORKER_JOBS_TOTAL`] for every result, on `worker` machines (other
///   kinds: from their first job);
/// - [`COMPAT_BREAKER_TRIPS_TOTAL`] when compatibility series are served.
///
/// That leaves a machine's creating transition (its first event is a
/// transition out of the initial state: the series is 1 when first seen). For
/// it, in OpenMetrics every machine counter carries `<name>_created` (unix
/// time its machine was created; Prometheus stores it as a series of that
/// name unless created-timestamp ingestion is on): a series whose `_created`
/// lies inside a range counts from 0, one created before the range is a
/// baseline. The provisioned rules and dashboards count that way.
pub const COUNTERS_FROM_CREATION: [&str; 5] = [
    TRANSITIONS_TOTAL,
    UNEXPECTED_TRANSITIONS_TOTAL,
    BREAKER_CALLS_TOTAL,
    WORKER_JOBS_TOTAL,
    COMPAT_BREAKER_TRIPS_TOTAL,
];
/// Suffix of the OpenMetrics sample that holds a counter's creation time
/// (`statescope_transitions_created` for `statescope_transitions_total`).
pub const CREATED_SUFFIX: &str = "_created";

/// Compatibility series, with the names many existing dashboards and alert
/// rules already use. Only for `circuit_breaker` machines; labels provider
/// and key_id (from the identity labels, else provider "" and key_id = machine).
/// Value: the state's enum value, 0 closed, 1 open, 2 half_open (3 forced_open, 4 disabled).
pub const COMPAT_BREAKER_STATE: &str = "circuit_breaker_state";
/// Counter of transitions into `open`.
pub const COMPAT_BREAKER_TRIPS_TOTAL: &str = "circuit_breaker_trips_total";
/// Gauge, same value as [`BREAKER_FAILURES`]. The seed dashboards' name; its
/// `_count` suffix fails `promtool check metrics`, so the exporter only
/// serves it when asked to (`--compat-metrics full`).
pub const COMPAT_BREAKER_FAILURE_COUNT: &str = "circuit_breaker_failure_count";

/// Exporter self-metrics.
pub const EXPORTER_MACHINES: &str = "statescope_exporter_machines";
pub const EXPORTER_EVENTS_TOTAL: &str = "statescope_exporter_events_total";
pub const EXPORTER_EVENTS_REJECTED_TOTAL: &str = "statescope_exporter_events_rejected_total";
pub const EXPORTER_HTTP_REQUESTS_TOTAL: &str = "statescope_exporter_http_requests_total";
pub const EXPORTER_HTTP_REQUEST_DURATION_SECONDS: &str = "statescope_exporter_http_request_duration_seconds";

/// Names of one-hot state series in other exporters the panel recognises
/// without configuration (labels `name`/`state` for Resilience4j).
pub const RESILIENCE4J_STATE: &str = "resilience4j_circuitbreaker_state";

/// Outcome of one call through a circuit breaker.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Success,
    Failure,
    Timeout,
    /// Short-circuited: the breaker refused the call without trying it.
    Rejected,
}

impl CallOutcome {
    /// Every outcome: the values of a call event's `outcome` and of the
    /// [`LABEL_OUTCOME`] label, in the order the exporter counts and serves them.
    pub const ALL: [CallOutcome; 4] = [
        CallOutcome::Success,
        CallOutcome::Failure,
        CallOutcome::Timeout,
        CallOutcome::Rejected,
    ];

    /// The name on the wire and in the label, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::Failure => "failure",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Rejected => "rejected",
        }
    }

    /// Failures and timeouts are what trip a breaker.
    pub fn is_failure(self) -> bool {
        matches!(self, CallOutcome::Failure | CallOutcome::Timeout)
    }
}

/// How a worker's job ended.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    Succeeded,
    Failed,
}

impl JobResult {
    /// Every result: the values of a job event's `result` and of the
    /// [`LABEL_RESULT`] label, in the order the exporter counts and serves them.
    pub const ALL: [JobResult; 2] = [JobResult::Succeeded, JobResult::Failed];

    /// The name on the wire and in the label, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Succeeded => "succeeded",
            JobResult::Failed => "failed",
        }
    }
}

/// A label value that is not one of its label's values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {label} `{value}`, expected one of {}", quoted(allowed))]
pub struct UnknownValue {
    /// The label (`outcome`, `result`).
    pub label: &'static str,
    pub value: String,
    pub allowed: Vec<&'static str>,
}

/// `a`, `b`, `c`: as serde lists the variants it expected.
fn quoted(values: &[&str]) -> String {
    values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
}

macro_rules! label_value {
    ($ty:ty, $label:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownValue {
                        label: $label,
                        value: s.to_owned(),
                        allowed: <$ty>::ALL.iter().map(|v| v.as_str()).collect(),
                    })
            }
        }
    };
}

label_value!(CallOutcome, LABEL_OUTCOME);
label_value!(JobResult, LABEL_RESULT);

#[cfg(test)]
mod tests {
    use super::*;

    /// The names `as_str` gives are the ones serde reads and writes, so the
    /// label values, the API's counts and the push API agree.
    #[test]
    fn label_values_are_the_wire_names() {
        let wire = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for o in CallOutcome::ALL {
            assert_eq!(wire(serde_json::to_value(o).unwrap()), o.as_str());
            assert_eq!(o.as_str().parse::<CallOutcome>(), Ok(o));
            assert_eq!(o.to_string(), o.as_str());
        }
        for r in JobResult::ALL {
            assert_eq!(wire(serde_json::to_value(r).unwrap()), r.as_str());
            assert_eq!(r.as_str().parse::<JobResult>(), Ok(r));
        }
        let names: Vec<_> = CallOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names, ["success", "failure", "timeout", "rejected"]);
        let names: Vec<_> = JobResult::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["succeeded", "failed"]);
    }

    #[test]
    fn an_unknown_value_names_its_label_and_every_allowed_value() {
        let err = "boom".parse::<CallOutcome>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown outcome `boom`, expected one of `success`, `failure`, `timeout`, `rejected`"
        );
        let err = "Succeeded".parse::<JobResult>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown result `Succeeded`, expected one of `succeeded`, `failed`"
        );
        // serde's own refusal, which the push API answers with, says as much.
        let err = serde_json::from_str::<CallOutcome>(r#""boom""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`success`, `failure`, `timeout`, `rejected`"), "{err}");
    }
}
