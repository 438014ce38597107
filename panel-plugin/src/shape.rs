//! Recognising what the series are: state series (one-hot or enum-valued),
//! the auxiliary Statescope series, and which series belong to which machine.
//!
//! - One-hot: one 1/0 series per state, the state in a label
//!   (`statescope_state{kind,machine,state}`, `resilience4j_circuitbreaker_state{name,state}`,
//!   OpenMetrics state sets).
//! - Enum: one series per machine whose value is the state: gauges with value
//!   mappings, text values naming states, a breaker's own numbering
//!   (`circuit_breaker_state` 0/1/2, Envoy's `envoy_cluster_circuit_breakers_*_open`
//!   0/1) and `up`-style gauges (0 down, 1 up).
//! - Up and active: a liveness gauge and an activity gauge of the same
//!   machines (celery-exporter's `celery_worker_up` and
//!   `celery_worker_tasks_active`) read together as workers offline, idle or busy.
//!
//! Series are grouped by metric name; each group gets its identity labels
//! (given, or detected) and the series with equal identity values form a
//! machine. A machine may be read from several series per state: its labels
//! changed over the range (a breaker first reported without labels), or the
//! same target was scraped twice. Only series that disagree about the same
//! instants are distinct machines sharing an identity, and are skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use statescope_model::builtin;
use statescope_model::contract;

use crate::input::Cell;
use crate::mapping::{mapped_names, state_name};
use crate::options::{KindChoice, PanelOptions, ShapeChoice};
use crate::problem::DataProblem;
use crate::series::{Series, sort_indices};

/// The exporter's gauge of when the current state was entered (unix
/// seconds), under its current name and its earlier one.
pub const SINCE_METRICS: [&str; 2] = [
    "statescope_state_since_timestamp_seconds",
    "statescope_state_since_seconds",
];
/// When each transition counter was created (unix seconds): the OpenMetrics
/// `_created` sample of the `statescope_transitions` family, which Prometheus
/// stores as a series of its own. The second spelling is what libraries that
/// keep `_total` in the family name write.
pub const CREATED_METRICS: [&str; 2] = ["statescope_transitions_created", "statescope_transitions_total_created"];
/// The implied kind of `up`-style gauges: 0 down, 1 up.
pub const UP_KIND: &str = "up";

/// What a series is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    State,
    /// `statescope_transitions_total{kind,machine,from,to}`.
    Transitions,
    /// `statescope_transitions_created{kind,machine,from,to}` (see [`CREATED_METRICS`]).
    Created,
    /// `statescope_state_since_timestamp_seconds{kind,machine}` (see [`SINCE_METRICS`]).
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
        Some(m) if CREATED_METRICS.contains(&m) => Role::Created,
        Some(m) if SINCE_METRICS.contains(&m) => Role::Since,
        Some(contract::TRANSITION_ALLOWED) => Role::Allowed,
        Some(contract::STATE_SEVERITY) => Role::Severity,
        Some(contract::STATE) => Role::State,
        Some(m) if m.starts_with("statescope_") => Role::Ignored,
        _ => Role::State,
    }
}

/// Whether a metric is a circuit breaker's, so that a bare number is read
/// with the breaker numbering (0 closed, 1 open, 2 half_open): Statescope's
/// and most libraries' `circuit_breaker_state`, Envoy's
/// `envoy_cluster_circuit_breakers_*_open`, Resilience4j's `resilience4j_circuitbreaker_*`.
pub fn is_breaker_metric(metric: Option<&str>) -> bool {
    metric.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("circuit") || m.contains("breaker")
    })
}

/// Whether a metric is an `up`-style liveness gauge (Prometheus' `up`,
/// `*_up`): 1 up, 0 down.
pub fn is_up_metric(metric: Option<&str>) -> bool {
    metric.is_some_and(|m| m == "up" || m.ends_with("_up"))
}

