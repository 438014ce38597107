//! Machine kinds.
//!
//! A [`KindSpec`] is what a user writes (in the exporter's TOML config) or what
//! the panel rebuilds from `statescope_transition_allowed`: plain data, not yet
//! checked. [`Kind::from_spec`] checks it once and yields a [`Kind`] whose states
//! are addressed by [`StateId`], so a machine's state is a small index that is
//! always valid for its kind.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest kind or state name accepted. Names end up as label values and in
/// the panel's tiles, so they are kept short.
pub const MAX_NAME_LEN: usize = 64;
/// Most states a kind may have. The allowed-transition matrix is states².
pub const MAX_STATES: usize = 64;
/// In a transition list, `"*"` as the source means "from every other state".
pub const ANY_STATE: &str = "*";

/// How bad it is for a machine to sit in a state. Ordered from best to worst,
/// so `max()` over a set of states gives the one that should stand out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Ok,
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// All severities, best first.
    pub const ALL: [Severity; 4] = [Severity::Ok, Severity::Info, Severity::Warning, Severity::Critical];

    /// The name used in config files and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The value of `statescope_state_severity`: 0 (ok) to 3 (critical).
    pub fn level(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Severity::level`].
    pub fn from_level(level: u8) -> Option<Severity> {
        Severity::ALL.get(usize::from(level)).copied()
    }

    /// Inverse of [`Severity::as_str`].
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state of a kind, as written by a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    pub name: String,
    #[serde(default)]
    pub severity: Severity,
    /// A Grafana colour name (`"green"`, `"semi-dark-red"`) or `#rrggbb`.
    /// `None` lets the panel pick the theme's colour for the severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl StateSpec {
    pub fn new(name: &str, severity: Severity, color: Option<&str>) -> StateSpec {
        StateSpec {
            name: name.to_owned(),
            severity,
            color: color.map(str::to_owned),
        }
    }
}

/// A kind as written by a user: plain data, checked by [`Kind::from_spec`].
///
/// In TOML:
/// ```toml
/// [[kinds]]
/// name = "payment_job"
/// initial = "queued"
/// states = [
///   { name = "queued" },
///   { name = "running" },
///   { name = "failed", severity = "critical", color = "red" },
///   { name = "done" },
/// ]
/// transitions = [["queued", "running"], ["running", "done"], ["*", "failed"]]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSpec {
    pub name: String,
    /// States in their display order. A state's position is also its value in
    /// enum-shaped gauges (`circuit_breaker_state`: closed 0, open 1, half_open 2).
    pub states: Vec<StateSpec>,
    pub initial: String,
    /// The normal flow: `[from, to]` pairs the machine takes by itself; `from`
    /// may be `"*"` (every other state).
    #[serde(default)]
    pub transitions: Vec<(String, String)>,
    /// Manual moves: pairs an operator (or the library's API) may force, such
    /// as pybreaker's `close()` on an open breaker or Resilience4j's
    /// `transitionToDisabledState()`. Allowed, but drawn and counted apart from
    /// the normal flow. A pair in both lists is normal flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_transitions: Vec<(String, String)>,
    /// Where the exporter moves a machine of this kind whose heartbeats stop.
    /// Kinds without it do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_lost_state: Option<String>,
}

/// Index of a state within its kind. Only a [`Kind`] hands these out, and
/// only for its own states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateId(u8);

