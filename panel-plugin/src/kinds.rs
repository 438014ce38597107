//! Which kind each machine is, and each kind's states and allowed transitions:
//! built in, rebuilt from `statescope_transition_allowed` and
//! `statescope_state_severity` series, or drawn from the states seen.
//!
//! States seen in the data that the kind does not declare (Resilience4j's
//! `metrics_only`, say) are added to it rather than dropped, so every sample
//! finds its state.

use statescope_model::{Kind, KindSpec, Severity, StateSpec, builtin, contract};

use crate::mapping::state_name;
use crate::options::{KindChoice, PanelOptions};
use crate::problem::DataProblem;
use crate::series::Series;
use crate::shape::{Input, Recognised, Shape, UP_KIND};
use crate::view_model::KindSource;

#[derive(Clone, Debug)]
pub struct ResolvedKind {
    pub kind: Kind,
    pub source: KindSource,
    /// Per state: a colour the data asked for (value mapping, fixed field colour).
    pub colors: Vec<Option<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct Kinds {
    pub list: Vec<ResolvedKind>,
    /// Kind index of each machine of the [`Recognised`] list.
    pub of_machine: Vec<usize>,
    pub warnings: Vec<String>,
}

pub fn resolve(rec: &Recognised, series: &[Series], options: &PanelOptions) -> Result<Kinds, DataProblem> {
    let mut kinds = Kinds::default();
    let mut names: Vec<&str> = Vec::new();
    for m in &rec.machines {
        let i = match names.iter().position(|n| *n == m.kind) {
            Some(i) => i,
            None => {
                names.push(&m.kind);
                names.len() - 1
            }
        };
        kinds.of_machine.push(i);
    }
    for (k, name) in names.iter().enumerate() {
        // States the data names for this kind, with colours, in order of
        // appearance: a one-hot machine names its own (one query may hold
        // several kinds), an enum group's values are the group's.
        let mut seen: Vec<(String, Option<String>)> = Vec::new();
        let mut add = |n: &String, c: &Option<String>| {
            if !seen.iter().any(|(s, _)| s == n) {
                seen.push((n.clone(), c.clone()));
            }
        };
        let mut enum_groups: Vec<usize> = Vec::new();
        for (m, machine) in rec.machines.iter().enumerate() {
            if kinds.of_machine[m] != k {
                continue;
            }
            let group = &rec.groups[machine.group];
            match group.shape {
                Shape::OneHot => {
                    let names = machine.inputs.iter().filter_map(|(_, input)| match input {
                        Input::State(name) => Some(name),
                        _ => None,
                    });
                    for name in names {
                        let color = group
                            .names
                            .iter()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, c)| c.as_ref());
                        add(name, &color.cloned());
                    }
                }
                Shape::Enum if !enum_groups.contains(&machine.group) => {
                    enum_groups.push(machine.group);
                    for (n, c) in &group.names {
                        add(n, c);
                    }
                }
                Shape::Enum | Shape::UpActive => {}
            }
        }
        let allowed: Vec<&Series> = rec
            .allowed
            .iter()
            .map(|&i| &series[i])
            .filter(|s| s.label(contract::LABEL_KIND) == Some(name) && s.last_number().is_some_and(|v| v >= 0.5))
            .collect();
        let severities: Vec<(String, Severity)> = rec
            .severity
            .iter()
            .map(|&i| &series[i])
            .filter(|s| s.label(contract::LABEL_KIND) == Some(name))
            .filter_map(|s| {
                let state = s.label(contract::LABEL_STATE).and_then(state_name)?;
                let level = s.last_number().filter(|v| *v >= 0.0 && *v <= 3.0)?;
                Some((state, Severity::from_level(level.round() as u8)?))
            })
            .collect();

        let (mut spec, source) = match builtin::all().into_iter().find(|b| b.name() == *name) {
            Some(b) => (b.to_spec(), KindSource::BuiltIn),
            None if !allowed.is_empty() => (spec_from_metrics(name, &allowed, &severities), KindSource::FromMetrics),
            None if *name == UP_KIND => (up_kind(), KindSource::BuiltIn),
            None if options.kind == KindChoice::Named((*name).to_owned()) => {
                return Err(DataProblem::UnknownKind { kind: (*name).into() });
            }
            None => {
                let first = rec.machines.iter().zip(&kinds.of_machine).find(|(_, ki)| **ki == k);
                if seen.is_empty() {
                    let series = first.map(|(m, _)| &series[m.inputs[0].0]);
                    return Err(unmapped(series));
                }
                if first.is_some_and(|(m, _)| m.labels.iter().any(|(l, _)| l == contract::LABEL_KIND)) {
                    kinds.warnings.push(format!(
                        "Kind `{name}` is drawn from the states seen: add statescope_transition_allowed to the \
                         query to draw its allowed transitions."
                    ));
                }
                let spec = KindSpec {
                    name: (*name).to_owned(),
                    states: Vec::new(),
                    initial: seen[0].0.clone(),
                    transitions: Vec::new(),
                    manual_transitions: Vec::new(),
                    heartbeat_lost_state: None,
                };
                (spec, KindSource::FromData)
            }
        };
        if source != KindSource::BuiltIn {
            for (state, severity) in &severities {
                if let Some(s) = spec.states.iter_mut().find(|s| s.name == *state) {
                    s.severity = *severity;
                }
            }
        }
        for (state, _) in &seen {
            if !spec.states.iter().any(|s| s.name == *state) {
                let severity = severities
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or_else(|| guess_severity(state), |(_, sev)| *sev);
                spec.states.push(StateSpec::new(state, severity, None));
            }
        }
        let kind = Kind::from_spec(spec).map_err(|e| DataProblem::BadKind {
            kind: (*name).to_owned(),
            reason: e.to_string(),
        })?;
        let colors = kind
            .states()
            .iter()
            .map(|st| seen.iter().find(|(n, _)| *n == st.name).and_then(|(_, c)| c.clone()))
            .collect();
        kinds.list.push(ResolvedKind { kind, source, colors });
    }
    Ok(kinds)
}

