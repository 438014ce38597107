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
//! Machine series are written from a [`Snapshot`] of the store taken for
//! the scrape rather than kept in prometheus-client metric families: the
//! store already holds every value, and a second lasting copy of 10k
//! machines' series would double memory and make every event update two
//! structures. The exporter's own metrics do live in
//! a prometheus-client registry (see [`crate::telemetry`]).

mod breakers;
mod compat;
mod exporter;
mod kinds;
mod machines;
mod workers;
mod writer;

use statescope_model::builtin::{CIRCUIT_BREAKER, WORKER, breaker_state};
use statescope_model::contract::{self as c, CallOutcome, JobResult};
use statescope_model::{Kind, StateId};

use crate::config::Compat;
use crate::store::{JobHistograms, MachineKey, Store, push_label};
use crate::telemetry::Telemetry;
pub use writer::Emit;
use writer::Writer;

/// The exposition format a scraper asked for (see [`crate::api::scrape`] for how
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

/// What one scrape reads, copied out of the store in one pass under its
/// read lock, so the lock is released before the body is written (ingest
/// waits for the copy, not for the encoding) and every family's pass reads
/// contiguous memory instead of chasing the machines B-tree's nodes: with
/// one pass per family over a 100k-machine B-tree, cache misses made the
/// scrape grow faster than the store.
///
/// Nothing of it outlives the scrape: the store keeps no rendered text, so
/// its memory per machine stays what it was.
pub struct Snapshot {
    kinds: Vec<Kind>,
    texts: Vec<KindText>,
    compat: Compat,
    rows: Vec<Row>,
    /// Every machine's rendered labels back to back (see [`Row`]).
    labels: String,
    /// Every machine's taken transitions back to back, by source then target.
    taken: Vec<((StateId, StateId), u64)>,
    /// Machines by kind, in catalog order.
    per_kind: Vec<usize>,
    /// The rows with `statescope_worker_jobs_total` and with a last heartbeat,
    /// in order: those families' passes read no other row (a breaker fleet
    /// has neither, and at 100k machines a pass over every row is memory's time).
    with_jobs: Vec<usize>,
    with_heartbeat: Vec<usize>,
    /// About the size of the body, a little over.
    estimated_len: usize,
    jobs: Vec<((String, String), JobHistograms)>,
}

/// A kind's labels that follow a machine's own, rendered once per scrape
/// rather than once per sample, with the closing brace (see [`writer::tail`]):
/// `,state="x"} ` by state, `,from="a",to="b"} ` by pair of states.
struct KindText {
    states: Vec<String>,
    /// Indexed by `from * states + to`.
    pairs: Vec<String>,
    /// The normal-flow pairs, in the kind's order.
    normal: Vec<(StateId, StateId)>,
}

impl KindText {
    fn new(kind: &Kind) -> KindText {
        let name = |id: StateId| kind.state_name(id);
        KindText {
            states: kind
                .state_ids()
                .map(|id| writer::tail(&[(c::LABEL_STATE, name(id))]))
                .collect(),
            pairs: kind
                .state_ids()
                .flat_map(|from| kind.state_ids().map(move |to| (from, to)))
                .map(|(from, to)| writer::tail(&[(c::LABEL_FROM, name(from)), (c::LABEL_TO, name(to))]))
                .collect(),
            normal: kind.transitions().collect(),
        }
    }

    fn pair(&self, from: StateId, to: StateId) -> &str {
        &self.pairs[from.index() * self.states.len() + to.index()]
    }
}

/// One machine's values a scrape writes, and where its text lies in
/// [`Snapshot::labels`]: `kind="..",machine=".."` (`own`), then its identity
/// labels (together `labels`), then for a breaker with compat series on its
/// `provider=..,key_id=..,machine=..` (`compat`).
struct Row {
    kind: usize,
    state: StateId,
    /// Has `statescope_breaker_*` series: a breaker, or a machine that reported a call.
    calls_series: bool,
    /// A breaker with compat series.
    compat_series: bool,
    text: usize,
    own_len: u16,
    labels_len: u16,
    /// Where `machine="..."` starts in the text.
    machine_at: u16,
    /// The compat series' `provider` and `key_id` values, escaped, in the text.
    provider: Span,
    key_id: Span,
    taken: usize,
    taken_len: u32,
    since: f64,
    created: f64,
    last_heartbeat: Option<f64>,
    unexpected: u64,
    failures: u64,
    /// Transitions into the breaker's open state (compat series only).
    trips: u64,
    calls: [u64; CallOutcome::ALL.len()],
    jobs: [u64; JobResult::ALL.len()],
}

