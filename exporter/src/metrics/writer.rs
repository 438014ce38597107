//! The one place that knows the two text formats: family headers, sample
//! lines, counters' `_created` samples (OpenMetrics), histograms and values.
//! Label escaping is the store's (`store::push_label`): a machine's labels are
//! rendered once, when it is created. Collectors say what to write; this says how.

use std::fmt::Write as _;

use statescope_model::contract as c;

use super::Format;
use crate::store::{Histogram, JOB_BUCKETS, push_label};
use crate::telemetry::fmt_value;

/// A family's metric type, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Gauge,
    Counter,
    Histogram,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Gauge => "gauge",
            Type::Counter => "counter",
            Type::Histogram => "histogram",
        }
    }
}

/// Writes a body family by family, handing it on in pieces of about `chunk` bytes.
pub struct Writer<'e> {
    s: String,
    om: bool,
    /// Where the current family's header starts, and whether it has samples.
    family_start: usize,
    family_samples: usize,
    /// Hand `s` to `emit` once it holds this many bytes.
    chunk: usize,
    /// The current counter family's `_created` sample name (OpenMetrics).
    created_name: String,
    /// The current family is a counter.
    counter: bool,
    /// The current group's `name{labels` (see [`Writer::group`]), and for a
    /// counter in OpenMetrics its `_created` sample's.
    prefix: String,
    created_prefix: String,
    /// The current group has no labels: a tail's leading comma is dropped.
    bare: bool,
    /// The last `_created` value written, and its text.
    created_bits: Option<u64>,
    created_text: String,
    emit: &'e mut Emit<'e>,
}

/// Takes a piece of the body and gives back the buffer to write the next
/// one into: the piece's own once it is done with it, one it keeps for
/// reuse, or `String::new()` (the writer empties it and sizes it to a
/// piece). Reusing buffers spares a fresh piece-sized allocation per piece:
/// in a server, the page faults of touching new memory, and freeing large
/// blocks on another thread than the one that allocated them.
pub type Emit<'e> = dyn FnMut(String) -> String + 'e;

