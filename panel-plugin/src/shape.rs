//! Recognising what the series are: state series (one-hot or enum-valued),
//! the auxiliary Statescope series, and which series belong to which machine.
//!
//! - One-hot: one 1/0 series per state, the state in a label
//!   (`statescope_state{kind,machine,state}`, `resilience4j_circuitbreaker_state{name,state}`,
//!   OpenMetrics state sets).
//! - Enum: one series per machine whose value is the state (`circuit_breaker_state`
//!   0/1/2, Envoy's `envoy_cluster_circuit_breakers_*_open` 0/1, or any gauge with
//!   value mappings, or text values naming states).
//!
//! Series are grouped by metric name; each group gets its identity labels
//! (given, or detected) and the series with equal identity values form a machine.

use std::collections::HashMap;

use statescope_model::builtin;
use statescope_model::contract;

use crate::mapping::{mapped_names, state_name};
use crate::options::{KindChoice, PanelOptions, ShapeChoice};
use crate::problem::DataProblem;
use crate::series::Series;

/// What a series is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    State,
    /// `statescope_transitions_total{kind,machine,from,to}`.
    Transitions,
    /// `statescope_state_since_timestamp_seconds{kind,machine}`.
    Since,
    /// `statescope_transition_allowed{kind,from,to}`.
    Allowed,
    /// `statescope_state_severity{kind,state}`.
    Severity,
    /// Another Statescope series (calls, jobs, heartbeats, exporter self-metrics).
    Ignored,
}

pub fn role(metric: Option<&str>) -> Role {
    match metric {
        Some(contract::TRANSITIONS_TOTAL) => Role::Transitions,
        Some(contract::STATE_SINCE_TIMESTAMP_SECONDS) => Role::Since,
        Some(contract::TRANSITION_ALLOWED) => Role::Allowed,
        Some(contract::STATE_SEVERITY) => Role::Severity,
        Some(contract::STATE) => Role::State,
        Some(m) if m.starts_with("statescope_") => Role::Ignored,
        _ => Role::State,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OneHot,
    Enum,
}

/// State series of one metric.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    pub metric: Option<&'a str>,
    pub shape: Shape,
    pub identity: Vec<String>,
    /// State names the series name, in order of appearance, with a colour
    /// from a value mapping or a fixed field colour when one is set.
    pub names: Vec<(String, Option<String>)>,
}

/// A machine: the state series sharing identity label values.
#[derive(Clone, Debug)]
pub struct Machine<'a> {
    pub group: usize,
    pub id: String,
    /// Identity label values, in the group's identity order.
    pub key: Vec<&'a str>,
    /// Labels worth showing: those of its first series, without the state label.
    pub labels: Vec<(&'a str, &'a str)>,
    /// Kind name, from the options, the `kind` label, or the states seen.
    pub kind: String,
    /// Its series (indices into the series list); for one-hot, with the state each stands for.
    pub inputs: Vec<(usize, Option<String>)>,
}

#[derive(Clone, Debug, Default)]
pub struct Recognised<'a> {
    pub groups: Vec<Group<'a>>,
    pub machines: Vec<Machine<'a>>,
    /// Auxiliary series by role (indices into the series list).
    pub transitions: Vec<usize>,
    pub since: Vec<usize>,
    pub allowed: Vec<usize>,
    pub severity: Vec<usize>,
    pub warnings: Vec<String>,
}