impl Snapshot {
    /// Copies what a scrape writes out of `store`, in store order.
    pub fn take(store: &Store, compat: Compat) -> Snapshot {
        let kinds = store.catalog().all().to_vec();
        let texts: Vec<KindText> = kinds.iter().map(KindText::new).collect();
        let position = |name: &str| kinds.iter().position(|k| k.name() == name);
        let (breaker, worker) = (position(CIRCUIT_BREAKER), position(WORKER));
        let open = breaker.and_then(|b| kinds[b].state_id(breaker_state::OPEN));
        let machines = store.machines();
        let mut rows = Vec::with_capacity(machines.len());
        let mut labels = String::with_capacity(machines.len() * 96);
        let mut taken = Vec::with_capacity(machines.len() * 2);
        let mut per_kind = vec![0; kinds.len()];
        let (mut with_jobs, mut with_heartbeat) = (Vec::new(), Vec::new());
        // About the size of the body, a little over: growing a 10k-machine body
        // (17 MB) by doubling would copy it twice over and touch a third more memory.
        // Per sample: the series name, the extra labels and the value, besides the base labels.
        const LINE: usize = 80;
        let mut estimated_len = 64 * 1024;
        // Machines are ordered by kind name, so each kind's machines are one
        // range of the B-tree, found once: the walk reads no machine's kind
        // (another heap string each, a cache miss at 10k machines).
        let mut by_name: Vec<usize> = (0..kinds.len()).collect();
        by_name.sort_by_key(|&k| kinds[k].name());
        let kind_texts: Vec<String> = kinds
            .iter()
            .map(|k| {
                let mut t = writer::labels([(c::LABEL_KIND, k.name())].into_iter());
                t.push(',');
                t
            })
            .collect();
        let in_kind = |kind: &Kind| {
            let key = |kind: String| MachineKey {
                kind,
                machine: String::new(),
            };
            // The first name after `kind` and every name it prefixes: `kind` + NUL.
            machines.range(key(kind.name().to_owned())..key(format!("{}\0", kind.name())))
        };
        let entries = by_name
            .into_iter()
            .map(|kind| (kind, in_kind(&kinds[kind])))
            .collect::<Vec<_>>()
            .into_iter()
            .flat_map(|(kind, range)| range.map(move |entry| (kind, entry)));
        // Each machine's id and labels (and its transition counts, past four
        // pairs) are heap blocks of their own, anywhere in a large store:
        // reading them one machine at a time waited on memory for each (at
        // 100k machines, most of this walk). Asking for those of a machine a
        // few places ahead lets the waits overlap.
        let mut ahead = entries.clone().skip(PREFETCH_AHEAD);
        for (kind, (key, m)) in entries {
            if let Some((_, (key, m))) = ahead.next() {
                prefetch(key.machine.as_ptr());
                prefetch(m.labels.text().as_ptr());
                if let Some(counts) = m.transitions.heap() {
                    prefetch(counts);
                }
            }
            per_kind[kind] += 1;
            let text = labels.len();
            labels.push_str(&kind_texts[kind]);
            let machine_text = labels.len();
            push_label(&mut labels, c::LABEL_MACHINE, &key.machine);
            let machine_text = machine_text..labels.len();
            let own_len = labels.len() - text;
            if !m.labels.is_empty() {
                labels.push(',');
                labels.push_str(m.labels.text());
            }
            let labels_len = labels.len() - text;
            let compat_series = compat != Compat::Off && Some(kind) == breaker;
            // provider/key_id as the seed dashboards use them: where their values
            // lie in the text just copied, so the compat families write them from
            // there (copying them again here was a third of this text per breaker).
            let (mut provider, mut key_id) = (Span::EMPTY, None);
            if compat_series {
                // The identity labels follow `own` and a comma.
                let identity = own_len + 1;
                for (name, value) in m.labels.escaped_at() {
                    let span = Span::new(identity + value.start, value.len());
                    match name {
                        c::LABEL_PROVIDER => provider = span,
                        c::LABEL_KEY_ID => key_id = Some(span),
                        _ => {}
                    }
                }
            }
            // Without a key_id label, the machine's id as its `machine` label has it, escaped.
            let key_id = key_id.unwrap_or(Span::new(
                machine_text.start + c::LABEL_MACHINE.len() + 2 - text,
                machine_text.len() - c::LABEL_MACHINE.len() - 3,
            ));
            let first_taken = taken.len();
            taken.extend(m.transitions.iter());
            // Normal-flow counters exist from creation: about one per state.
            let samples = 2 * texts[kind].states.len() + m.transitions.len() + 16;
            estimated_len += samples * (labels_len + LINE);
            let jobs_series = m.has_jobs() || Some(kind) == worker;
            if jobs_series {
                with_jobs.push(rows.len());
            }
            if m.last_heartbeat.is_some() {
                with_heartbeat.push(rows.len());
            }
            rows.push(Row {
                kind,
                state: m.state,
                calls_series: m.has_calls() || Some(kind) == breaker,
                compat_series,
                text,
                own_len: short(own_len),
                labels_len: short(labels_len),
                machine_at: short(machine_text.start - text),
                provider,
                key_id,
                taken: first_taken,
                taken_len: u32::try_from(taken.len() - first_taken).expect("a kind has at most 256 states"),
                since: m.since,
                created: m.created,
                last_heartbeat: m.last_heartbeat,
                unexpected: m.unexpected,
                failures: m.failures,
                trips: match open {
                    Some(open) if compat_series => taken[first_taken..]
                        .iter()
                        .filter(|((_, to), _)| *to == open)
                        .map(|(_, n)| n)
                        .sum(),
                    _ => 0,
                },
                calls: m.calls,
                jobs: m.jobs,
            });
        }
        Snapshot {
            kinds,
            texts,
            compat,
            rows,
            labels,
            taken,
            per_kind,
            with_jobs,
            with_heartbeat,
            estimated_len,
            jobs: store
                .job_histograms()
                .iter()
                .map(|(k, h)| (k.clone(), h.clone()))
                .collect(),
        }
    }