/// Whether `other` is the activity gauge of the same subject as the liveness
/// gauge `up` (`celery_worker_up` and `celery_worker_tasks_active`): same
/// prefix, a name that counts work in hand.
fn is_activity_of(up: &str, other: &str) -> bool {
    const ACTIVITY: [&str; 5] = ["_active", "_busy", "_in_progress", "_inflight", "_running"];
    let prefix = up.strip_suffix("up").unwrap_or_default();
    !prefix.is_empty() && other.starts_with(prefix) && ACTIVITY.iter().any(|a| other.ends_with(a))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OneHot,
    Enum,
    /// A liveness gauge (1 alive) and an activity gauge (work in hand) per
    /// machine: offline, idle or busy.
    UpActive,
}

/// What one series of a machine says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One-hot: 1 while the machine is in this state.
    State(String),
    /// Enum: the value is the state.
    Value,
    /// Liveness: 1 while the machine is alive.
    Up,
    /// Activity: how much work the machine has in hand.
    Active,
}

/// State series of one metric (or of a liveness and an activity metric read together).
#[derive(Clone, Debug)]
pub struct Group {
    pub metric: Option<String>,
    pub shape: Shape,
    pub identity: Vec<String>,
    /// State names the series name, in order of appearance, with a colour
    /// from a value mapping or a fixed field colour when one is set.
    pub names: Vec<(String, Option<String>)>,
}

/// A machine: the state series sharing identity label values.
#[derive(Clone, Debug)]
pub struct Machine {
    pub group: usize,
    pub id: String,
    /// Identity label values, in the group's identity order ("" where a
    /// series of it lacks the label).
    pub key: Vec<String>,
    /// Labels worth showing: those of all its series (the latest value of
    /// each), without the state label.
    pub labels: Vec<(String, String)>,
    /// Kind name, from the options, the `kind` label, or the states seen.
    pub kind: String,
    /// Its series (indices into the series list) and what each says; a
    /// machine whose labels changed has several series per state.
    pub inputs: Vec<(usize, Input)>,
}

#[derive(Clone, Debug, Default)]
pub struct Recognised {
    pub groups: Vec<Group>,
    pub machines: Vec<Machine>,
    /// Auxiliary series by role (indices into the series list).
    pub transitions: Vec<usize>,
    pub created: Vec<usize>,
    pub since: Vec<usize>,
    pub allowed: Vec<usize>,
    pub severity: Vec<usize>,
    pub warnings: Vec<String>,
    /// Whether what was recognised depends on samples as well as on the
    /// series' labels and config (two series of one machine compared, labels
    /// merged by which series is the latest, values quoted in a message):
    /// then it must not be reused for other samples (see `view::ViewCache`).
    pub reads_samples: bool,
    /// Machine by identity key (its values joined by [`KEY_SEPARATOR`]), per group.
    index: Vec<HashMap<String, usize>>,
}

/// Joins identity values into one map key; no label value holds it.
const KEY_SEPARATOR: char = '\u{0}';

fn joined_key<S: AsRef<str>>(values: &[S]) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(KEY_SEPARATOR);
        }
        out.push_str(v.as_ref());
    }
    out
}

impl Recognised {
    /// The machine a series (auxiliary or state) belongs to, by the identity
    /// labels of each group in turn. A series lacking some identity labels
    /// belongs to the one machine that agrees on those it has, if only one does.
    pub fn machine_of(&self, s: &Series) -> Option<usize> {
        self.groups.iter().enumerate().find_map(|(g, group)| {
            if group.identity.is_empty() {
                return None;
            }
            let key: Vec<Option<&str>> = group.identity.iter().map(|l| s.label(l)).collect();
            self.find(g, &key)
        })
    }

