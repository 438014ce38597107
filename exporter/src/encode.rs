//! `/metrics`: the store as Prometheus text (0.0.4) or OpenMetrics 1.0,
//! following the metric contract in `statescope_model::contract`.
//!
//! Machine series are written directly from the store rather than kept in
//! prometheus-client metric families: the store already holds every value,
//! and a second copy of 10k machines' series would double memory and make
//! every event update two structures. The exporter's own metrics do live in
//! a prometheus-client registry (see [`crate::telemetry`]).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use statescope_model::builtin::{CIRCUIT_BREAKER, WORKER, breaker_state};
use statescope_model::contract as c;

use statescope_model::StateId;
use statescope_model::contract::{CallOutcome, JobResult};

use crate::store::{Histogram, JOB_BUCKETS, Store};
use crate::telemetry::{Telemetry, fmt_value, process_metrics};

/// The exposition format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4, the default.
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// Picks the format from an `Accept` header by q-value (RFC 9110
    /// 12.5.1): OpenMetrics when the client prefers it, Prometheus text
    /// otherwise (also with no header, or when neither is acceptable). Each
    /// format takes the q of the most specific range that matches it
    /// (`application/openmetrics-text` over `application/*` over `*/*`;
    /// `version` is not looked at), and `q=0` means "not acceptable". At equal
    /// q the format listed first wins, as Prometheus lists OpenMetrics first;
    /// one wildcard matching both (`*/*`, as curl sends) gives text.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let ranges: Vec<MediaRange> = accept.split(',').filter_map(MediaRange::parse).collect();
        let om = preference(&ranges, "application", "openmetrics-text");
        let text = preference(&ranges, "text", "plain");
        match (om, text) {
            (Some(om), _) if om.q == 0 => Format::Prometheus,
            (Some(_), None) => Format::OpenMetrics,
            (Some(om), Some(text)) if om.q > text.q || (om.q == text.q && om.position < text.position) => {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// One element of an `Accept` header: `type/subtype;param=value;q=0.5`.
struct MediaRange<'a> {
    ty: &'a str,
    subtype: &'a str,
    /// Thousandths (q=0.5 is 500); 1000 when not given.
    q: u16,
}

impl MediaRange<'_> {
    /// None for an element that is not a media range (ignored, as RFC 9110 allows).
    fn parse(element: &str) -> Option<MediaRange<'_>> {
        let mut parts = element.split(';');
        let (ty, subtype) = parts.next()?.trim().split_once('/')?;
        let (ty, subtype) = (ty.trim(), subtype.trim());
        if ty.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                let value: f64 = value.trim().trim_matches('"').parse().ok()?;
                if !(0.0..=1.0).contains(&value) {
                    return None;
                }
                q = (value * 1000.0).round() as u16;
            }
        }
        Some(MediaRange { ty, subtype, q })
    }

    /// How specifically this range names `ty/subtype`: 2 exactly, 1 by
    /// `ty/*`, 0 by `*/*`; None if it does not match.
    fn specificity(&self, ty: &str, subtype: &str) -> Option<u8> {
        match (self.ty, self.subtype) {
            ("*", "*") => Some(0),
            (t, "*") if t.eq_ignore_ascii_case(ty) => Some(1),
            (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(subtype) => Some(2),
            _ => None,
        }
    }
}

/// How much a client wants one media type: its q, and the position of the
/// range that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Preference {
    q: u16,
    position: usize,
}

/// The q of `ty/subtype`: from the most specific ranges that match it, the
/// highest (several exact ones differ by `version`); None if none matches.
fn preference(ranges: &[MediaRange], ty: &str, subtype: &str) -> Option<Preference> {
    let mut best: Option<(u8, Preference)> = None;
    for (position, range) in ranges.iter().enumerate() {
        let Some(specificity) = range.specificity(ty, subtype) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((s, p)) => specificity > s || (specificity == s && range.q > p.q),
        };
        if better {
            best = Some((specificity, Preference { q: range.q, position }));
        }
    }
    best.map(|(_, p)| p)
}

/// Which seed-compatible `circuit_breaker_*` series to serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// None.
    Off,
    /// `circuit_breaker_state` (0/1/2) and `circuit_breaker_trips_total`.
    #[default]
    On,
    /// Also `circuit_breaker_failure_count`, whose `_count` suffix
    /// `promtool check metrics` rejects (it is reserved for histograms).
    Full,
}

