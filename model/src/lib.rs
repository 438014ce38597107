//! Statescope's shared model: what the exporter and the panel must agree on.
//!
//! - [`kind`]: a machine *kind* (states, initial state, allowed transitions, the
//!   severity and colour of each state), checked once when it is defined so the
//!   rest of the code can rely on it.
//! - [`builtin`]: the kinds every Statescope knows, `circuit_breaker` and `worker`.
//! - [`contract`]: metric and label names the exporter emits and the panel reads,
//!   and the values of its fixed labels ([`contract::CallOutcome`], [`contract::JobResult`]).
//!
//! The crate has no I/O and few dependencies so that it compiles natively and to
//! `wasm32-unknown-unknown` alike.

pub mod builtin;
pub mod contract;
pub mod kind;

pub use kind::{DefinitionError, Flow, Kind, KindSpec, Severity, StateId, StateSpec};