    fn find(&self, group: usize, key: &[Option<&str>]) -> Option<usize> {
        if key.iter().all(Option::is_some) {
            let full: Vec<&str> = key.iter().map(|v| v.unwrap_or_default()).collect();
            return self.index.get(group)?.get(&joined_key(&full)).copied();
        }
        if key.iter().all(Option::is_none) {
            return None;
        }
        let mut agreeing = self
            .machines
            .iter()
            .enumerate()
            .filter(|(_, m)| m.group == group && key.iter().zip(&m.key).all(|(v, k)| v.is_none_or(|v| v == k)));
        match (agreeing.next(), agreeing.next()) {
            (Some((m, _)), None) => Some(m),
            _ => None,
        }
    }
}

/// State series of one metric, before machines are formed.
struct Members<'a> {
    metric: Option<&'a str>,
    shape: Shape,
    list: Vec<(usize, Input)>,
}

pub fn recognise<'a>(series: &[Series<'a>], options: &PanelOptions) -> Result<Recognised, DataProblem> {
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
            Role::Created => rec.created.push(i),
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

    let mut unreadable: Option<DataProblem> = None;
    for members in shapes(by_metric, series, options, &mut rec.warnings) {
        let Members { metric, shape, list } = members;
        let group_index = rec.groups.len();
        let member_series: Vec<&Series> = list.iter().map(|&(i, _)| &series[i]).collect();
        let identity = if options.identity_labels.is_empty() {
            detect_identity(metric, shape, state_label, &member_series)
        } else {
            options.identity_labels.clone()
        };
        let names = match shape {
            Shape::UpActive => Vec::new(),
            _ => names_seen(&list, series),
        };
        let group = Group {
            metric: metric.map(str::to_owned),
            shape,
            identity,
            names,
        };
        if let Some(problem) = unreadable_enum(&group, &list, series, options) {
            rec.reads_samples = true;
            unreadable.get_or_insert(problem);
            continue;
        }
        let duplicates = add_machines(&mut rec, group_index, &group, &list, series);
        if duplicates > 0 {
            rec.warnings.push(format!(
                "{duplicates} series of {} repeat a machine already read (same identity labels: {}) with other \
                 values; they were skipped. Set the identity labels option if machines are merged wrongly.",
                metric.unwrap_or("the query"),
                if group.identity.is_empty() {
                    "none".to_owned()
                } else {
                    group.identity.join(", ")
                }
            ));
        }
        rec.groups.push(group);
    }
    if let Some(problem) = unreadable {
        if rec.machines.is_empty() {
            return Err(problem);
        }
        rec.warnings.push(problem.to_string());
    }
    for m in &mut rec.machines {
        let (labels, by_time) = merged_labels(&m.inputs, series, state_label);
        rec.reads_samples |= by_time;
        let group = &rec.groups[m.group];
        let kind_label = labels.iter().find(|(k, _)| *k == contract::LABEL_KIND).map(|(_, v)| *v);
        m.kind = kind_name(&options.kind, group, kind_label);
        m.labels = labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    }
    Ok(rec)
}

