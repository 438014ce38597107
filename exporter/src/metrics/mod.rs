//! `/metrics`: the store as Prometheus text (0.0.4) or OpenMetrics 1.0,
//! following the metric contract in `statescope_model::contract`.
//!
//! As node_exporter's collectors do, each file writes one group of families,
//! in the order of [`COLLECTORS`]: [`machines`] (state, transitions),
//! [`kinds`] (each kind's graph), [`breakers`] and [`workers`] (their own
//! series), [`compat`] (the seed-compatible `circuit_breaker_*` series) and
//! [`exporter`] (the exporter's own metrics and the process's), over a
//! [`Writer`] that knows the two formats.
//!
//! Machine series are written directly from the store rather than kept in
//! prometheus-client metric families: the store already holds every value,
//! and a second copy of 10k machines' series would double memory and make
//! every event update two structures. The exporter's own metrics do live in
//! a prometheus-client registry (see [`crate::telemetry`]).

mod breakers;
mod compat;
mod exporter;
mod kinds;
mod machines;
mod workers;
mod writer;

use statescope_model::contract as c;
use statescope_model::{Kind, StateId};

use crate::config::Compat;
use crate::store::{Machine, MachineKey, Store};
use crate::telemetry::Telemetry;
use writer::Writer;

/// The exposition format a scraper asked for (see [`crate::scrape`] for how
/// the `Accept` header picks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4, the default.
    Prometheus,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What one scrape reads: the store under its read lock, with each machine's
/// kind and label set looked up once for every collector.
struct Scrape<'a> {
    store: &'a Store,
    telemetry: &'a Telemetry,
    compat: Compat,
    machines: Vec<Row<'a>>,
}

/// A kind's labels that follow a machine's own, rendered once per scrape
/// rather than once per sample: `,state="x"` by state, `,from="a",to="b"`
/// by pair of states.
struct KindText {
    states: Vec<String>,
    /// Indexed by `from * states + to`.
    pairs: Vec<String>,
}

impl KindText {
    fn new(kind: &Kind) -> KindText {
        let name = |id: StateId| kind.state_name(id);
        KindText {
            states: kind
                .state_ids()
                .map(|id| writer::extra(&[(c::LABEL_STATE, name(id))]))
                .collect(),
            pairs: kind
                .state_ids()
                .flat_map(|from| kind.state_ids().map(move |to| (from, to)))
                .map(|(from, to)| writer::extra(&[(c::LABEL_FROM, name(from)), (c::LABEL_TO, name(to))]))
                .collect(),
        }
    }

    fn state(&self, id: StateId) -> &str {
        &self.states[id.index()]
    }

    fn pair(&self, from: StateId, to: StateId) -> &str {
        &self.pairs[from.index() * self.states.len() + to.index()]
    }
}

/// A machine, its kind, and its rendered base labels (kind, machine,
/// identity labels), shared by every family it has samples in.
struct Row<'a> {
    key: &'a MachineKey,
    machine: &'a Machine,
    kind: &'a Kind,
    text: &'a KindText,
    labels: String,
    /// The length of `labels`' `kind="..",machine=".."` part.
    own_len: usize,
}

impl Row<'_> {
    /// `kind` and `machine` alone, for the series that carry no identity labels.
    fn own_labels(&self) -> &str {
        &self.labels[..self.own_len]
    }
}

/// Writes its families, in order, from what the scrape read.
type Collector = fn(&Scrape<'_>, &mut Writer<'_>);

/// Every family group, in the order of the body.
const COLLECTORS: [Collector; 6] = [
    machines::collect,
    kinds::collect,
    breakers::collect,
    workers::collect,
    compat::collect,
    exporter::collect,
];

/// Renders every metric as one string.
pub fn encode(store: &Store, telemetry: &Telemetry, compat: Compat, format: Format) -> String {
    let mut body = String::new();
    encode_chunked(store, telemetry, compat, format, usize::MAX, &mut |chunk| {
        if body.is_empty() {
            body = chunk;
        } else {
            body.push_str(&chunk);
        }
    });
    body
}

/// Renders every metric, handing the text to `emit` in pieces of about
/// `chunk` bytes as they are written, so a server can send the start of a
/// large body while the rest is still being encoded.
pub fn encode_chunked(
    store: &Store,
    telemetry: &Telemetry,
    compat: Compat,
    format: Format,
    chunk: usize,
    emit: &mut dyn FnMut(String),
) {
    let texts: Vec<KindText> = store.catalog().all().iter().map(KindText::new).collect();
    let scrape = Scrape {
        store,
        telemetry,
        compat,
        machines: rows(store, &texts),
    };
    let mut out = Writer::new(format, chunk, estimated_len(&scrape.machines), emit);
    for collect in COLLECTORS {
        collect(&scrape, &mut out);
    }
    out.finish();
}

/// The store's machines with their kinds and base labels, in store order.
fn rows<'a>(store: &'a Store, texts: &'a [KindText]) -> Vec<Row<'a>> {
    let kinds = store.catalog().all();
    // Machines are ordered by kind: look each kind up once, not per machine.
    let mut last_kind: Option<(&str, Option<usize>)> = None;
    store
        .machines()
        .iter()
        .filter_map(|(key, machine)| {
            let kind = match last_kind {
                Some((name, kind)) if name == key.kind => kind,
                _ => {
                    let kind = kinds.iter().position(|k| k.name() == key.kind);
                    last_kind = Some((&key.kind, kind));
                    kind
                }
            }?;
            let own = [
                (c::LABEL_KIND, key.kind.as_str()),
                (c::LABEL_MACHINE, key.machine.as_str()),
            ];
            let identity = machine.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            let labels = writer::labels(own.into_iter().chain(identity));
            let own_len = writer::labels(own.into_iter()).len();
            Some(Row {
                key,
                machine,
                kind: &kinds[kind],
                text: &texts[kind],
                labels,
                own_len,
            })
        })
        .collect()
}

/// About the size of the body, a little over: growing a 10k-machine body
/// (17 MB) by doubling would copy it twice over and touch a third more memory.
fn estimated_len(machines: &[Row<'_>]) -> usize {
    // Per sample: the series name, the extra labels and the value, besides the base labels.
    const LINE: usize = 80;
    let machine_series: usize = machines
        .iter()
        .map(|row| {
            // Normal-flow counters exist from creation: about one per state.
            let samples = 2 * row.kind.states().len() + row.machine.transitions.len() + 16;
            samples * (row.labels.len() + LINE)
        })
        .sum();
    machine_series + 64 * 1024
}

#[cfg(test)]
mod tests;