impl<'e> Writer<'e> {
    /// `capacity`: about the size of the body, so it is not grown by doubling.
    pub fn new(format: Format, chunk: usize, capacity: usize, emit: &'e mut Emit<'e>) -> Writer<'e> {
        Writer {
            s: String::with_capacity(capacity.min(chunk.saturating_add(4096))),
            om: format == Format::OpenMetrics,
            family_start: 0,
            family_samples: 0,
            chunk,
            created_name: String::new(),
            counter: false,
            prefix: String::new(),
            created_prefix: String::new(),
            bare: false,
            created_bits: None,
            created_text: String::new(),
            emit,
        }
    }

    /// Passes on what is written so far. Only called once the current family
    /// has a sample, so its header is never one `end_family` must take back.
    fn flush(&mut self) {
        let full = std::mem::take(&mut self.s);
        self.s = (self.emit)(full);
        self.s.clear();
        self.s.reserve(self.chunk.saturating_add(4096));
        self.family_start = 0;
    }

    /// Starts a family; its header is dropped again if it gets no samples.
    pub fn family(&mut self, name: &str, ty: Type, help: &str) {
        self.end_family();
        self.family_start = self.s.len();
        let family = if self.om && ty == Type::Counter {
            name.strip_suffix("_total").unwrap_or(name)
        } else {
            name
        };
        let _ = writeln!(self.s, "# HELP {family} {help}\n# TYPE {family} {}", ty.as_str());
        self.counter = ty == Type::Counter;
        if self.counter {
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

    /// One sample: `labels` is pre-rendered (`a="x",b="y"`), `extra` too
    /// (`,c="z"`, see [`extra`]: rendered once per scrape, not per sample).
    pub fn sample(&mut self, name: &str, labels: &str, extra: &str, value: f64) {
        self.series(name, labels, extra);
        sample_value(&mut self.s, value);
        self.end_sample();
    }

    /// A sample whose value is a count: written without going through f64.
    fn count(&mut self, name: &str, labels: &str, extra: &str, value: u64) {
        self.series(name, labels, extra);
        push_count(&mut self.s, value);
        self.end_sample();
    }

    /// Starts a group of samples of the current family that share `name{labels`
    /// (a machine's lines in a family): that text is put together once, and
    /// each sample then copies it whole and adds its [`tail`] and value,
    /// instead of putting name, braces and labels together line by line.
    pub fn group(&mut self, name: &str, labels: &str) {
        self.prefix.clear();
        self.prefix.push_str(name);
        self.prefix.push('{');
        self.prefix.push_str(labels);
        self.bare = labels.is_empty();
        if self.om && self.counter {
            self.created_prefix.clear();
            self.created_prefix.push_str(&self.created_name);
            self.created_prefix.push('{');
            self.created_prefix.push_str(labels);
        }
    }

    /// Appends a tail (`,c="z"} `) after a group's prefix.
    fn push_tail(&mut self, tail: &str) {
        self.s.push_str(if self.bare {
            tail.strip_prefix(',').unwrap_or(tail)
        } else {
            tail
        });
    }

    /// A sample of the current group whose value is a count.
    pub fn group_count(&mut self, tail: &str, value: u64) {
        self.s.push_str(&self.prefix);
        self.push_tail(tail);
        push_count(&mut self.s, value);
        self.end_sample();
    }

    /// A counter's sample in the current group, as [`Writer::counter`] writes it.
    pub fn group_counter(&mut self, tail: &str, value: u64, created: f64) {
        self.group_count(tail, value);
        if self.om {
            self.set_created(created);
            self.s.push_str(&self.created_prefix);
            self.push_tail(tail);
            self.s.push_str(&self.created_text);
            self.end_sample();
        }
    }

    /// A machine's counters share its creation time: formatted once, copied for the next.
    fn set_created(&mut self, created: f64) {
        if self.created_bits != Some(created.to_bits()) {
            self.created_text.clear();
            sample_value(&mut self.created_text, created);
            self.created_bits = Some(created.to_bits());
        }
    }

    /// `name{labels,extra} `: a sample up to its value.
    fn series(&mut self, name: &str, labels: &str, extra: &str) {
        self.s.push_str(name);
        self.s.push('{');
        self.s.push_str(labels);
        self.s.push_str(if labels.is_empty() {
            extra.strip_prefix(',').unwrap_or(extra)
        } else {
            extra
        });
        self.s.push_str("} ");
    }

    fn end_sample(&mut self) {
        self.s.push('\n');
        self.family_samples += 1;
        if self.s.len() >= self.chunk {
            self.flush();
        }
    }

    /// A sample without labels (`name value`), its value as Prometheus text writes floats.
    pub fn unlabelled(&mut self, name: &str, value: f64) {
        self.s.push_str(name);
        self.s.push(' ');
        fmt_value(&mut self.s, value);
        self.s.push('\n');
        self.family_samples += 1;
    }

    /// A machine counter's sample, and in OpenMetrics its `_created` sample:
    /// the time its machine was created, when the counter was 0 (see
    /// `contract::COUNTERS_FROM_CREATION`).
    ///
    /// `name` is the current family's (see [`Writer::family`]).
    pub fn counter(&mut self, name: &str, labels: &str, extra: &str, value: u64, created: f64) {
        self.count(name, labels, extra, value);
        if self.om {
            self.set_created(created);
            // Taken out and put back: one name per family, not an allocation per sample.
            let created_name = std::mem::take(&mut self.created_name);
            self.series(&created_name, labels, extra);
            self.s.push_str(&self.created_text);
            self.end_sample();
            self.created_name = created_name;
        }
    }

    pub fn histogram(&mut self, name: &str, labels: &str, h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, bound) in JOB_BUCKETS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            self.sample(
                &bucket,
                labels,
                &extra(&[("le", &bound.to_string())]),
                cumulative as f64,
            );
        }
        self.sample(&bucket, labels, &extra(&[("le", "+Inf")]), h.count as f64);
        self.sample(&format!("{name}_sum"), labels, "", h.sum);
        self.sample(&format!("{name}_count"), labels, "", h.count as f64);
    }

    /// Families another encoder wrote in OpenMetrics (the exporter's own
    /// prometheus-client registry, without `# EOF`), in this body's format.
    pub fn openmetrics_families(&mut self, openmetrics: &str) {
        self.end_family();
        if self.om {
            self.s.push_str(openmetrics);
        } else {
            to_prometheus_text(openmetrics, &mut self.s);
        }
        self.family_start = self.s.len();
    }

    /// Ends the body (OpenMetrics with `# EOF`) and hands on the rest.
    pub fn finish(mut self) {
        self.end_family();
        if self.om {
            self.s.push_str("# EOF\n");
        }
        (self.emit)(std::mem::take(&mut self.s));
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

/// Appends a sample's value. Most machine series are counters and one-hot
/// gauges, whole numbers: written without going through `fmt`, which takes
/// a fair share of a 10k-machine scrape's time (one value per line).
fn sample_value(out: &mut String, v: f64) {
    if v.fract() == 0.0 && (0.0..WHOLE_LIMIT as f64).contains(&v) {
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

/// Whole values below this are written as digits; from it on as `fmt` writes
/// floats (`1e15`), which the bodies have always done.
const WHOLE_LIMIT: u64 = 1_000_000_000_000_000;

/// Appends a count: as digits, or from [`WHOLE_LIMIT`] on as its f64 is written.
fn push_count(out: &mut String, value: u64) {
    if value < WHOLE_LIMIT {
        push_digits(out, value);
    } else {
        sample_value(out, value as f64);
    }
}

fn push_digits(out: &mut String, mut n: u64) {
    // Most machine samples are 0 or 1 (one-hot states, counters not yet incremented).
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
        return;
    }
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

/// `,a="x",b="y"`: labels that follow a sample's own, rendered once for
/// every sample that shares them.
pub fn extra(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        s.push(',');
        push_label(&mut s, k, v);
    }
    s
}

/// `,a="x",b="y"} `: what follows a [`Writer::group`]'s prefix up to the
/// value, rendered once for every sample that shares it.
pub fn tail(pairs: &[(&str, &str)]) -> String {
    let mut s = extra(pairs);
    s.push_str("} ");
    s
}

/// `a="x",b="y"`, escaped, rendered once for the samples that share it.
/// Sized up front: with one label set per machine per scrape, growth showed
/// in profiles.
pub fn labels<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)> + Clone) -> String {
    let mut s = String::with_capacity(pairs.clone().map(|(k, v)| k.len() + v.len() + 8).sum());
    push_labels(&mut s, pairs);
    s
}