/// Each metric's series with the shape they are read in; a liveness gauge
/// and its activity gauge (same identity, same subject) become one group.
fn shapes<'a>(
    by_metric: Vec<(Option<&'a str>, Vec<usize>)>,
    series: &[Series<'a>],
    options: &PanelOptions,
    warnings: &mut Vec<String>,
) -> Vec<Members<'a>> {
    let state_label = options.state_label.as_str();
    let has_state_label = |list: &[usize]| list.iter().any(|&i| series[i].label(state_label).is_some());
    // Pairs are only formed when nothing in the options says how to read the data.
    let pairing = options.shape == ShapeChoice::Auto && options.kind == KindChoice::Auto;
    let mut activity_of: Vec<Option<usize>> = vec![None; by_metric.len()];
    if pairing {
        for (u, (up, up_list)) in by_metric.iter().enumerate() {
            let Some(up) = up.filter(|m| is_up_metric(Some(m))) else {
                continue;
            };
            if has_state_label(up_list) {
                continue;
            }
            let taken = |a: usize| activity_of.contains(&Some(a));
            let found = by_metric.iter().enumerate().position(|(a, (other, list))| {
                !taken(a) && other.is_some_and(|o| is_activity_of(up, o)) && !has_state_label(list)
            });
            activity_of[u] = found;
        }
    }
    let mut out = Vec::new();
    for (g, (metric, list)) in by_metric.iter().enumerate() {
        if activity_of.contains(&Some(g)) {
            continue;
        }
        if let Some(a) = activity_of[g] {
            let mut members: Vec<(usize, Input)> = list.iter().map(|&i| (i, Input::Up)).collect();
            members.extend(by_metric[a].1.iter().map(|&i| (i, Input::Active)));
            out.push(Members {
                metric: *metric,
                shape: Shape::UpActive,
                list: members,
            });
            continue;
        }
        let shape = match options.shape {
            ShapeChoice::OneHot => Shape::OneHot,
            ShapeChoice::Enum => Shape::Enum,
            ShapeChoice::Auto if has_state_label(list) => Shape::OneHot,
            ShapeChoice::Auto => Shape::Enum,
        };
        let members: Vec<(usize, Input)> = match shape {
            Shape::OneHot => {
                let named: Vec<(usize, Input)> = list
                    .iter()
                    .filter_map(|&i| Some((i, Input::State(series[i].label(state_label).and_then(state_name)?))))
                    .collect();
                if named.len() < list.len() {
                    warnings.push(format!(
                        "Ignored {} series of {} without a `{state_label}` label naming a state.",
                        list.len() - named.len(),
                        metric.unwrap_or("the query")
                    ));
                }
                named
            }
            _ => list.iter().map(|&i| (i, Input::Value)).collect(),
        };
        out.push(Members {
            metric: *metric,
            shape,
            list: members,
        });
    }
    out
}

/// An enum group whose numbers name no state: no value mappings, no text
/// values, not a breaker or `up`-style metric, no kind that numbers its
/// states. Reading it as a breaker would draw every 0/1 gauge as breakers.
fn unreadable_enum(
    group: &Group,
    list: &[(usize, Input)],
    series: &[Series],
    options: &PanelOptions,
) -> Option<DataProblem> {
    if group.shape != Shape::Enum || !group.names.is_empty() {
        return None;
    }
    let first = &series[list.first()?.0];
    let numbered = match &options.kind {
        KindChoice::Named(_) => true,
        KindChoice::FromData => false,
        KindChoice::Auto => {
            is_breaker_metric(group.metric.as_deref())
                || is_up_metric(group.metric.as_deref())
                || first
                    .label(contract::LABEL_KIND)
                    .is_some_and(statescope_model::kind::is_valid_name)
        }
    };
    if numbered {
        return None;
    }
    // Up to three of the values, for the message.
    let mut values: Vec<String> = Vec::new();
    let numbers = list.iter().flat_map(|(i, _)| {
        let s = &series[*i];
        (0..s.len()).filter_map(|j| s.number(j))
    });
    for v in numbers {
        let text = format!("{v}");
        if !values.contains(&text) {
            values.push(text);
            if values.len() == 3 {
                break;
            }
        }
    }
    Some(DataProblem::NoValueMappings {
        series: first.describe(),
        values: if values.is_empty() {
            "(none)".into()
        } else {
            values.join(", ")
        },
    })
}

