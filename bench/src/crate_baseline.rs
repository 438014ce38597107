//! The second encode baseline: the prometheus-client crate, what a Rust user
//! would pick, holding exactly the series the exporter serves.
//!
//! [`registry_from_openmetrics`] reads what our encoder wrote for a fleet
//! (OpenMetrics text, the format the crate writes and Prometheus asks for)
//! and registers each family in a prometheus-client [`Registry`] the way a
//! user would: a `Family` keyed by the label set for labelled series, a plain
//! metric for an unlabelled one, integer values where every value of the
//! family is whole (the crate then formats with `itoa`, its fast path) and
//! `f64` otherwise. The bench then times the crate's `encode` of that registry
//! beside ours; [`series`] lets it check first that both bodies hold the same
//! series with the same values, so the two encoders do the same work.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// A family as the text announced it, with its samples.
#[derive(Debug, Default)]
struct FamilyText {
    name: String,
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

/// Parses OpenMetrics (or Prometheus 0.0.4) text into samples; `# ` lines are skipped.
pub fn samples(text: &str) -> Result<Vec<Sample>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| parse_sample(l).with_context(|| format!("line {}: {l:?}", n + 1)))
        .collect()
}

fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line.find(['{', ' ']).context("no value")?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(mut body) = rest.strip_prefix('{') {
        loop {
            body = body.trim_start_matches(',');
            if let Some(after) = body.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = body.split_once("=\"").context("unterminated label set")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().context("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().context("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            body = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next().context("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().with_context(|| format!("value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The series of a body as a set of `(name, sorted labels, value bits)`, to
/// compare two encoders' output whatever the order of lines and labels. A
/// bucket bound is a number however it is written (the crate writes `le="1.0"`
/// where we write `le="1"`, as Prometheus parses both).
pub fn series(text: &str) -> Result<BTreeSet<(String, Labels, u64)>> {
    samples(text)?
        .into_iter()
        .map(|mut s| {
            for (k, v) in &mut s.labels {
                if k == "le" && v != "+Inf" {
                    let bound: f64 = v.parse().with_context(|| format!("bucket bound {v:?}"))?;
                    *v = bound.to_string();
                }
            }
            s.labels.sort();
            Ok((s.name, s.labels, s.value.to_bits()))
        })
        .collect()
}

fn families(text: &str) -> Result<Vec<FamilyText>> {
    let mut out: Vec<FamilyText> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(FamilyText {
                name: name.to_owned(),
                help: help.to_owned(),
                ..FamilyText::default()
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').context("TYPE without a type")?;
            let family = out
                .last_mut()
                .filter(|f| f.name == name)
                .with_context(|| format!("line {}: TYPE {name} without its HELP", n + 1))?;
            family.kind = kind.to_owned();
        } else if !line.is_empty() && !line.starts_with('#') {
            let sample = parse_sample(line).with_context(|| format!("line {}: {line:?}", n + 1))?;
            let family = out
                .last_mut()
                .filter(|f| sample.name.starts_with(f.name.as_str()))
                .with_context(|| format!("line {}: sample {} outside its family", n + 1, sample.name))?;
            family.samples.push(sample);
        }
    }
    Ok(out)
}

/// Histograms given by their buckets: prometheus-client's `Histogram` only
/// takes observations, so a family of them is encoded through the crate's
/// own histogram encoder from the counts the exporter holds.
#[derive(Debug, Default)]
struct Histograms(Vec<(Labels, Hist)>);

#[derive(Debug, Default)]
struct Hist {
    sum: f64,
    count: u64,
    /// Upper bound and the count in that bucket alone (the encoder accumulates).
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<Labels>(h.sum, h.count, &h.buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn histograms(family: &FamilyText) -> Result<Histograms> {
    fn slot(out: &mut Vec<(Labels, Hist)>, labels: Labels) -> &mut Hist {
        let i = match out.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                out.push((labels, Hist::default()));
                out.len() - 1
            }
        };
        &mut out[i].1
    }
    let mut out = Vec::new();
    for s in &family.samples {
        let mut labels = s.labels.clone();
        match &s.name[family.name.len()..] {
            "_bucket" => {
                let le = labels
                    .iter()
                    .position(|(k, _)| k == "le")
                    .context("bucket without le")?;
                let (_, bound) = labels.remove(le);
                let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse()? };
                let h = slot(&mut out, labels);
                let below: u64 = h.buckets.iter().map(|(_, n)| n).sum();
                h.buckets.push((bound, s.value as u64 - below));
            }
            "_sum" => slot(&mut out, labels).sum = s.value,
            "_count" => slot(&mut out, labels).count = s.value as u64,
            other => bail!("{}: unexpected histogram sample suffix {other:?}", family.name),
        }
    }
    Ok(Histograms(out))
}

/// Whether a sample is a counter's `_created` timestamp. prometheus-client
/// 0.25's text encoder has no created timestamps, so the crate's registry
/// holds the counters without them (and does that much less work than ours).
pub fn is_created(name: &str) -> bool {
    name.ends_with("_created")
}

/// Registers `family` in `registry` as a prometheus-client user would.
fn register(registry: &mut Registry, mut family: FamilyText) -> Result<()> {
    if family.kind == "counter" {
        family.samples.retain(|s| !is_created(&s.name));
    }
    let whole = family.samples.iter().all(|s| s.value.fract() == 0.0);
    let unlabelled = family.samples.len() == 1 && family.samples[0].labels.is_empty();
    let (name, help) = (family.name.as_str(), family.help.as_str());
    let value = |s: &Sample| s.value;
    match family.kind.as_str() {
        "gauge" | "unknown" if unlabelled && whole => {
            let g = Gauge::<i64>::default();
            g.set(family.samples[0].value as i64);
            registry.register(name, help, g);
        }
        "gauge" | "unknown" if unlabelled => {
            let g = Gauge::<f64, AtomicU64>::default();
            g.set(family.samples[0].value);
            registry.register(name, help, g);
        }
        "gauge" if whole => {
            let f = Family::<Labels, Gauge<i64>>::default();
            for s in &family.samples {
                f.get_or_create(&s.labels).set(value(s) as i64);
            }
            registry.register(name, help, f);
        }
        "gauge" => {
            let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
            for s in &family.samples {
                f.get_or_create(&s.labels).set(value(s));
            }
            registry.register(name, help, f);
        }
        "counter" if unlabelled => {
            // Whole or not, a counter given a float: the process's CPU seconds.
            let c = Counter::<f64, AtomicU64>::default();
            c.inc_by(family.samples[0].value);
            registry.register(name, help, c);
        }
        "counter" if whole => {
            let f = Family::<Labels, Counter>::default();
            for s in &family.samples {
                f.get_or_create(&s.labels).inc_by(value(s) as u64);
            }
            registry.register(name, help, f);
        }
        "counter" => {
            let f = Family::<Labels, Counter<f64, AtomicU64>>::default();
            for s in &family.samples {
                f.get_or_create(&s.labels).inc_by(value(s));
            }
            registry.register(name, help, f);
        }
        "histogram" => registry.register(name, help, histograms(&family)?),
        other => bail!("{name}: family type {other:?} is not in the exporter's output"),
    }
    Ok(())
}

/// A prometheus-client registry holding every family (with samples) of
/// `openmetrics`, a body our encoder wrote in OpenMetrics.
pub fn registry_from_openmetrics(openmetrics: &str) -> Result<Registry> {
    let mut registry = Registry::default();
    for family in families(openmetrics)? {
        if !family.samples.is_empty() {
            register(&mut registry, family)?;
        }
    }
    Ok(registry)
}

/// The crate's text encoding of `registry` (what the timed baseline does).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP statescope_state 1 for the state
# TYPE statescope_state gauge
statescope_state{kind="circuit_breaker",machine="a/\"b\"",state="open"} 1
statescope_state{kind="circuit_breaker",machine="a/\"b\"",state="closed"} 0
# HELP statescope_state_since Unix time
# TYPE statescope_state_since gauge
statescope_state_since{machine="a"} 1800000000.25
# HELP statescope_transitions Transitions taken
# TYPE statescope_transitions counter
statescope_transitions_total{machine="a",from="closed",to="open"} 3
# HELP wait How long
# TYPE wait histogram
wait_bucket{kind="w",le="0.5"} 1
wait_bucket{kind="w",le="1"} 3
wait_bucket{kind="w",le="+Inf"} 4
wait_sum{kind="w"} 7.5
wait_count{kind="w"} 4
# HELP process_cpu_seconds CPU
# TYPE process_cpu_seconds counter
process_cpu_seconds_total 0.5
# HELP process_open_fds Open
# TYPE process_open_fds gauge
process_open_fds 12
# EOF
"#;

    #[test]
    fn the_crate_reencodes_the_same_series() {
        let registry = registry_from_openmetrics(BODY).unwrap();
        let theirs = encode(&registry);
        assert_eq!(series(&theirs).unwrap(), series(BODY).unwrap(), "{theirs}");
        assert!(theirs.contains(r#"machine="a/\"b\"""#), "escapes kept: {theirs}");
        assert!(theirs.contains("statescope_state{"), "integer gauge: {theirs}");
    }

    #[test]
    fn a_counters_created_lines_stay_with_our_encoder() {
        let ours = BODY.replace(
            "to=\"open\"} 3\n",
            "to=\"open\"} 3\nstatescope_transitions_created{machine=\"a\",from=\"closed\",to=\"open\"} 1800000000\n",
        );
        let theirs = encode(&registry_from_openmetrics(&ours).unwrap());
        assert!(!theirs.contains("_created"), "{theirs}");
        // The created timestamp is not added into the counter's value.
        assert_eq!(series(&theirs).unwrap(), series(BODY).unwrap(), "{theirs}");
    }

    #[test]
    fn series_tells_a_changed_value_or_label() {
        let base = series(BODY).unwrap();
        assert_ne!(series(&BODY.replace("} 3\n", "} 4\n")).unwrap(), base);
        assert_ne!(series(&BODY.replace("to=\"open\"", "to=\"half_open\"")).unwrap(), base);
        let reordered = BODY.replace(r#"machine="a",from="closed""#, r#"from="closed",machine="a""#);
        assert_eq!(series(&reordered).unwrap(), base, "label order does not matter");
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(samples("x{a=\"b} 1").is_err());
        assert!(samples("x{a=\"b\"}").is_err());
        assert!(families("# HELP a x\nb 1\n").is_err());
    }
}