struct Out<'e> {
    s: String,
    om: bool,
    /// Where the current family's header starts, and whether it has samples.
    family_start: usize,
    family_samples: usize,
    /// Hand `s` to `emit` once it holds this many bytes.
    chunk: usize,
    /// The current counter family's `_created` sample name (OpenMetrics).
    created_name: String,
    emit: &'e mut dyn FnMut(String),
}

impl Out<'_> {
    /// Passes on what is written so far. Only called once the current family
    /// has a sample, so its header is never one `end_family` must take back.
    fn flush(&mut self) {
        let full = std::mem::replace(&mut self.s, String::with_capacity(self.chunk.saturating_add(4096)));
        (self.emit)(full);
        self.family_start = 0;
    }

    fn family(&mut self, name: &str, ty: &str, help: &str) {
        self.end_family();
        self.family_start = self.s.len();
        let family = if self.om && ty == "counter" {
            name.strip_suffix("_total").unwrap_or(name)
        } else {
            name
        };
        let _ = writeln!(self.s, "# HELP {family} {help}\n# TYPE {family} {ty}");
        if ty == "counter" {
            self.created_name.clear();
            self.created_name.push_str(name.strip_suffix("_total").unwrap_or(name));
            self.created_name.push_str(c::CREATED_SUFFIX);
        }
    }

    /// Drops the header of a family that got no samples.
    fn end_family(&mut self) {
        if self.family_samples == 0 {
            self.s.truncate(self.family_start);
        }
        self.family_samples = 0;
        self.family_start = self.s.len();
    }

    /// One sample: `labels` is pre-rendered (`a="x",b="y"`), `extra` appended.
    fn sample(&mut self, name: &str, labels: &str, extra: &[(&str, &str)], value: f64) {
        self.s.push_str(name);
        self.s.push('{');
        self.s.push_str(labels);
        for (i, (k, v)) in extra.iter().enumerate() {
            if i > 0 || !labels.is_empty() {
                self.s.push(',');
            }
            label(&mut self.s, k, v);
        }
        self.s.push_str("} ");
        sample_value(&mut self.s, value);
        self.s.push('\n');
        self.family_samples += 1;
        if self.s.len() >= self.chunk {
            self.flush();
        }
    }

    /// A machine counter's sample, and in OpenMetrics its `_created` sample:
    /// the time its machine was created, when the counter was 0 (see
    /// `contract::COUNTERS_FROM_CREATION`).
    ///
    /// `name` is the current family's (see [`Out::family`]).
    fn counter(&mut self, name: &str, labels: &str, extra: &[(&str, &str)], value: u64, created: f64) {
        self.sample(name, labels, extra, value as f64);
        if self.om {
            // Taken out and put back: one name per family, not an allocation per sample.
            let created_name = std::mem::take(&mut self.created_name);
            self.sample(&created_name, labels, extra, created);
            self.created_name = created_name;
        }
    }

    fn histogram(&mut self, name: &str, labels: &str, h: &Histogram) {
        let mut cumulative = 0;
        for (i, bound) in JOB_BUCKETS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            self.sample(
                &format!("{name}_bucket"),
                labels,
                &[("le", &bound.to_string())],
                cumulative as f64,
            );
        }
        self.sample(&format!("{name}_bucket"), labels, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), labels, &[], h.sum);
        self.sample(&format!("{name}_count"), labels, &[], h.count as f64);
    }
}

/// Appends a sample's value. Most machine series are counters and one-hot
/// gauges, whole numbers: written without going through `fmt`, which takes
/// a fair share of a 10k-machine scrape's time (one value per line).
fn sample_value(out: &mut String, v: f64) {
    if v.fract() == 0.0 && (0.0..1e15).contains(&v) {
        push_digits(out, v as u64);
        return;
    }
    // Timestamps (state since, last heartbeat) are whole milliseconds in
    // seconds: `ms / 1000.0` is the f64 nearest to the decimal `s.mmm`, so
    // writing that decimal reads back as the same value, without the
    // shortest-representation search `fmt` does for every float.
    let ms = (v * 1000.0).round();
    if (0.0..1e15).contains(&ms) && ms / 1000.0 == v {
        let ms = ms as u64;
        push_digits(out, ms / 1000);
        out.push('.');
        let frac = ms % 1000;
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
        return;
    }
    fmt_value(out, v);
}

fn push_digits(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).expect("ASCII digits"));
}