/// Forms the machines of one group; returns how many series were skipped
/// because they disagree with a machine already read under the same identity.
fn add_machines<'a>(
    rec: &mut Recognised,
    group_index: usize,
    group: &Group,
    list: &[(usize, Input)],
    series: &[Series<'a>],
) -> usize {
    let identity = &group.identity;
    let keyed = list.iter().map(|(i, input)| {
        let key: Vec<Option<&'a str>> = identity.iter().map(|l| series[*i].label(l)).collect();
        (i, input, key)
    });
    // Series with every identity label first, so that one lacking some finds
    // the machine its complete series formed.
    let (complete, partial): (Vec<_>, Vec<_>) = keyed.partition(|(_, _, key)| key.iter().all(Option::is_some));
    let mut duplicates = 0;
    for (i, input, key) in complete.into_iter().chain(partial) {
        match rec.find(group_index, &key) {
            Some(m) => {
                let machine = &mut rec.machines[m];
                let same_input = machine.inputs.iter().filter(|(_, other)| other == input);
                let mut same_input = same_input.peekable();
                rec.reads_samples |= same_input.peek().is_some();
                let clash = same_input.any(|(j, _)| disagree(&series[*j], &series[*i]));
                if clash {
                    duplicates += 1;
                } else {
                    machine.inputs.push((*i, input.clone()));
                }
            }
            None => {
                let key: Vec<&'a str> = key.iter().map(|v| v.unwrap_or_default()).collect();
                if rec.index.len() <= group_index {
                    rec.index.resize_with(group_index + 1, HashMap::new);
                }
                rec.index[group_index].insert(joined_key(&key), rec.machines.len());
                rec.machines.push(Machine {
                    group: group_index,
                    id: machine_id(identity, &key, group.metric.as_deref(), &series[*i]),
                    labels: Vec::new(),
                    kind: String::new(),
                    key: key.iter().map(|v| (*v).to_owned()).collect(),
                    inputs: vec![(*i, input.clone())],
                });
            }
        }
    }
    duplicates
}