/// Appends `a="x",b="y"`, escaped.
pub fn push_labels<'p>(out: &mut String, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) {
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_label(out, k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        push_label(&mut out, "machine", "plain/key-1");
        push_label(&mut out, "machine", "a\\b\"c\nd");
        assert_eq!(out, r#"machine="plain/key-1"machine="a\\b\"c\nd""#);
    }

    /// What `counter` writes for `n` created at `created`, in OpenMetrics.
    fn counter_text(n: u64, created: f64) -> String {
        let mut body = String::new();
        let mut emit = |p: String| {
            body.push_str(&p);
            p
        };
        let mut w = Writer::new(Format::OpenMetrics, usize::MAX, 0, &mut emit);
        w.family("c_total", Type::Counter, "h");
        w.counter("c_total", "a=\"1\"", "", n, created);
        w.finish();
        body
    }

    proptest::proptest! {
        /// Counts and creation times are written as the f64 path writes them,
        /// the first of a run of equal creation times as the later ones.
        #[test]
        fn counters_read_as_their_values_as_floats(n in proptest::num::u64::ANY, small in 0u64..2_000_000_000_000_000, ms in 0u64..4_000_000_000_000) {
            let created = ms as f64 / 1000.0;
            for n in [n, small] {
                let mut want = String::new();
                sample_value(&mut want, n as f64);
                let mut created_text = String::new();
                sample_value(&mut created_text, created);
                let body = counter_text(n, created);
                let lines: Vec<&str> = body.lines().collect();
                proptest::prop_assert_eq!(lines[2], format!("c_total{{a=\"1\"}} {want}"));
                proptest::prop_assert_eq!(lines[3], format!("c_created{{a=\"1\"}} {created_text}"));
            }
        }

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
}