pub fn recognise<'a>(series: &[Series<'a>], options: &PanelOptions) -> Result<Recognised<'a>, DataProblem> {
    let mut rec = Recognised::default();
    let mut by_metric: Vec<(Option<&'a str>, Vec<usize>)> = Vec::new();
    let mut ignored: Vec<&str> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        // A query with no data may still send a frame of empty fields.
        if s.is_empty() {
            continue;
        }
        match role(s.metric) {
            Role::Transitions => rec.transitions.push(i),
            Role::Since => rec.since.push(i),
            Role::Allowed => rec.allowed.push(i),
            Role::Severity => rec.severity.push(i),
            Role::Ignored => {
                let m = s.metric.unwrap_or_default();
                if !ignored.contains(&m) {
                    ignored.push(m);
                }
            }
            Role::State => match by_metric.iter_mut().find(|(m, _)| *m == s.metric) {
                Some((_, list)) => list.push(i),
                None => by_metric.push((s.metric, vec![i])),
            },
        }
    }
    if by_metric.is_empty() {
        let mut seen: Vec<&str> = series.iter().filter_map(|s| s.metric).collect();
        seen.dedup();
        seen.truncate(4);
        return Err(DataProblem::NoStateSeries {
            seen: if seen.is_empty() {
                "series without a metric name".into()
            } else {
                seen.join(", ")
            },
        });
    }
    if !ignored.is_empty() {
        rec.warnings.push(format!(
            "Ignored series that hold no state: {}.",
            ignored.iter().take(4).copied().collect::<Vec<_>>().join(", ")
        ));
    }

    let state_series = || by_metric.iter().flat_map(|(_, l)| l.iter().map(|&i| &series[i]));
    let state_label = options.state_label.as_str();
    if options.shape == ShapeChoice::OneHot && !state_series().any(|s| s.label(state_label).is_some()) {
        return Err(DataProblem::NoStateLabel {
            label: state_label.to_owned(),
            seen: labels_seen(state_series()),
        });
    }
    for label in &options.identity_labels {
        if !state_series().any(|s| s.label(label).is_some()) {
            return Err(DataProblem::UnknownIdentityLabel {
                label: label.clone(),
                seen: labels_seen(state_series()),
            });
        }
    }

    for (metric, members) in by_metric {
        // The state label of each member, looked up once (label lookups add up over 50,000 series).
        let mut members: Vec<(usize, Option<&'a str>)> =
            members.into_iter().map(|i| (i, series[i].label(state_label))).collect();
        let shape = match options.shape {
            ShapeChoice::OneHot => Shape::OneHot,
            ShapeChoice::Enum => Shape::Enum,
            ShapeChoice::Auto if members.iter().any(|(_, st)| st.is_some()) => Shape::OneHot,
            ShapeChoice::Auto => Shape::Enum,
        };
        if shape == Shape::OneHot {
            let before = members.len();
            members.retain(|(_, st)| st.is_some());
            if members.len() < before {
                rec.warnings.push(format!(
                    "Ignored {} series of {} without a `{state_label}` label.",
                    before - members.len(),
                    metric.unwrap_or("the query")
                ));
            }
        }
        let group_index = rec.groups.len();
        let identity = if options.identity_labels.is_empty() {
            detect_identity(metric, shape, state_label, members.iter().map(|&(i, _)| &series[i]))
        } else {
            options.identity_labels.clone()
        };
        let names = names_seen(shape, members.iter().map(|&(i, st)| (&series[i], st)));
        let mut index: HashMap<Vec<&'a str>, usize> = HashMap::new();
        let mut duplicates = 0usize;
        for &(i, state_value) in &members {
            let s = &series[i];
            let key: Vec<&'a str> = identity.iter().map(|l| s.label(l).unwrap_or("")).collect();
            let state = match shape {
                Shape::OneHot => state_value.and_then(state_name),
                Shape::Enum => None,
            };
            match index.get(&key) {
                Some(&m) => {
                    let machine: &mut Machine = &mut rec.machines[m];
                    // An enum machine reads one series; a one-hot machine one per state.
                    if shape == Shape::Enum || machine.inputs.iter().any(|(_, st)| *st == state) {
                        duplicates += 1;
                    } else {
                        machine.inputs.push((i, state));
                    }
                }
                None => {
                    index.insert(key.clone(), rec.machines.len());
                    rec.machines.push(Machine {
                        group: group_index,
                        id: machine_id(&identity, &key, metric, s),
                        labels: s.labels.iter().copied().filter(|(k, _)| *k != state_label).collect(),
                        kind: String::new(),
                        key,
                        inputs: vec![(i, state)],
                    });
                }
            }
        }
        if duplicates > 0 {
            rec.warnings.push(format!(
                "{duplicates} series of {} repeat a machine already read (same identity labels: {}); they were \
                 skipped. Set the identity labels option if machines are merged wrongly.",
                metric.unwrap_or("the query"),
                if identity.is_empty() {
                    "none".to_owned()
                } else {
                    identity.join(", ")
                }
            ));
        }
        rec.groups.push(Group {
            metric,
            shape,
            identity,
            names,
        });
    }
    for m in &mut rec.machines {
        let group = &rec.groups[m.group];
        let kind_label = m
            .labels
            .iter()
            .find(|(k, _)| *k == contract::LABEL_KIND)
            .map(|(_, v)| *v);
        m.kind = kind_name(&options.kind, group, kind_label);
    }
    Ok(rec)
}