/// Whether two series that would read the same state of the same machine
/// say different things at most instants both have a sample for: two
/// machines under one identity. The same series scraped twice agrees but
/// for a scrape's lag at a change; a series replaced by one with more
/// labels does not overlap it at all.
fn disagree(a: &Series, b: &Series) -> bool {
    let (mut i, mut j, mut shared, mut differ) = (0, 0, 0usize, 0usize);
    while i < a.len() && j < b.len() {
        let ((ta, va), (tb, vb)) = (a.point(i), b.point(j));
        match (ta, tb) {
            (Some(x), Some(y)) if x == y => {
                shared += 1;
                let same = match (va.as_f64(), vb.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    (None, None) => va == vb,
                    _ => false,
                };
                differ += usize::from(!same);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => i += 1,
            (Some(_), Some(_)) | (_, None) => j += 1,
            (None, _) => i += 1,
        }
    }
    differ * 2 > shared
}

/// The labels of all of a machine's series, the most recent series' value
/// winning, without the state label; and whether that took reading which
/// series is the most recent (two of them give a label different values).
fn merged_labels<'a>(
    inputs: &[(usize, Input)],
    series: &[Series<'a>],
    state_label: &str,
) -> (Vec<(&'a str, &'a str)>, bool) {
    let mut labels: BTreeMap<&'a str, &'a str> = BTreeMap::new();
    let mut conflict = false;
    for (i, _) in inputs {
        for (k, v) in series[*i].labels.iter().filter(|(k, _)| *k != state_label) {
            conflict |= *labels.entry(k).or_insert(v) != v;
        }
    }
    if !conflict {
        return (labels.into_iter().collect(), false);
    }
    let last_time = |i: usize| {
        let s = &series[i];
        (0..s.len())
            .rev()
            .find_map(|j| s.point(j).0)
            .unwrap_or(f64::NEG_INFINITY)
    };
    let last: Vec<f64> = inputs.iter().map(|(i, _)| last_time(*i)).collect();
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    sort_indices(&mut order, &|a, b| last[a].total_cmp(&last[b]));
    labels.clear();
    for i in order.into_iter().map(|k| inputs[k].0) {
        labels.extend(series[i].labels.iter().filter(|(k, _)| *k != state_label));
    }
    (labels.into_iter().collect(), true)
}

/// Labels a person reads from the broad to the narrow, for naming a machine
/// by several labels (`deepseek/key-a`, not `key-a/deepseek`).
const BROAD_TO_NARROW: [&str; 20] = [
    "application",
    "app",
    "service",
    "namespace",
    "cluster",
    "region",
    "zone",
    "provider",
    "team",
    "queue",
    "queue_name",
    "worker_type",
    "job",
    "instance",
    "pod",
    "host",
    "hostname",
    "name",
    "key_id",
    "machine",
];

/// Identity labels when the options give none: the contract's for known
/// metrics, else every label that tells series apart, in the order a person
/// reads them. A label only some series carry (added to a machine later)
/// is no identity when the other labels already tell which machine it is on.
fn detect_identity(metric: Option<&str>, shape: Shape, state_label: &str, members: &[&Series]) -> Vec<String> {
    let has = |label: &str| members.iter().all(|s| s.label(label).is_some());
    let varies = |label: &str| {
        let mut values = members.iter().map(|s| s.label(label));
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
    // Each label's distinct values and how many series carry it.
    let mut seen: BTreeMap<&str, (HashSet<&str>, usize)> = BTreeMap::new();
    for s in members {
        for (k, v) in &s.labels {
            if shape != Shape::OneHot || k != state_label {
                let entry = seen.entry(k).or_default();
                entry.0.insert(v);
                entry.1 += 1;
            }
        }
    }
    let everywhere: Vec<&str> = seen
        .iter()
        .filter(|(_, (values, count))| *count == members.len() && values.len() > 1)
        .map(|(k, _)| *k)
        .collect();
    let determined = |label: &str| {
        // The first member with each key: a map of the same type as
        // `series.rs` uses, one copy of its code in the wasm.
        let mut first_of: HashMap<Vec<&str>, usize> = HashMap::new();
        members.iter().enumerate().all(|(i, s)| {
            let Some(v) = s.label(label) else { return true };
            let key: Vec<&str> = everywhere.iter().map(|l| s.label(l).unwrap_or_default()).collect();
            members[*first_of.entry(key).or_insert(i)].label(label) == Some(v)
        })
    };
    let partial: Vec<&str> = seen
        .iter()
        .filter(|(k, (_, count))| *count < members.len() && !determined(k))
        .map(|(k, _)| *k)
        .collect();
    let distinct = |label: &str| seen.get(label).map_or(0, |(values, _)| values.len());
    reading_order(everywhere.into_iter().chain(partial).collect(), distinct)
}

/// Labels in the order a person reads a machine's name: the labels of
/// [`BROAD_TO_NARROW`] in that order, the others by how few values they
/// take (a label with fewer values is the broader one), the two lists merged
/// by that count.
fn reading_order(labels: Vec<&str>, distinct: impl Fn(&str) -> usize) -> Vec<String> {
    // The labels are distinct: the known ones in their table's order.
    let known: Vec<&str> = BROAD_TO_NARROW.into_iter().filter(|k| labels.contains(k)).collect();
    let other: Vec<&str> = labels.into_iter().filter(|l| !BROAD_TO_NARROW.contains(l)).collect();
    let mut order: Vec<usize> = (0..other.len()).collect();
    sort_indices(&mut order, &|a, b| {
        let (a, b) = (other[a], other[b]);
        distinct(a).cmp(&distinct(b)).then(a.cmp(b))
    });
    let other: Vec<&str> = order.into_iter().map(|i| other[i]).collect();
    let mut out = Vec::with_capacity(known.len() + other.len());
    let (mut k, mut o) = (known.into_iter().peekable(), other.into_iter().peekable());
    loop {
        let next = match (k.peek(), o.peek()) {
            (Some(a), Some(b)) if distinct(a) <= distinct(b) => k.next(),
            (Some(_), Some(_)) | (None, Some(_)) => o.next(),
            (Some(_), None) => k.next(),
            (None, None) => break,
        };
        out.extend(next.map(str::to_owned));
    }
    out
}

fn names_seen(list: &[(usize, Input)], series: &[Series]) -> Vec<(String, Option<String>)> {
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    let mut add = |name: String, color: Option<String>| match names.iter_mut().find(|(n, _)| *n == name) {
        Some(entry) => {
            if entry.1.is_none() {
                entry.1 = color;
            }
        }
        None => names.push((name, color)),
    };
    for (i, input) in list {
        let s = &series[*i];
        match input {
            Input::State(name) => {
                let fixed = s.field.config.color.as_ref().filter(|c| c.mode == "fixed");
                add(name.clone(), fixed.and_then(|c| c.fixed_color.clone()));
            }
            Input::Value => {
                for (name, color) in mapped_names(&s.field.config) {
                    add(name, color);
                }
                for i in 0..s.len() {
                    if let Cell::Text(text) = s.point(i).1
                        && text.trim().parse::<f64>().is_err()
                        && let Some(name) = state_name(text)
                    {
                        add(name, None);
                    }
                }
            }
            Input::Up | Input::Active => {}
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
        KindChoice::FromData => return data_kind_name(group.metric.as_deref()),
        KindChoice::Auto => {}
    }
    if let Some(k) = kind_label.filter(|k| statescope_model::kind::is_valid_name(k)) {
        return k.to_owned();
    }
    if group.shape == Shape::UpActive {
        return builtin::WORKER.to_owned();
    }
    if matches!(
        group.metric.as_deref(),
        Some(contract::RESILIENCE4J_STATE | contract::COMPAT_BREAKER_STATE)
    ) {
        return builtin::CIRCUIT_BREAKER.to_owned();
    }
    if group.names.is_empty() {
        // A bare number per machine (groups that cannot be read so were
        // dropped before): the breaker numbering for a breaker's metric
        // (0 closed, 1 open, 2 half_open), else 0 down, 1 up.
        return if is_breaker_metric(group.metric.as_deref()) {
            builtin::CIRCUIT_BREAKER.to_owned()
        } else {
            UP_KIND.to_owned()
        };
    }
    for kind in builtin::all() {
        if group.names.iter().all(|(n, _)| kind.state_id(n).is_some()) {
            return kind.name().to_owned();
        }
    }
    data_kind_name(group.metric.as_deref())
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
            if !names.contains(&k) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_from_the_broad_label_to_the_narrow() {
        let distinct = |l: &str| match l {
            "provider" => 3,
            "shard" => 5,
            _ => 2,
        };
        // Known labels keep their order whatever their counts...
        assert_eq!(
            reading_order(vec!["key_id", "provider"], distinct),
            ["provider", "key_id"]
        );
        // ...others go by fewer values first, and the two lists merge by count.
        assert_eq!(reading_order(vec!["shard", "team_x"], distinct), ["team_x", "shard"]);
        assert_eq!(
            reading_order(vec!["shard", "key_id", "team_x", "provider"], distinct),
            ["team_x", "provider", "key_id", "shard"]
        );
    }

    #[test]
    fn a_liveness_gauge_pairs_with_the_activity_gauge_of_the_same_subject() {
        assert!(is_activity_of("celery_worker_up", "celery_worker_tasks_active"));
        assert!(is_activity_of(
            "gunicorn_worker_up",
            "gunicorn_worker_requests_in_progress"
        ));
        assert!(!is_activity_of("celery_worker_up", "celery_queue_length"));
        assert!(
            !is_activity_of("celery_worker_up", "celery_task_active"),
            "another subject"
        );
        assert!(
            !is_activity_of("up", "nginx_connections_active"),
            "`up` is every target's"
        );
        assert!(is_up_metric(Some("up")) && is_up_metric(Some("celery_worker_up")));
        assert!(!is_up_metric(Some("backup")) && !is_up_metric(None));
        assert!(is_breaker_metric(Some(
            "envoy_cluster_circuit_breakers_default_rq_open"
        )));
        assert!(!is_breaker_metric(Some("pg_replication_is_replica")));
    }
}