/// Appends `name="value"` with the value escaped as the text formats require.
fn label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    // Nearly every value needs no escaping: copy it whole.
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        out.push('"');
        return;
    }
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Room for `name="value"` pairs, so rendering them never reallocates
/// (with one string per machine per scrape, growth showed in profiles).
fn labels_capacity<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)>) -> usize {
    pairs.map(|(k, v)| k.len() + v.len() + 8).sum()
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(labels_capacity(pairs.iter().copied()));
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        label(&mut s, k, v);
    }
    s
}

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
    let om = format == Format::OpenMetrics;
    let catalog = store.catalog();
    // Each machine's kind and its rendered base labels (kind, machine, identity labels).
    // Machines are ordered by kind: look each kind up once, not per machine.
    let mut last_kind: Option<(&str, Option<&statescope_model::Kind>)> = None;
    let machines: Vec<_> = store
        .machines()
        .iter()
        .filter_map(|(key, m)| {
            let kind = match last_kind {
                Some((name, kind)) if name == key.kind => kind,
                _ => {
                    let kind = catalog.get(&key.kind);
                    last_kind = Some((&key.kind, kind));
                    kind
                }
            }?;
            let own = [
                (c::LABEL_KIND, key.kind.as_str()),
                (c::LABEL_MACHINE, key.machine.as_str()),
            ];
            let capacity = labels_capacity(
                own.into_iter()
                    .chain(m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            );
            let mut base = String::with_capacity(capacity);
            for (i, (k, v)) in own
                .into_iter()
                .chain(m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .enumerate()
            {
                if i > 0 {
                    base.push(',');
                }
                label(&mut base, k, v);
            }
            Some((key, m, kind, base))
        })
        .collect();
    let mut out = Out {
        s: String::with_capacity(estimated_len(&machines).min(chunk.saturating_add(4096))),
        om,
        family_start: 0,
        family_samples: 0,
        chunk,
        created_name: String::new(),
        emit,
    };

    out.family(
        c::STATE,
        "gauge",
        "1 for the state the machine is in, 0 for its kind's other states",
    );
    for (_, m, kind, base) in &machines {
        for id in kind.state_ids() {
            out.sample(
                c::STATE,
                base,
                &[(c::LABEL_STATE, kind.state_name(id))],
                f64::from(u8::from(id == m.state)),
            );
        }
    }
    out.family(
        c::STATE_SINCE_TIMESTAMP_SECONDS,
        "gauge",
        "Unix time the machine entered its current state",
    );
    for (_, m, _, base) in &machines {
        out.sample(c::STATE_SINCE_TIMESTAMP_SECONDS, base, &[], m.since);
    }
    out.family(
        c::TRANSITIONS_TOTAL,
        "counter",
        "Transitions taken, counted where they happened",
    );
    for (_, m, kind, base) in &machines {
        for (from, to, n) in transition_counts(kind, m) {
            let extra = [
                (c::LABEL_FROM, kind.state_name(from)),
                (c::LABEL_TO, kind.state_name(to)),
            ];
            out.counter(c::TRANSITIONS_TOTAL, base, &extra, n, m.created);
        }
    }
    out.family(
        c::UNEXPECTED_TRANSITIONS_TOTAL,
        "counter",
        "Reported transitions the machine's kind does not expect (applied, or refused by a strict kind)",
    );
    for (key, m, _, _) in &machines {
        let l = labels(&[(c::LABEL_KIND, &key.kind), (c::LABEL_MACHINE, &key.machine)]);
        out.counter(c::UNEXPECTED_TRANSITIONS_TOTAL, &l, &[], m.unexpected, m.created);
    }
    out.family(
        c::TRANSITION_ALLOWED,
        "gauge",
        "1 for each transition a kind allows; flow is normal (its own) or manual (forced by someone)",
    );
    for kind in catalog.all() {
        for (from, to, flow) in kind.edges() {
            let l = labels(&[
                (c::LABEL_KIND, kind.name()),
                (c::LABEL_FROM, kind.state_name(from)),
                (c::LABEL_TO, kind.state_name(to)),
                (c::LABEL_FLOW, flow.as_str()),
            ]);
            out.sample(c::TRANSITION_ALLOWED, &l, &[], 1.0);
        }
    }
    out.family(
        c::STATE_SEVERITY,
        "gauge",
        "Severity of each state: 0 ok, 1 info, 2 warning, 3 critical",
    );
    for kind in catalog.all() {
        for id in kind.state_ids() {
            let l = labels(&[(c::LABEL_KIND, kind.name()), (c::LABEL_STATE, kind.state_name(id))]);
            out.sample(c::STATE_SEVERITY, &l, &[], f64::from(kind.severity(id).level()));
        }
    }
    out.family(
        c::BREAKER_CALLS_TOTAL,
        "counter",
        "Calls through the breaker, by outcome",
    );
    for (key, m, _, base) in &machines {
        if m.has_calls() || key.kind == CIRCUIT_BREAKER {
            for (o, n) in CallOutcome::ALL.iter().zip(m.calls) {
                out.counter(
                    c::BREAKER_CALLS_TOTAL,
                    base,
                    &[(c::LABEL_OUTCOME, o.as_str())],
                    n,
                    m.created,
                );
            }
        }
    }
    out.family(c::BREAKER_FAILURES, "gauge", "Failures in the breaker's current window");
    for (key, m, _, base) in &machines {
        if m.has_calls() || key.kind == CIRCUIT_BREAKER {
            out.sample(c::BREAKER_FAILURES, base, &[], m.failures as f64);
        }
    }
    out.family(c::WORKER_JOBS_TOTAL, "counter", "Jobs the worker finished, by result");
    for (key, m, _, base) in &machines {
        if m.has_jobs() || key.kind == WORKER {
            for (r, n) in JobResult::ALL.iter().zip(m.jobs) {
                out.counter(
                    c::WORKER_JOBS_TOTAL,
                    base,
                    &[(c::LABEL_RESULT, r.as_str())],
                    n,
                    m.created,
                );
            }
        }
    }
    let job_labels =
        |kind: &str, worker_type: &str| labels(&[(c::LABEL_KIND, kind), (c::LABEL_WORKER_TYPE, worker_type)]);
    out.family(
        c::WORKER_JOB_DURATION_SECONDS,
        "histogram",
        "How long jobs ran, by kind and worker type",
    );
    for ((kind, worker_type), h) in store.job_histograms() {
        if h.duration.count > 0 {
            out.histogram(
                c::WORKER_JOB_DURATION_SECONDS,
                &job_labels(kind, worker_type),
                &h.duration,
            );
        }
    }
    out.family(
        c::WORKER_QUEUE_WAIT_SECONDS,
        "histogram",
        "How long jobs waited before starting, by kind and worker type",
    );
    for ((kind, worker_type), h) in store.job_histograms() {
        if h.queue_wait.count > 0 {
            out.histogram(
                c::WORKER_QUEUE_WAIT_SECONDS,
                &job_labels(kind, worker_type),
                &h.queue_wait,
            );
        }
    }
    out.family(
        c::LAST_HEARTBEAT_TIMESTAMP_SECONDS,
        "gauge",
        "Unix time of the machine's last heartbeat",
    );
    for (_, m, _, base) in &machines {
        if let Some(t) = m.last_heartbeat {
            out.sample(c::LAST_HEARTBEAT_TIMESTAMP_SECONDS, base, &[], t);
        }
    }
    if compat != Compat::Off {
        encode_compat(&mut out, &machines, compat);
    }
    out.family(c::EXPORTER_MACHINES, "gauge", "Machines the exporter keeps, by kind");
    for kind in catalog.all() {
        let n = machines.iter().filter(|(key, ..)| key.kind == kind.name()).count();
        out.sample(
            c::EXPORTER_MACHINES,
            &labels(&[(c::LABEL_KIND, kind.name())]),
            &[],
            n as f64,
        );
    }
    for (name, help, counter, value) in process_metrics() {
        out.family(name, if counter { "counter" } else { "gauge" }, help);
        out.s.push_str(name);
        out.s.push(' ');
        fmt_value(&mut out.s, value);
        out.s.push('\n');
        out.family_samples += 1;
    }
    out.end_family();
    let mut own = String::new();
    telemetry.encode_openmetrics(&mut own);
    if om {
        out.s.push_str(&own);
        out.s.push_str("# EOF\n");
    } else {
        to_prometheus_text(&own, &mut out.s);
    }
    (out.emit)(std::mem::take(&mut out.s));
}

/// A machine's transition counts: every normal-flow pair of its kind (0 when
/// not taken yet, so the counter exists before its first increment) and every
/// other pair it took, ordered by source then target.
fn transition_counts<'a>(
    kind: &'a statescope_model::Kind,
    m: &'a crate::store::Machine,
) -> impl Iterator<Item = (StateId, StateId, u64)> + 'a {
    let mut normal = kind.transitions().peekable();
    let mut taken = m.transitions.iter().map(|(&pair, &n)| (pair, n)).peekable();
    std::iter::from_fn(move || match (normal.peek().copied(), taken.peek().copied()) {
        (Some(a), Some((b, n))) if a == b => {
            normal.next();
            taken.next();
            Some((a.0, a.1, n))
        }
        (Some(a), Some((b, _))) if a < b => {
            normal.next();
            Some((a.0, a.1, 0))
        }
        (Some(a), None) => {
            normal.next();
            Some((a.0, a.1, 0))
        }
        (_, Some((b, n))) => {
            taken.next();
            Some((b.0, b.1, n))
        }
        (None, None) => None,
    })
}

