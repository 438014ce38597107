//! Why the panel cannot draw anything. Each message is one line a dashboard
//! user understands, and says what the panel expected instead.

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Error)]
pub enum DataProblem {
    #[error(
        "No data: the query returned no series. Point a query at statescope_state, \
         resilience4j_circuitbreaker_state, circuit_breaker_state or a gauge with value mappings."
    )]
    NoData,

    #[error(
        "No state series: the query returned only {seen}. Add a query for statescope_state, \
         resilience4j_circuitbreaker_state, circuit_breaker_state or a gauge with value mappings."
    )]
    NoStateSeries { seen: String },

    #[error("Time range is empty ({from} to {to}): pick a dashboard time range that ends after it starts.")]
    EmptyTimeRange { from: f64, to: f64 },

    #[error(
        "Series `{series}` has values {values} that are not states: add value mappings or choose shape \"one_hot\"."
    )]
    UnmappedValues { series: String, values: String },

    #[error(
        "Series `{series}` has values {values} that are not states: no value mappings say which state each is; \
         add value mappings that name a state for each value (e.g. 0 → idle, 1 → busy)."
    )]
    NoValueMappings { series: String, values: String },

    #[error("Options: identity label `{label}` is on no series (labels seen: {seen}).")]
    UnknownIdentityLabel { label: String, seen: String },

    #[error(
        "Options: shape \"one_hot\" needs a `{label}` label holding the state on every series (labels seen: {seen}); \
         set the state label option or choose shape \"enum\"."
    )]
    NoStateLabel { label: String, seen: String },

    #[error(
        "Options: kind `{kind}` is not built in (circuit_breaker, worker) and no statescope_transition_allowed \
         series describe it: add a query for statescope_transition_allowed{{kind=\"{kind}\"}}."
    )]
    UnknownKind { kind: String },

    #[error("Kind `{kind}` cannot be drawn: {reason}.")]
    BadKind { kind: String, reason: String },
}