/// Identity labels when the options give none: the contract's for known
/// metrics, else every label that tells series apart.
fn detect_identity<'a, 'b: 'a>(
    metric: Option<&str>,
    shape: Shape,
    state_label: &str,
    members: impl Iterator<Item = &'a Series<'b>> + Clone,
) -> Vec<String> {
    let has = |label: &str| members.clone().all(|s| s.label(label).is_some());
    let varies = |label: &str| {
        let mut values = members.clone().map(|s| s.label(label));
        let first = values.next().flatten();
        values.any(|v| v != first)
    };
    if metric == Some(contract::STATE) || (has(contract::LABEL_KIND) && has(contract::LABEL_MACHINE)) {
        return [contract::LABEL_KIND, contract::LABEL_MACHINE]
            .into_iter()
            .filter(|l| has(l))
            .map(str::to_owned)
            .collect();
    }
    if metric == Some(contract::RESILIENCE4J_STATE) && has("name") {
        // A breaker's name is unique within one application instance: with
        // replicas (or several applications) the same name is several machines.
        return ["application", "name", "instance"]
            .into_iter()
            .filter(|l| *l == "name" || varies(l))
            .map(str::to_owned)
            .collect();
    }
    let mut names: Vec<&str> = Vec::new();
    for s in members.clone() {
        for (k, _) in &s.labels {
            if !names.contains(k) && (shape != Shape::OneHot || *k != state_label) {
                names.push(k);
            }
        }
    }
    names.sort_unstable();
    names
        .into_iter()
        .filter(|label| varies(label))
        .map(str::to_owned)
        .collect()
}

fn names_seen<'a, 'b: 'a>(
    shape: Shape,
    members: impl Iterator<Item = (&'a Series<'b>, Option<&'b str>)>,
) -> Vec<(String, Option<String>)> {
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    let mut add = |name: String, color: Option<String>| match names.iter_mut().find(|(n, _)| *n == name) {
        Some(entry) => {
            if entry.1.is_none() {
                entry.1 = color;
            }
        }
        None => names.push((name, color)),
    };
    for (s, state_value) in members {
        match shape {
            Shape::OneHot => {
                if let Some(name) = state_value.and_then(state_name) {
                    let fixed = s.field.config.color.as_ref().filter(|c| c.mode == "fixed");
                    add(name, fixed.and_then(|c| c.fixed_color.clone()));
                }
            }
            Shape::Enum => {
                for (name, color) in mapped_names(&s.field.config) {
                    add(name, color);
                }
                for i in 0..s.len() {
                    if let crate::input::Cell::Text(text) = s.point(i).1
                        && text.trim().parse::<f64>().is_err()
                        && let Some(name) = state_name(text)
                    {
                        add(name, None);
                    }
                }
            }
        }
    }
    names
}

fn machine_id(identity: &[String], key: &[&str], metric: Option<&str>, first: &Series) -> String {
    for preferred in [contract::LABEL_MACHINE, "name"] {
        if let Some(i) = identity.iter().position(|l| l == preferred)
            && !key[i].is_empty()
        {
            return key[i].to_owned();
        }
    }
    let parts: Vec<&str> = key.iter().copied().filter(|v| !v.is_empty()).collect();
    if !parts.is_empty() {
        return parts.join("/");
    }
    let config = &first.field.config;
    config
        .display_name
        .as_deref()
        .or(metric)
        .unwrap_or(if first.field.name.is_empty() {
            "series"
        } else {
            &first.field.name
        })
        .to_owned()
}

fn kind_name(choice: &KindChoice, group: &Group, kind_label: Option<&str>) -> String {
    match choice {
        KindChoice::Named(name) => return name.clone(),
        KindChoice::FromData => return data_kind_name(group.metric),
        KindChoice::Auto => {}
    }
    if let Some(k) = kind_label.filter(|k| statescope_model::kind::is_valid_name(k)) {
        return k.to_owned();
    }
    if matches!(
        group.metric,
        Some(contract::RESILIENCE4J_STATE | contract::COMPAT_BREAKER_STATE)
    ) {
        return builtin::CIRCUIT_BREAKER.to_owned();
    }
    if group.names.is_empty() {
        // A bare number per machine: read it as the breaker enum (0 closed,
        // 1 open, 2 half_open) that existing dashboards use.
        return builtin::CIRCUIT_BREAKER.to_owned();
    }
    for kind in builtin::all() {
        if group.names.iter().all(|(n, _)| kind.state_id(n).is_some()) {
            return kind.name().to_owned();
        }
    }
    data_kind_name(group.metric)
}

/// The name of a kind drawn from the data: its metric's name.
pub fn data_kind_name(metric: Option<&str>) -> String {
    metric
        .and_then(state_name)
        .filter(|n| !n.starts_with("s_"))
        .unwrap_or_else(|| "states".to_owned())
}

fn labels_seen<'a, 'b: 'a>(series: impl Iterator<Item = &'a Series<'b>>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for s in series {
        for (k, _) in &s.labels {
            if !names.contains(k) {
                names.push(k);
            }
        }
    }
    names.sort_unstable();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