/// The kind of `up`-style gauges, built into the panel: its states in the
/// gauge's numbering, 0 down and 1 up.
fn up_kind() -> KindSpec {
    KindSpec {
        name: UP_KIND.to_owned(),
        states: vec![
            StateSpec::new("down", Severity::Critical, Some("red")),
            StateSpec::new("up", Severity::Ok, Some("green")),
        ],
        initial: "up".to_owned(),
        transitions: vec![("up".into(), "down".into()), ("down".into(), "up".into())],
        manual_transitions: Vec::new(),
        heartbeat_lost_state: None,
    }
}

/// A custom kind from its `statescope_transition_allowed{kind,from,to}` series:
/// states in the order the severity series list them, then as transitions
/// name them; initial is the first state nothing leads to.
fn spec_from_metrics(name: &str, allowed: &[&Series], severities: &[(String, Severity)]) -> KindSpec {
    // Two exporters declaring the same kind send each series twice.
    let mut states: Vec<String> = Vec::new();
    for (s, _) in severities {
        if !states.contains(s) {
            states.push(s.clone());
        }
    }
    let mut transitions = Vec::new();
    let mut manual_transitions = Vec::new();
    for s in allowed {
        let (Some(from), Some(to)) = (
            s.label(contract::LABEL_FROM).and_then(state_name),
            s.label(contract::LABEL_TO).and_then(state_name),
        ) else {
            continue;
        };
        for st in [&from, &to] {
            if !states.contains(st) {
                states.push(st.clone());
            }
        }
        // `flow="manual"`: a move someone forces, drawn apart from the normal flow.
        let list = if s.label(contract::LABEL_FLOW) == Some("manual") {
            &mut manual_transitions
        } else {
            &mut transitions
        };
        if from != to && !list.contains(&(from.clone(), to.clone())) {
            list.push((from, to));
        }
    }
    let initial = states
        .iter()
        .find(|s| !transitions.iter().any(|(_, to)| to == *s))
        .or(states.first())
        .cloned()
        .unwrap_or_default();
    KindSpec {
        name: name.to_owned(),
        states: states
            .iter()
            .map(|s| StateSpec::new(s, guess_severity(s), None))
            .collect(),
        initial,
        transitions,
        manual_transitions,
        heartbeat_lost_state: None,
    }
}

/// A severity for a state no definition describes, from its name, so that
/// "worst first" still puts failures on top.
pub fn guess_severity(state: &str) -> Severity {
    const CRITICAL: [&str; 9] = [
        "open",
        "offline",
        "down",
        "fail",
        "error",
        "dead",
        "crash",
        "critical",
        "unhealthy",
    ];
    const WARNING: [&str; 8] = [
        "half", "drain", "degrad", "warn", "retry", "pending", "stale", "throttl",
    ];
    if WARNING.iter().any(|w| state.contains(w)) {
        Severity::Warning
    } else if CRITICAL.iter().any(|w| state.contains(w)) {
        Severity::Critical
    } else {
        Severity::Ok
    }
}

/// The "values are not states" problem for a series, naming up to three values.
pub fn unmapped(series: Option<&Series>) -> DataProblem {
    let Some(s) = series else {
        return DataProblem::NoData;
    };
    let mut values: Vec<String> = Vec::new();
    for i in 0..s.len() {
        let v = s.point(i).1;
        let text = match v {
            crate::input::Cell::Number(n) if n.is_finite() => format!("{n}"),
            crate::input::Cell::Text(t) => t.to_owned(),
            _ => continue,
        };
        if !values.contains(&text) {
            values.push(text);
            if values.len() == 3 {
                break;
            }
        }
    }
    DataProblem::UnmappedValues {
        series: s.describe(),
        values: if values.is_empty() {
            "(none)".into()
        } else {
            values.join(", ")
        },
    }
}