    /// Renders every metric, handing the text to `emit` in pieces of about
    /// `chunk` bytes as they are written, so a server can send the start of a
    /// large body while the rest is still being encoded.
    /// `emit` gives back the buffer to write the next piece into (see [`Emit`]).
    pub fn encode_chunked(&self, telemetry: &Telemetry, format: Format, chunk: usize, emit: &mut Emit<'_>) {
        let mut out = Writer::new(format, chunk, self.estimated_len, emit);
        for collect in COLLECTORS {
            collect(self, telemetry, &mut out);
        }
        out.finish();
    }

    /// `kind="..",machine=".."` and the identity labels.
    fn labels(&self, row: &Row) -> &str {
        &self.labels[row.text..row.text + usize::from(row.labels_len)]
    }

    /// `kind` and `machine` alone, for the series that carry no identity labels.
    fn own_labels(&self, row: &Row) -> &str {
        &self.labels[row.text..row.text + usize::from(row.own_len)]
    }

    /// The compat series' labels: `provider="..",key_id=".."` put together in
    /// `out` from the machine's text when written rather than kept per machine,
    /// and `,machine=".."`, returned as it lies in that text (a writer's `extra`).
    fn compat_labels<'s>(&'s self, row: &Row, out: &mut String) -> &'s str {
        let text = &self.labels[row.text..row.text + usize::from(row.labels_len)];
        let span = |s: Span| &text[usize::from(s.at)..usize::from(s.at) + usize::from(s.len)];
        out.clear();
        out.push_str(c::LABEL_PROVIDER);
        out.push_str("=\"");
        out.push_str(span(row.provider));
        out.push_str("\",");
        out.push_str(c::LABEL_KEY_ID);
        out.push_str("=\"");
        out.push_str(span(row.key_id));
        out.push('"');
        // The comma that ends `kind="..",` precedes `machine`.
        &text[usize::from(row.machine_at) - 1..usize::from(row.own_len)]
    }

    fn taken(&self, row: &Row) -> &[((StateId, StateId), u64)] {
        &self.taken[row.taken..row.taken + row.taken_len as usize]
    }
}

/// How many machines ahead [`Snapshot::take`] asks for a machine's heap blocks.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading the cache line at `p` (a hint: it reads
/// nothing and cannot fault, whatever `p` is).
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE, which the instruction needs, is part of every x86_64 CPU;
    // a prefetch dereferences nothing, so any pointer is fine.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A part of a machine's text in [`Snapshot::labels`], from its start.
#[derive(Clone, Copy)]
struct Span {
    at: u16,
    len: u16,
}

impl Span {
    const EMPTY: Span = Span { at: 0, len: 0 };

    fn new(at: usize, len: usize) -> Span {
        Span {
            at: short(at),
            len: short(len),
        }
    }
}

/// A label text's length: at most a few identity labels of bounded length
/// ([`crate::events::MAX_LABEL_VALUE_LEN`]), far below `u16::MAX`.
fn short(len: usize) -> u16 {
    u16::try_from(len).expect("a machine's labels are bounded in length")
}

/// Writes its families, in order, from what the scrape read.
type Collector = fn(&Snapshot, &Telemetry, &mut Writer<'_>);

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
            String::new()
        } else {
            body.push_str(&chunk);
            chunk
        }
    });
    body
}

/// [`Snapshot::take`] then [`Snapshot::encode_chunked`].
pub fn encode_chunked(
    store: &Store,
    telemetry: &Telemetry,
    compat: Compat,
    format: Format,
    chunk: usize,
    emit: &mut Emit<'_>,
) {
    Snapshot::take(store, compat).encode_chunked(telemetry, format, chunk, emit);
}

#[cfg(test)]
mod tests;
