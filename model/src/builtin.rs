//! The kinds every Statescope knows without configuration.

use crate::kind::{Kind, KindSpec, Severity, StateSpec};

pub const CIRCUIT_BREAKER: &str = "circuit_breaker";
pub const WORKER: &str = "worker";

/// The states of [`circuit_breaker`], by name, for code that acts on one.
pub mod breaker_state {
    pub const CLOSED: &str = "closed";
    pub const OPEN: &str = "open";
    pub const HALF_OPEN: &str = "half_open";
    pub const FORCED_OPEN: &str = "forced_open";
    pub const DISABLED: &str = "disabled";
    pub const METRICS_ONLY: &str = "metrics_only";
}

/// The states of [`worker`], by name, for code that acts on one.
pub mod worker_state {
    pub const STARTING: &str = "starting";
    pub const IDLE: &str = "idle";
    pub const BUSY: &str = "busy";
    pub const DRAINING: &str = "draining";
    pub const OFFLINE: &str = "offline";
}

/// A circuit breaker as Resilience4j, pybreaker and most libraries model it.
///
/// The order of states gives the enum values used by `circuit_breaker_state`
/// dashboards: closed 0, open 1, half_open 2 (then forced_open 3, disabled 4,
/// metrics_only 5).
///
/// The normal flow is the breaker's own: trip, probe, recover or trip again.
/// Every library also lets an operator move a breaker by hand to any state
/// (pybreaker's `close()`, `open()`, `half_open()`; Resilience4j's
/// `transitionTo*State()` including forced_open, disabled and metrics_only;
/// Polly's `Isolate()` and `Reset()`), so every other move is manual: allowed,
/// and drawn and counted apart.
pub fn circuit_breaker() -> Kind {
    use breaker_state::*;
    let spec = KindSpec {
        name: CIRCUIT_BREAKER.into(),
        states: vec![
            StateSpec::new(CLOSED, Severity::Ok, Some("green")),
            StateSpec::new(OPEN, Severity::Critical, Some("red")),
            StateSpec::new(HALF_OPEN, Severity::Warning, Some("orange")),
            StateSpec::new(FORCED_OPEN, Severity::Critical, Some("purple")),
            StateSpec::new(DISABLED, Severity::Info, Some("text")),
            // Resilience4j: calls always pass, metrics are still recorded.
            StateSpec::new(METRICS_ONLY, Severity::Info, Some("blue")),
        ],
        initial: CLOSED.into(),
        transitions: pairs(&[
            (CLOSED, OPEN),
            (OPEN, HALF_OPEN),
            (HALF_OPEN, CLOSED),
            (HALF_OPEN, OPEN),
        ]),
        manual_transitions: pairs(&[
            ("*", CLOSED),
            ("*", OPEN),
            ("*", HALF_OPEN),
            ("*", FORCED_OPEN),
            ("*", DISABLED),
            ("*", METRICS_ONLY),
        ]),
        heartbeat_lost_state: None,
    };
    Kind::from_spec(spec).expect("built-in circuit_breaker kind is valid")
}

/// A worker in a pool: it starts, takes jobs, may be drained, and goes offline
/// (by itself, or because the exporter stopped hearing its heartbeat).
pub fn worker() -> Kind {
    use worker_state::*;
    let spec = KindSpec {
        name: WORKER.into(),
        states: vec![
            StateSpec::new(STARTING, Severity::Info, Some("blue")),
            StateSpec::new(IDLE, Severity::Ok, Some("green")),
            StateSpec::new(BUSY, Severity::Ok, Some("dark-green")),
            StateSpec::new(DRAINING, Severity::Warning, Some("orange")),
            StateSpec::new(OFFLINE, Severity::Critical, Some("red")),
        ],
        initial: STARTING.into(),
        transitions: pairs(&[
            (STARTING, IDLE),
            (IDLE, BUSY),
            (BUSY, IDLE),
            (IDLE, DRAINING),
            (BUSY, DRAINING),
            (DRAINING, IDLE),
            ("*", OFFLINE),
            (OFFLINE, STARTING),
        ]),
        // Worker frameworks have no API that forces a worker's state; a move
        // outside this flow (starting -> busy) is unexpected, and counted so.
        manual_transitions: Vec::new(),
        heartbeat_lost_state: Some(OFFLINE.into()),
    };
    Kind::from_spec(spec).expect("built-in worker kind is valid")
}

/// Both built-in kinds.
pub fn all() -> Vec<Kind> {
    vec![circuit_breaker(), worker()]
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Flow;

    #[test]
    fn breaker_enum_values_match_existing_dashboards() {
        let cb = circuit_breaker();
        for (value, name) in ["closed", "open", "half_open"].into_iter().enumerate() {
            assert_eq!(cb.state_name(cb.state_by_value(value).unwrap()), name);
        }
        assert_eq!(cb.state_name(cb.initial()), "closed");
    }

    #[test]
    fn a_breaker_recovers_through_half_open_and_any_other_move_is_manual() {
        let cb = circuit_breaker();
        let id = |s| cb.state_id(s).unwrap();
        assert_eq!(cb.flow(id("half_open"), id("closed")), Some(Flow::Normal));
        // pybreaker's close() on an open breaker, Resilience4j's transitionToForcedOpenState().
        assert_eq!(cb.flow(id("open"), id("closed")), Some(Flow::Manual));
        assert_eq!(cb.flow(id("closed"), id("forced_open")), Some(Flow::Manual));
        assert_eq!(cb.flow(id("disabled"), id("metrics_only")), Some(Flow::Manual));
        let normal: Vec<_> = cb
            .transitions()
            .map(|(f, t)| (cb.state_name(f), cb.state_name(t)))
            .collect();
        assert_eq!(
            normal,
            [
                ("closed", "open"),
                ("open", "half_open"),
                ("half_open", "closed"),
                ("half_open", "open")
            ]
        );
        // Every move between two states is expected one way or the other.
        for from in cb.state_ids() {
            assert_eq!(cb.next_states(from).count(), cb.states().len() - 1);
        }
    }

    #[test]
    fn worker_expires_to_offline_and_restarts_through_starting() {
        let w = worker();
        let offline = w.heartbeat_lost_state().unwrap();
        assert_eq!(w.state_name(offline), "offline");
        for s in w.state_ids().filter(|&s| s != offline) {
            assert!(w.is_allowed(s, offline), "{} -> offline", w.state_name(s));
        }
        let next: Vec<_> = w.next_states(offline).map(|s| w.state_name(s)).collect();
        assert_eq!(next, ["starting"]);
    }
}