/// About the size of the body, a little over: growing a 10k-machine body
/// (17 MB) by doubling would copy it twice over and touch a third more memory.
fn estimated_len(machines: &[MachineRow<'_>]) -> usize {
    // Per sample: the series name, the extra labels and the value, besides the base labels.
    const LINE: usize = 80;
    let machine_series: usize = machines
        .iter()
        .map(|(_, m, kind, base)| {
            // Normal-flow counters exist from creation: about one per state.
            let samples = 2 * kind.states().len() + m.transitions.len() + 16;
            samples * (base.len() + LINE)
        })
        .sum();
    machine_series + 64 * 1024
}

type MachineRow<'a> = (
    &'a crate::store::MachineKey,
    &'a crate::store::Machine,
    &'a statescope_model::Kind,
    String,
);

fn encode_compat(out: &mut Out, machines: &[MachineRow<'_>], compat: Compat) {
    // provider/key_id as the seed dashboards use them, plus `machine` so two
    // breakers with the same provider and key id never collide into one series.
    let breakers: Vec<_> = machines
        .iter()
        .filter(|(key, ..)| key.kind == CIRCUIT_BREAKER)
        .map(|(key, m, kind, _)| {
            let provider = m.labels.get(c::LABEL_PROVIDER).map_or("", String::as_str);
            let key_id = m
                .labels
                .get(c::LABEL_KEY_ID)
                .map_or(key.machine.as_str(), String::as_str);
            let l = labels(&[
                (c::LABEL_PROVIDER, provider),
                (c::LABEL_KEY_ID, key_id),
                (c::LABEL_MACHINE, &key.machine),
            ]);
            (m, kind, l)
        })
        .collect();
    out.family(
        c::COMPAT_BREAKER_STATE,
        "gauge",
        "Breaker state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled",
    );
    for (m, _, l) in &breakers {
        out.sample(c::COMPAT_BREAKER_STATE, l, &[], m.state.index() as f64);
    }
    out.family(c::COMPAT_BREAKER_TRIPS_TOTAL, "counter", "Times the breaker opened");
    let open = breakers.first().map(|(_, kind, _)| {
        kind.state_id(breaker_state::OPEN)
            .expect("the built-in breaker has an open state")
    });
    for (m, _, l) in &breakers {
        let open = open.expect("there is a first breaker");
        out.counter(
            c::COMPAT_BREAKER_TRIPS_TOTAL,
            l,
            &[],
            m.transitions_into(open),
            m.created,
        );
    }
    if compat == Compat::Full {
        out.family(
            c::COMPAT_BREAKER_FAILURE_COUNT,
            "gauge",
            "Failures in the breaker's current window",
        );
        for (m, _, l) in &breakers {
            out.sample(c::COMPAT_BREAKER_FAILURE_COUNT, l, &[], m.failures as f64);
        }
    }
}

/// prometheus-client writes OpenMetrics; the 0.0.4 text format differs in
/// naming a counter's family with its `_total` suffix, and has no `# UNIT`
/// or `# EOF`.
fn to_prometheus_text(om: &str, out: &mut String) {
    let counters: Vec<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    for line in om.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(&name) { "_total" } else { "" };
                let _ = writeln!(out, "{prefix}{name}{suffix} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, Event};
    use crate::store::{Catalog, Limits};
    use statescope_model::builtin;

    fn demo_store() -> Store {
        let mut s = Store::new(Catalog::new(builtin::all()).unwrap(), Limits::default());
        let cb = |m: &str, a| Event::new("circuit_breaker", m, a).with_labels(&[("provider", "openai"), ("key_id", m)]);
        s.apply(
            &[
                cb("k1", Action::Transition { to: "open".into() }),
                cb(
                    "k1",
                    Action::Call {
                        outcome: CallOutcome::Failure,
                        failure_count: Some(5),
                    },
                ),
                cb("k2", Action::Heartbeat),
                Event::new(
                    "worker",
                    "w\"1",
                    Action::Job {
                        result: JobResult::Succeeded,
                        duration_seconds: 2.0,
                        queue_seconds: None,
                    },
                ),
            ],
            100.0,
        )
        .unwrap();
        s
    }

    #[test]
    fn one_hot_states_transitions_and_compat_series_follow_the_contract() {
        let text = encode(&demo_store(), &Telemetry::default(), Compat::Full, Format::Prometheus);
        for want in [
            r#"statescope_state{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",state="open"} 1"#,
            r#"statescope_state{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",state="closed"} 0"#,
            r#"statescope_transitions_total{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai",from="closed",to="open"} 1"#,
            r#"statescope_transition_allowed{kind="worker",from="busy",to="draining",flow="normal"} 1"#,
            r#"statescope_breaker_failures{kind="circuit_breaker",machine="k1",key_id="k1",provider="openai"} 5"#,
            r#"circuit_breaker_state{provider="openai",key_id="k1",machine="k1"} 1"#,
            r#"circuit_breaker_trips_total{provider="openai",key_id="k1",machine="k1"} 1"#,
            r#"circuit_breaker_failure_count{provider="openai",key_id="k1",machine="k1"} 5"#,
            r#"statescope_worker_jobs_total{kind="worker",machine="w\"1",result="succeeded"} 1"#,
            r#"statescope_worker_job_duration_seconds_bucket{kind="worker",worker_type="",le="2.5"} 1"#,
            r#"statescope_exporter_machines{kind="worker"} 1"#,
            "# TYPE statescope_transitions_total counter",
            "# TYPE statescope_exporter_events_total counter",
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
        }
        assert!(!text.contains("# EOF"));
        assert!(
            !text.contains("statescope_worker_queue_wait_seconds"),
            "no queue waits were reported"
        );
    }

    #[test]
    fn counters_exist_at_zero_from_creation_and_openmetrics_says_when_they_were_created() {
        let text = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::Prometheus);
        // k2 was created by a heartbeat: every normal-flow edge, outcome and
        // the unexpected counter are there at 0 before anything happened.
        let k2 = r#"kind="circuit_breaker",machine="k2",key_id="k2",provider="openai""#;
        for want in [
            format!(r#"statescope_transitions_total{{{k2},from="closed",to="open"}} 0"#),
            format!(r#"statescope_transitions_total{{{k2},from="open",to="half_open"}} 0"#),
            format!(r#"statescope_transitions_total{{{k2},from="half_open",to="closed"}} 0"#),
            format!(r#"statescope_transitions_total{{{k2},from="half_open",to="open"}} 0"#),
            format!(r#"statescope_breaker_calls_total{{{k2},outcome="success"}} 0"#),
            r#"statescope_unexpected_transitions_total{kind="circuit_breaker",machine="k2"} 0"#.into(),
            r#"statescope_worker_jobs_total{kind="worker",machine="w\"1",result="failed"} 0"#.into(),
            r#"circuit_breaker_trips_total{provider="openai",key_id="k2",machine="k2"} 0"#.into(),
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
        }
        // Manual moves appear when taken, not before.
        assert!(!text.contains(&format!(r#"{k2},from="open",to="closed""#)));
        assert!(!text.contains("_created"), "Prometheus text has no _created");
        let om = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::OpenMetrics);
        for want in [
            format!(r#"statescope_transitions_created{{{k2},from="closed",to="open"}} 100"#),
            r#"statescope_unexpected_transitions_created{kind="circuit_breaker",machine="k2"} 100"#.into(),
            r#"circuit_breaker_trips_created{provider="openai",key_id="k2",machine="k2"} 100"#.into(),
        ] {
            assert!(om.lines().any(|l| l == want), "missing {want}\n{om}");
        }
        // Each counter sample has its _created sample, right after it.
        let lines: Vec<&str> = om.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("statescope_transitions_total{") {
                let created = l.replacen("_total{", "_created{", 1);
                let created = created.rsplit_once(' ').unwrap().0;
                assert!(lines[i + 1].starts_with(created), "{l} then {}", lines[i + 1]);
            }
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = encode(&demo_store(), &Telemetry::default(), Compat::On, Format::OpenMetrics);
        assert!(text.contains("# TYPE statescope_transitions counter\n"));
        assert!(text.contains("# TYPE statescope_exporter_events counter\n"));
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("circuit_breaker_failure_count"));
        let off = encode(&demo_store(), &Telemetry::default(), Compat::Off, Format::OpenMetrics);
        assert!(!off.contains("circuit_breaker_state"));
    }

    #[test]
    fn values_and_labels_read_the_same_through_the_fast_paths() {
        for v in [
            0.0,
            1.0,
            7.0,
            1_234_567_890.0,
            999_999_999_999_999.0,
            1e15,
            1.5,
            -3.0,
            1.8e9 + 0.25,
            f64::NAN,
        ] {
            let mut fast = String::new();
            sample_value(&mut fast, v);
            let back: f64 = fast.parse().unwrap();
            assert!(back == v || (back.is_nan() && v.is_nan()), "{v} written as {fast}");
        }
        let mut text = String::new();
        sample_value(&mut text, 1_763_892_000.05);
        assert_eq!(text, "1763892000.050", "a timestamp in ms keeps its three decimals");
        let mut out = String::new();
        label(&mut out, "machine", "plain/key-1");
        label(&mut out, "machine", "a\\b\"c\nd");
        assert_eq!(out, r#"machine="plain/key-1"machine="a\\b\"c\nd""#);
    }

    proptest::proptest! {
        /// Every value a scraper parses is the one the store holds.
        #[test]
        fn written_values_parse_back_exactly(ms in 0u64..4_000_000_000_000, any in proptest::num::f64::ANY) {
            for v in [ms as f64 / 1000.0, ms as f64, any] {
                let mut text = String::new();
                sample_value(&mut text, v);
                let back: f64 = text.parse().unwrap();
                proptest::prop_assert!(back == v || (back.is_nan() && v.is_nan()), "{} written as {}", v, text);
            }
        }
    }

    #[test]
    fn a_body_in_pieces_is_the_body_whole() {
        // Process figures (CPU, memory) change between two encodings; the rest must not.
        let stable = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.contains("process_"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        // One registry for both: the order of its label sets is its own.
        let telemetry = Telemetry::default();
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let whole = encode(&demo_store(), &telemetry, Compat::Full, format);
            let mut pieces = Vec::new();
            encode_chunked(&demo_store(), &telemetry, Compat::Full, format, 300, &mut |p| {
                pieces.push(p)
            });
            assert!(
                pieces.len() > 5,
                "a 300-byte chunk size splits the body: {} pieces",
                pieces.len()
            );
            assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() >= 300));
            assert_eq!(stable(&pieces.concat()), stable(&whole));
        }
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Prometheus
        );
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    }

    #[test]
    fn the_accept_header_is_read_by_q_value() {
        let om = |accept: &str| Format::from_accept(Some(accept)) == Format::OpenMetrics;
        // What Prometheus 3 sends (scrape_protocols default).
        assert!(om(
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        ));
        // Prometheus 2.
        assert!(om(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(om("application/openmetrics-text"));
        assert!(om("Application/OpenMetrics-Text ; Q=0.9 , text/plain ; q=0.8"));
        assert!(om("application/*;q=0.9,text/plain;q=0.5"));
        // Equal q: the first listed.
        assert!(om("application/openmetrics-text,text/plain"));
        assert!(!om("text/plain,application/openmetrics-text"));
        // Not acceptable, or less wanted.
        assert!(!om("application/openmetrics-text;q=0,text/plain;version=0.0.4"));
        assert!(!om("application/openmetrics-text;q=0"));
        assert!(!om("application/openmetrics-text;q=0.000"));
        assert!(!om(
            "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1"
        ));
        // The most specific range decides: openmetrics is excluded despite */*.
        assert!(!om("*/*,application/openmetrics-text;q=0"));
        assert!(!om("*/*;q=0.9,application/*;q=0.1"));
        // curl, browsers, nothing parseable.
        assert!(!om("*/*"));
        assert!(!om("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(!om(""));
        assert!(!om("garbage"));
        assert!(!om("application/openmetrics-text;q=lots"));
    }
}
