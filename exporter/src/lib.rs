//! statescope-exporter: keeps the state of circuit breakers, workers and
//! custom state machines reported by services, and serves them to Prometheus.
//!
//! The path of an event: [`api`] parses and checks it ([`events`]), [`ingest`]
//! applies it to the [`store`] through one applier thread and logs it with
//! [`wal`] before answering; [`metrics`] renders the store on `/metrics`
//! ([`scrape`] serves it).
//! [`demo`] and [`poll`] are two more sources of events; [`server`] wires it
//! all together for `main`, serving HTTP through [`web`] (bounds, timeouts,
//! TLS) with [`auth`] and the [`web_config`] file.

pub mod api;
pub mod auth;
pub mod config;
pub mod demo;
pub mod events;
pub mod ingest;
pub mod metrics;
pub mod poll;
pub mod push;
pub mod refusal;
pub mod scrape;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod wal;
pub mod web;
pub mod web_config;