impl StateId {
    /// Position of the state in its kind's list (and its enum value).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Why a [`KindSpec`] is not a usable kind. Each message names the offending
/// part so a user can fix the config file from the message alone.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DefinitionError {
    #[error("kind name {0:?} is not valid: use 1-64 characters of a-z, 0-9 and _, starting with a letter")]
    BadKindName(String),
    #[error(
        "kind {kind:?}: state name {state:?} is not valid: use 1-64 characters of a-z, 0-9 and _, starting with a letter"
    )]
    BadStateName { kind: String, state: String },
    #[error("kind {kind:?} has no states")]
    NoStates { kind: String },
    #[error("kind {kind:?} has {count} states; at most {MAX_STATES} are allowed")]
    TooManyStates { kind: String, count: usize },
    #[error("kind {kind:?} declares state {state:?} twice")]
    DuplicateState { kind: String, state: String },
    #[error("kind {kind:?}: {role} {state:?} is not one of its states ({known})")]
    UnknownState {
        kind: String,
        role: &'static str,
        state: String,
        known: String,
    },
    #[error("kind {kind:?}: transition {from:?} -> {to:?} goes nowhere; a state does not transition to itself")]
    SelfTransition { kind: String, from: String, to: String },
    #[error("kind {kind:?}: colour {color:?} of state {state:?} is not a colour name or #rrggbb")]
    BadColor { kind: String, state: String, color: String },
}

/// How a kind expects a transition to happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// The machine's own flow (a breaker trips, probes, recovers).
    Normal,
    /// A move someone forces (an operator closes an open breaker).
    Manual,
}

impl Flow {
    /// The value of the `flow` label of `statescope_transition_allowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Normal => "normal",
            Flow::Manual => "manual",
        }
    }
}

/// A checked machine kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    name: String,
    states: Vec<StateSpec>,
    initial: StateId,
    /// Row-major `states × states` matrix: `edges[from * n + to]`, None
    /// where the kind does not expect the move.
    edges: Vec<Option<Flow>>,
    heartbeat_lost: Option<StateId>,
}

