//! The kinds every Statescope knows without configuration.

use crate::kind::{Kind, KindSpec, Severity, StateSpec};

pub const CIRCUIT_BREAKER: &str = "circuit_breaker";
pub const WORKER: &str = "worker";

/// A circuit breaker as Resilience4j, pybreaker and most libraries model it.
///
/// The order of states gives the enum values used by `circuit_breaker_state`
/// dashboards: closed 0, open 1, half_open 2 (then forced_open 3, disabled 4).
pub fn circuit_breaker() -> Kind {
    let spec = KindSpec {
        name: CIRCUIT_BREAKER.into(),
        states: vec![
            StateSpec::new("closed", Severity::Ok, Some("green")),
            StateSpec::new("open", Severity::Critical, Some("red")),
            StateSpec::new("half_open", Severity::Warning, Some("orange")),
            StateSpec::new("forced_open", Severity::Critical, Some("purple")),
            StateSpec::new("disabled", Severity::Info, Some("text")),
        ],
        initial: "closed".into(),
        transitions: pairs(&[
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
            ("half_open", "open"),
            // An operator can force or disable a breaker from any state and hand it back.
            ("*", "forced_open"),
            ("*", "disabled"),
            ("forced_open", "closed"),
            ("disabled", "closed"),
        ]),
        heartbeat_lost_state: None,
    };
    Kind::from_spec(spec).expect("built-in circuit_breaker kind is valid")
}

/// A worker in a pool: it starts, takes jobs, may be drained, and goes offline
/// (by itself, or because the exporter stopped hearing its heartbeat).
pub fn worker() -> Kind {
    let spec = KindSpec {
        name: WORKER.into(),
        states: vec![
            StateSpec::new("starting", Severity::Info, Some("blue")),
            StateSpec::new("idle", Severity::Ok, Some("green")),
            StateSpec::new("busy", Severity::Ok, Some("dark-green")),
            StateSpec::new("draining", Severity::Warning, Some("orange")),
            StateSpec::new("offline", Severity::Critical, Some("red")),
        ],
        initial: "starting".into(),
        transitions: pairs(&[
            ("starting", "idle"),
            ("idle", "busy"),
            ("busy", "idle"),
            ("idle", "draining"),
            ("busy", "draining"),
            ("draining", "idle"),
            ("*", "offline"),
            ("offline", "starting"),
        ]),
        heartbeat_lost_state: Some("offline".into()),
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

    #[test]
    fn breaker_enum_values_match_existing_dashboards() {
        let cb = circuit_breaker();
        for (value, name) in ["closed", "open", "half_open"].into_iter().enumerate() {
            assert_eq!(cb.state_name(cb.state_by_value(value).unwrap()), name);
        }
        assert_eq!(cb.state_name(cb.initial()), "closed");
    }

    #[test]
    fn breaker_cannot_skip_half_open_on_recovery() {
        let cb = circuit_breaker();
        let id = |s| cb.state_id(s).unwrap();
        assert!(!cb.is_allowed(id("open"), id("closed")));
        assert!(cb.is_allowed(id("half_open"), id("closed")));
        assert!(cb.is_allowed(id("closed"), id("forced_open")));
        let next: Vec<_> = cb.next_states(id("open")).map(|s| cb.state_name(s)).collect();
        assert_eq!(next, ["half_open", "forced_open", "disabled"]);
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