impl Kind {
    /// Checks a spec: names well formed and unique, every state a transition or
    /// setting mentions declared, no self-transitions. `"*"` sources expand to
    /// every state other than the target.
    pub fn from_spec(spec: KindSpec) -> Result<Kind, DefinitionError> {
        let KindSpec {
            name,
            states,
            initial,
            transitions,
            manual_transitions,
            heartbeat_lost_state,
        } = spec;
        if !is_valid_name(&name) {
            return Err(DefinitionError::BadKindName(name));
        }
        if states.is_empty() {
            return Err(DefinitionError::NoStates { kind: name });
        }
        if states.len() > MAX_STATES {
            return Err(DefinitionError::TooManyStates {
                kind: name,
                count: states.len(),
            });
        }
        for (i, state) in states.iter().enumerate() {
            if !is_valid_name(&state.name) {
                return Err(DefinitionError::BadStateName {
                    kind: name,
                    state: state.name.clone(),
                });
            }
            if states[..i].iter().any(|s| s.name == state.name) {
                return Err(DefinitionError::DuplicateState {
                    kind: name,
                    state: state.name.clone(),
                });
            }
            if let Some(color) = &state.color
                && !is_valid_color(color)
            {
                return Err(DefinitionError::BadColor {
                    kind: name,
                    state: state.name.clone(),
                    color: color.clone(),
                });
            }
        }
        let lookup = |role: &'static str, state: &str| -> Result<StateId, DefinitionError> {
            match states.iter().position(|s| s.name == state) {
                // MAX_STATES keeps the index within u8.
                Some(i) => Ok(StateId(i as u8)),
                None => Err(DefinitionError::UnknownState {
                    kind: name.clone(),
                    role,
                    state: state.to_owned(),
                    known: states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                }),
            }
        };
        let initial = lookup("initial state", &initial)?;
        let heartbeat_lost = heartbeat_lost_state
            .as_deref()
            .map(|s| lookup("heartbeat_lost_state", s))
            .transpose()?;
        let n = states.len();
        let mut edges = vec![None; n * n];
        // Manual first, so that normal flow overwrites a pair listed in both.
        for (list, flow) in [(&manual_transitions, Flow::Manual), (&transitions, Flow::Normal)] {
            for (from, to) in list {
                let to_id = lookup("transition target", to)?;
                if from == ANY_STATE {
                    for f in (0..n).filter(|&f| f != to_id.index()) {
                        edges[f * n + to_id.index()] = Some(flow);
                    }
                    continue;
                }
                let from_id = lookup("transition source", from)?;
                if from_id == to_id {
                    return Err(DefinitionError::SelfTransition {
                        kind: name.clone(),
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
                edges[from_id.index() * n + to_id.index()] = Some(flow);
            }
        }
        Ok(Kind {
            name,
            states,
            initial,
            edges,
            heartbeat_lost,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The states in declared order; `states()[id.index()]` is state `id`.
    pub fn states(&self) -> &[StateSpec] {
        &self.states
    }

    /// Every state id, in declared order.
    pub fn state_ids(&self) -> impl Iterator<Item = StateId> + '_ {
        (0..self.states.len()).map(|i| StateId(i as u8))
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.states
            .iter()
            .position(|s| s.name == name)
            .map(|i| StateId(i as u8))
    }

    /// The state whose enum value (position) is `value`, as in `circuit_breaker_state`.
    pub fn state_by_value(&self, value: usize) -> Option<StateId> {
        (value < self.states.len()).then_some(StateId(value as u8))
    }

    pub fn state(&self, id: StateId) -> &StateSpec {
        &self.states[id.index()]
    }

    pub fn state_name(&self, id: StateId) -> &str {
        &self.states[id.index()].name
    }

    pub fn severity(&self, id: StateId) -> Severity {
        self.states[id.index()].severity
    }

    pub fn initial(&self) -> StateId {
        self.initial
    }

    pub fn heartbeat_lost_state(&self) -> Option<StateId> {
        self.heartbeat_lost
    }

    /// Whether the kind expects `from -> to`, as normal flow or as a manual move.
    pub fn is_allowed(&self, from: StateId, to: StateId) -> bool {
        self.flow(from, to).is_some()
    }

    /// How the kind expects `from -> to`; None for a move it does not expect.
    pub fn flow(&self, from: StateId, to: StateId) -> Option<Flow> {
        self.edges[from.index() * self.states.len() + to.index()]
    }

    /// States reachable from `from` in one allowed transition (normal or
    /// manual), in declared order.
    pub fn next_states(&self, from: StateId) -> impl Iterator<Item = StateId> + '_ {
        self.state_ids().filter(move |&to| self.is_allowed(from, to))
    }

    /// Every allowed transition with its flow, ordered by source then target.
    pub fn edges(&self) -> impl Iterator<Item = (StateId, StateId, Flow)> + '_ {
        self.state_ids().flat_map(move |from| {
            self.state_ids()
                .filter_map(move |to| self.flow(from, to).map(|flow| (from, to, flow)))
        })
    }

    /// The normal-flow transitions, ordered by source then target: the
    /// diagram's solid edges, and the pairs whose counters exist from a
    /// machine's creation.
    pub fn transitions(&self) -> impl Iterator<Item = (StateId, StateId)> + '_ {
        self.edges_of(Flow::Normal)
    }

    /// The manual moves, ordered by source then target.
    pub fn manual_transitions(&self) -> impl Iterator<Item = (StateId, StateId)> + '_ {
        self.edges_of(Flow::Manual)
    }

    fn edges_of(&self, flow: Flow) -> impl Iterator<Item = (StateId, StateId)> + '_ {
        self.edges()
            .filter(move |&(_, _, f)| f == flow)
            .map(|(from, to, _)| (from, to))
    }

    /// The worst severity any state of this kind has.
    pub fn worst_severity(&self) -> Severity {
        self.states.iter().map(|s| s.severity).max().unwrap_or_default()
    }

    /// Back to plain data, with wildcards expanded: `from_spec(k.to_spec()) == k`.
    pub fn to_spec(&self) -> KindSpec {
        KindSpec {
            name: self.name.clone(),
            states: self.states.clone(),
            initial: self.state_name(self.initial).to_owned(),
            transitions: self
                .transitions()
                .map(|(f, t)| (self.state_name(f).to_owned(), self.state_name(t).to_owned()))
                .collect(),
            manual_transitions: self
                .manual_transitions()
                .map(|(f, t)| (self.state_name(f).to_owned(), self.state_name(t).to_owned()))
                .collect(),
            heartbeat_lost_state: self.heartbeat_lost.map(|s| self.state_name(s).to_owned()),
        }
    }
}

/// Kind and state names: `[a-z][a-z0-9_]{0,63}`. They are label values, file
/// keys and CSS-safe identifiers in the panel.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= MAX_NAME_LEN
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// A Grafana colour name (letters, digits, `-`) or `#rgb` / `#rrggbb` / `#rrggbbaa`.
fn is_valid_color(color: &str) -> bool {
    match color.strip_prefix('#') {
        Some(hex) => matches!(hex.len(), 3 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit()),
        None => !color.is_empty() && color.len() <= 32 && color.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(states: &[&str], initial: &str, transitions: &[(&str, &str)]) -> KindSpec {
        KindSpec {
            name: "job".into(),
            states: states.iter().map(|s| StateSpec::new(s, Severity::Ok, None)).collect(),
            initial: initial.into(),
            transitions: transitions
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            manual_transitions: Vec::new(),
            heartbeat_lost_state: None,
        }
    }

    #[test]
    fn wildcard_source_reaches_target_from_every_other_state() {
        let kind = Kind::from_spec(spec(&["a", "b", "dead"], "a", &[("a", "b"), ("*", "dead")])).unwrap();
        let dead = kind.state_id("dead").unwrap();
        for s in ["a", "b"] {
            assert!(kind.is_allowed(kind.state_id(s).unwrap(), dead), "{s} -> dead");
        }
        assert!(!kind.is_allowed(dead, dead));
        assert!(!kind.is_allowed(kind.state_id("b").unwrap(), kind.state_id("a").unwrap()));
        assert_eq!(kind.transitions().count(), 3);
    }

    #[test]
    fn manual_moves_are_allowed_apart_from_the_normal_flow_which_wins_a_pair_in_both() {
        let mut s = spec(&["a", "b", "c"], "a", &[("a", "b"), ("b", "c")]);
        s.manual_transitions = vec![("*".into(), "a".into()), ("a".into(), "b".into())];
        let kind = Kind::from_spec(s).unwrap();
        let id = |n| kind.state_id(n).unwrap();
        assert_eq!(kind.flow(id("a"), id("b")), Some(Flow::Normal));
        assert_eq!(kind.flow(id("c"), id("a")), Some(Flow::Manual));
        assert_eq!(kind.flow(id("a"), id("c")), None);
        assert!(kind.is_allowed(id("c"), id("a")));
        assert_eq!(kind.transitions().count(), 2);
        assert_eq!(kind.manual_transitions().count(), 2, "b -> a and c -> a");
        assert_eq!(Kind::from_spec(kind.to_spec()).unwrap(), kind);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = Kind::from_spec(spec(&["a", "b"], "c", &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kind \"job\": initial state \"c\" is not one of its states (a, b)"
        );
        let err = Kind::from_spec(spec(&["a", "b"], "a", &[("a", "x")])).unwrap_err();
        assert!(err.to_string().contains("transition target \"x\""), "{err}");
        let err = Kind::from_spec(spec(&["a", "a"], "a", &[])).unwrap_err();
        assert_eq!(
            err,
            DefinitionError::DuplicateState {
                kind: "job".into(),
                state: "a".into()
            }
        );
        let err = Kind::from_spec(spec(&["a"], "a", &[("a", "a")])).unwrap_err();
        assert!(matches!(err, DefinitionError::SelfTransition { .. }));
        let err = Kind::from_spec(spec(&["Open"], "Open", &[])).unwrap_err();
        assert!(matches!(err, DefinitionError::BadStateName { .. }));
        let err = Kind::from_spec(spec(&[], "a", &[])).unwrap_err();
        assert!(matches!(err, DefinitionError::NoStates { .. }));
    }

    #[test]
    fn colors_must_be_names_or_hex() {
        let mut s = spec(&["a"], "a", &[]);
        s.states[0].color = Some("#12ab3f".into());
        assert!(Kind::from_spec(s.clone()).is_ok());
        s.states[0].color = Some("semi-dark-red".into());
        assert!(Kind::from_spec(s.clone()).is_ok());
        s.states[0].color = Some("red; background: url(x)".into());
        assert!(matches!(
            Kind::from_spec(s).unwrap_err(),
            DefinitionError::BadColor { .. }
        ));
    }

    #[test]
    fn parses_the_documented_toml() {
        #[derive(Deserialize)]
        struct File {
            kinds: Vec<KindSpec>,
        }
        let text = r#"
            [[kinds]]
            name = "payment_job"
            initial = "queued"
            states = [
              { name = "queued" },
              { name = "running" },
              { name = "failed", severity = "critical", color = "red" },
              { name = "done" },
            ]
            transitions = [["queued", "running"], ["running", "done"], ["*", "failed"]]
        "#;
        let file: File = toml::from_str(text).unwrap();
        let kind = Kind::from_spec(file.kinds[0].clone()).unwrap();
        assert_eq!(kind.severity(kind.state_id("failed").unwrap()), Severity::Critical);
        assert_eq!(kind.worst_severity(), Severity::Critical);
        // queued->running, running->done, and failed from queued, running and done.
        assert_eq!(kind.transitions().count(), 5);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = r#"{"name":"k","states":[{"name":"a","sevrity":"ok"}],"initial":"a"}"#;
        let err = serde_json::from_str::<KindSpec>(text).unwrap_err();
        assert!(err.to_string().contains("sevrity"), "{err}");
    }

    fn arb_spec() -> impl Strategy<Value = KindSpec> {
        (1usize..8)
            .prop_flat_map(|n| {
                let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
                let pairs = proptest::collection::vec((0..=n, 0..n), 0..20);
                (Just(names), 0..n, pairs)
            })
            .prop_map(|(names, initial, pairs)| KindSpec {
                name: "k".into(),
                states: names
                    .iter()
                    .map(|s| StateSpec::new(s, Severity::Warning, None))
                    .collect(),
                initial: names[initial].clone(),
                transitions: pairs
                    .into_iter()
                    // `from == n` stands for the wildcard; drop self-loops (an error case tested above).
                    .filter(|(f, t)| f != t)
                    .map(|(f, t)| {
                        (
                            names.get(f).cloned().unwrap_or_else(|| ANY_STATE.into()),
                            names[t].clone(),
                        )
                    })
                    .collect(),
                manual_transitions: Vec::new(),
                heartbeat_lost_state: None,
            })
    }

    proptest! {
        #[test]
        fn valid_specs_round_trip_through_to_spec(spec in arb_spec()) {
            let kind = Kind::from_spec(spec).unwrap();
            let again = Kind::from_spec(kind.to_spec()).unwrap();
            prop_assert_eq!(&again, &kind);
        }

        #[test]
        fn allowed_transitions_are_exactly_the_declared_ones(spec in arb_spec()) {
            let kind = Kind::from_spec(spec.clone()).unwrap();
            for from in kind.state_ids() {
                for to in kind.state_ids() {
                    let declared = spec.transitions.iter().any(|(f, t)| {
                        t == kind.state_name(to) && (f == kind.state_name(from) || (f == ANY_STATE && from != to))
                    });
                    prop_assert_eq!(kind.is_allowed(from, to), declared, "{:?} -> {:?}", from, to);
                }
                prop_assert!(!kind.is_allowed(from, from));
            }
        }
    }
}
