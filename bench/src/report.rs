//! The one table: `metric | ours | baseline | ratio | target | met?`.
//!
//! Inputs are what `bench/run.sh` collected in the same run: a JSON-lines file
//! of `{"name": ..., "data": {...}}` records (from the load generator, the
//! Python baseline, the browser measurements) and criterion's estimates under
//! `target/criterion`. A measurement recorded several times (rounds) is
//! reduced to its median. Targets come from the project's issue and are
//! checked here, never in tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::stats::median;

/// Everything one run measured.
#[derive(Default)]
pub struct Results {
    records: BTreeMap<String, Vec<Value>>,
    criterion: Option<PathBuf>,
}

impl Results {
    /// Reads the JSON-lines `file`; `criterion` is the `target/criterion` directory.
    pub fn load(file: &Path, criterion: Option<PathBuf>) -> Result<Results> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut results = Results {
            criterion,
            ..Results::default()
        };
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).with_context(|| format!("{}:{}", file.display(), n + 1))?;
            let name = v["name"]
                .as_str()
                .with_context(|| format!("{}:{}: no name", file.display(), n + 1))?;
            results
                .records
                .entry(name.to_owned())
                .or_default()
                .push(v["data"].clone());
        }
        Ok(results)
    }

    /// Adds one record (used by tests and by callers that measured in process).
    pub fn push(&mut self, name: &str, data: Value) {
        self.records.entry(name.to_owned()).or_default().push(data);
    }

    /// The median over all records named `name` of the number at JSON pointer `pointer`.
    pub fn get(&self, name: &str, pointer: &str) -> Option<f64> {
        let values: Vec<f64> = self
            .records
            .get(name)?
            .iter()
            .filter_map(|v| v.pointer(pointer)?.as_f64())
            .collect();
        median(&values)
    }

    /// Criterion's median estimate for benchmark `id` (`group/param`), in nanoseconds.
    pub fn criterion_ns(&self, id: &str) -> Option<f64> {
        let path = self.criterion.as_ref()?.join(id).join("new/estimates.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v.pointer("/median/point_estimate")?.as_f64()
    }

    /// The parameters (fleet sizes) criterion measured for `group/function`, smallest first.
    pub fn criterion_params(&self, id: &str) -> Vec<usize> {
        let Some(Ok(dir)) = self.criterion.as_ref().map(|c| std::fs::read_dir(c.join(id))) else {
            return Vec::new();
        };
        let mut params: Vec<usize> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|n| self.criterion_ns(&format!("{id}/{n}")).is_some())
            .collect();
        params.sort_unstable();
        params
    }
}

/// How a figure is shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Ms,
    EventsPerSec,
    Bytes,
    /// Decimal kilobytes, for download sizes.
    KB,
    Count,
    /// A ratio of two of our own figures (growth with size, load over idle).
    Times,
}

/// Which way is better, which also says how the ratio is taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Better {
    /// Times, sizes: ratio = baseline / ours ("N× faster/smaller").
    Lower,
    /// Rates: ratio = ours / baseline ("N× more").
    Higher,
}

/// A target from the issue, on our figure and optionally on the ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    pub limit: Option<f64>,
    pub min_ratio: Option<f64>,
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub metric: String,
    pub unit: Unit,
    pub better: Better,
    pub ours: Option<f64>,
    pub baseline: Option<f64>,
    pub target: Option<Target>,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        let (ours, base) = (self.ours?, self.baseline?);
        let r = match self.better {
            Better::Lower => base / ours,
            Better::Higher => ours / base,
        };
        r.is_finite().then_some(r)
    }

    /// `Some(true)` met, `Some(false)` missed (or not measured), `None` no target.
    pub fn met(&self) -> Option<bool> {
        let target = self.target?;
        let Some(ours) = self.ours else { return Some(false) };
        let limit_ok = target.limit.is_none_or(|l| match self.better {
            Better::Lower => ours < l,
            Better::Higher => ours >= l,
        });
        let ratio_ok = target.min_ratio.is_none_or(|m| self.ratio().is_some_and(|r| r >= m));
        Some(limit_ok && ratio_ok)
    }
}

/// The rows, in the order of the issue's targets.
pub fn rows(r: &Results) -> Vec<Row> {
    let ms = |ns: Option<f64>| ns.map(|n| n / 1e6);
    let py_ms = |name: &str| r.get(name, "/median_secs").map(|s| s * 1e3);
    let per_machine_bytes = |name: &str| {
        let delta = r.get(name, "/after_kib")? - r.get(name, "/before_kib")?;
        Some(delta * 1024.0 / r.get(name, "/machines")?)
    };
    let fleet = r
        .get("scrape.ours", "/machines")
        .or(r.get("scrape.baseline", "/machines"));
    let fleet = fleet.map_or("?".to_owned(), |n| format!("{n}"));
    let conns = r
        .get("ingest.ours", "/connections")
        .or(r.get("ingest.baseline", "/connections"))
        .map_or("?".to_owned(), |n| format!("{n}"));
    let apply_fleet = r
        .get("py_apply.100", "/machines")
        .map_or("10000".to_owned(), |n| format!("{n}"));
    let paced = r
        .get("ingest_paced.ours", "/rate")
        .map_or("?".to_owned(), |n| format_value(n, Unit::Count));
    let row = |metric: String, unit, better, ours, baseline, target| Row {
        metric,
        unit,
        better,
        ours,
        baseline,
        target,
    };
    let limit = |l| {
        Some(Target {
            limit: Some(l),
            min_ratio: None,
        })
    };
    let mut rows = vec![
        row(
            format!("/metrics at {fleet} machines: time to serve, median"),
            Unit::Ms,
            Better::Lower,
            r.get("scrape.ours", "/latency/p50_ms"),
            r.get("scrape.baseline", "/latency/p50_ms"),
            Some(Target {
                limit: Some(15.0),
                min_ratio: Some(150.0),
            }),
        ),
        row(
            format!("/metrics at {fleet} machines: time to serve, p99"),
            Unit::Ms,
            Better::Lower,
            r.get("scrape.ours", "/latency/p99_ms"),
            r.get("scrape.baseline", "/latency/p99_ms"),
            None,
        ),
        row(
            format!("/metrics at {fleet} machines: series (same fleet)"),
            Unit::Count,
            Better::Lower,
            r.get("scrape.ours", "/series"),
            r.get("scrape.baseline", "/series"),
            None,
        ),
        row(
            format!("/metrics at {fleet} machines: body size"),
            Unit::Bytes,
            Better::Lower,
            r.get("scrape.ours", "/bytes"),
            r.get("scrape.baseline", "/bytes"),
            None,
        ),
    ];
    // What serving costs without encoding: the same body, pre-encoded, through the same
    // HTTP stack and client (see `floor`). Served minus floor is what encoding adds.
    let floor = |how: &str| r.get(&format!("scrape_floor.{how}"), "/latency/p50_ms");
    rows.extend([
        row(
            format!(
                "/metrics at {fleet} machines: transfer floor, the same body pre-encoded, streamed as served, median"
            ),
            Unit::Ms,
            Better::Lower,
            floor("streamed"),
            None,
            None,
        ),
        row(
            format!("/metrics at {fleet} machines: transfer floor, the same body as one piece, median"),
            Unit::Ms,
            Better::Lower,
            floor("whole"),
            None,
            None,
        ),
        row(
            format!("/metrics at {fleet} machines: time to serve over its streamed transfer floor"),
            Unit::Times,
            Better::Lower,
            r.get("scrape.ours", "/latency/p50_ms")
                .zip(floor("streamed"))
                .map(|(served, floor)| served / floor),
            None,
            None,
        ),
    ]);
    for n in [1_000, 10_000, 100_000] {
        rows.push(row(
            format!("encode /metrics in process, {}k machines (criterion median)", n / 1000),
            Unit::Ms,
            Better::Lower,
            ms(r.criterion_ns(&format!("encode_metrics/{n}"))),
            py_ms(&format!("py_encode.{n}")),
            None,
        ));
    }
    // Linear in machines is 10x per step. The limit leaves 10% for noise and
    // still tells linear from n log n, which grows 12.5x from 10k to 100k.
    for (from, to) in [(1_000, 10_000), (10_000, 100_000)] {
        let time = |n: usize| r.criterion_ns(&format!("encode_metrics/{n}"));
        rows.push(row(
            format!(
                "encode growth {}k -> {}k machines (linear: 10×)",
                from / 1000,
                to / 1000
            ),
            Unit::Times,
            Better::Lower,
            time(to).zip(time(from)).map(|(t, f)| t / f),
            None,
            limit(11.0),
        ));
    }
    // The prometheus-client crate holding the same series; the smoke run's size, else the issue's 10k.
    let crate_size = *r.criterion_params("encode_vs_crate/ours").last().unwrap_or(&10_000);
    rows.push(row(
        format!(
            "encode {} machines in process, OpenMetrics, baseline: the prometheus-client crate on the same series",
            size_label(crate_size)
        ),
        Unit::Ms,
        Better::Lower,
        ms(r.criterion_ns(&format!("encode_vs_crate/ours/{crate_size}"))),
        ms(r.criterion_ns(&format!("encode_vs_crate/prometheus_client/{crate_size}"))),
        Some(Target {
            limit: None,
            min_ratio: Some(10.0),
        }),
    ));
    // What a scrape asking for gzip (Prometheus's default) costs over a plain one, encoded as served.
    let gzip_size = *r.criterion_params("encode_gzip/gzip").last().unwrap_or(&10_000);
    let served = |how: &str| ms(r.criterion_ns(&format!("encode_gzip/{how}/{gzip_size}")));
    rows.extend([
        row(
            format!(
                "encode {} machines as served (256 KiB pieces), identity (criterion median)",
                size_label(gzip_size)
            ),
            Unit::Ms,
            Better::Lower,
            served("identity"),
            None,
            None,
        ),
        row(
            format!(
                "encode {} machines as served, gzip level 1 (criterion median)",
                size_label(gzip_size)
            ),
            Unit::Ms,
            Better::Lower,
            served("gzip"),
            None,
            None,
        ),
        row(
            format!(
                "/metrics body at {} machines, gzip level 1 (text)",
                size_label(gzip_size)
            ),
            Unit::Bytes,
            Better::Lower,
            r.get("gzip.ours", "/gzip_bytes"),
            r.get("gzip.ours", "/identity_bytes"),
            None,
        ),
        row(
            "gzip over identity, encoding as served (time ratio)".into(),
            Unit::Times,
            Better::Lower,
            served("gzip").zip(served("identity")).map(|(g, i)| g / i),
            None,
            None,
        ),
        // The bound on a cache of each machine's encoded lines (#13): the
        // same body copied from a buffer per machine, nothing re-encoded.
        row(
            format!(
                "copy {} machines' body from a buffer per machine, as served (a line cache's best case; criterion median)",
                size_label(gzip_size)
            ),
            Unit::Ms,
            Better::Lower,
            served("copy"),
            None,
            None,
        ),
        row(
            "encoding over that copy, as served (time ratio: what a line cache could save at best)".into(),
            Unit::Times,
            Better::Lower,
            served("identity").zip(served("copy")).map(|(e, c)| e / c),
            None,
            None,
        ),
    ]);
    rows.extend([
        row(
            format!("decode and apply a batch of 100 events in process, {apply_fleet} machines (criterion median)"),
            Unit::Ms,
            Better::Lower,
            ms(r.criterion_ns("apply_events/100")),
            py_ms("py_apply.100"),
            None,
        ),
        row(
            "apply a decoded batch of 100 events (Store::apply, criterion median)".into(),
            Unit::Ms,
            Better::Lower,
            ms(r.criterion_ns("store_apply/100")),
            None,
            None,
        ),
        row(
            format!("ingest over HTTP, {conns} connections x 100 events/POST, 1 scrape/s: events/s"),
            Unit::EventsPerSec,
            Better::Higher,
            r.get("ingest.ours", "/events_per_sec"),
            r.get("ingest.baseline", "/events_per_sec"),
            limit(100_000.0),
        ),
        row(
            "ingest: POST latency p99".into(),
            Unit::Ms,
            Better::Lower,
            r.get("ingest.ours", "/post_latency/p99_ms"),
            r.get("ingest.baseline", "/post_latency/p99_ms"),
            None,
        ),
        row(
            format!("scrape p50 during ingest, {fleet} machines"),
            Unit::Ms,
            Better::Lower,
            r.get("ingest.ours", "/scrape_latency/p50_ms"),
            r.get("ingest.baseline", "/scrape_latency/p50_ms"),
            None,
        ),
        row(
            format!("scrape p99 during ingest, {fleet} machines"),
            Unit::Ms,
            Better::Lower,
            r.get("ingest.ours", "/scrape_latency/p99_ms"),
            r.get("ingest.baseline", "/scrape_latency/p99_ms"),
            limit(50.0),
        ),
        row(
            format!("ingest paced at {paced} events/s over HTTP, scraped 4/s: events/s acknowledged"),
            Unit::EventsPerSec,
            Better::Higher,
            r.get("ingest_paced.ours", "/events_per_sec"),
            None,
            None,
        ),
        row(
            format!("scrape p50 during ingest paced at {paced} events/s, {fleet} machines"),
            Unit::Ms,
            Better::Lower,
            r.get("ingest_paced.ours", "/scrape_latency/p50_ms"),
            None,
            None,
        ),
        row(
            format!("scrape p99 during ingest paced at {paced} events/s, {fleet} machines"),
            Unit::Ms,
            Better::Lower,
            r.get("ingest_paced.ours", "/scrape_latency/p99_ms"),
            None,
            limit(30.0),
        ),
        row(
            format!("scrape p99 paced at {paced} events/s over idle scrape p99, {fleet} machines"),
            Unit::Times,
            Better::Lower,
            r.get("ingest_paced.ours", "/scrape_latency/p99_ms")
                .zip(r.get("scrape.ours", "/latency/p99_ms"))
                .map(|(paced, idle)| paced / idle),
            None,
            limit(2.0),
        ),
        row(
            "resident memory per machine (RSS delta / machines)".into(),
            Unit::Bytes,
            Better::Lower,
            per_machine_bytes("rss.ours"),
            per_machine_bytes("rss.baseline"),
            limit(2048.0),
        ),
        row(
            "heap allocated per machine (counting allocator)".into(),
            Unit::Bytes,
            Better::Lower,
            r.get("alloc.ours", "/bytes_per_machine"),
            None,
            None,
        ),
    ]);
    // The sizes the browser measured (the smoke run uses a small one), else the issue's.
    let mut panel_sizes: Vec<usize> = r
        .records
        .get("panel")
        .and_then(|v| {
            v.first()?
                .get("first_render_ms")?
                .as_object()
                .map(|m| m.keys().filter_map(|k| k.parse().ok()).collect())
        })
        .unwrap_or_else(|| vec![1_000, 10_000]);
    panel_sizes.sort_unstable();
    rows.push(row(
        "panel first render ever (lazy initialisation included), Chromium".into(),
        Unit::Ms,
        Better::Lower,
        r.get("panel", "/cold_first_render_ms"),
        None,
        None,
    ));
    for n in panel_sizes {
        let size = size_label(n);
        // The issue's targets: (first render, update on refresh) in ms at 1k and 10k.
        let targets = match n {
            1_000 => Some((50.0, 16.0)),
            10_000 => Some((300.0, 150.0)),
            _ => None,
        };
        let browser = |what: &str, pointer: &str, target| {
            row(
                format!("panel {what}, {size} machines (Chromium)"),
                Unit::Ms,
                Better::Lower,
                r.get("panel", &format!("/{pointer}/{n}")),
                None,
                target,
            )
        };
        rows.extend([
            browser("first render", "first_render_ms", targets.and_then(|t| limit(t.0))),
            browser("first render to painted frame", "first_render_frame_ms", None),
            browser("update on refresh", "update_ms", targets.and_then(|t| limit(t.1))),
            browser("update on refresh to painted frame", "update_frame_ms", None),
        ]);
        // Where the time went (frames.ts's performance measures): a miss is
        // explained by the stage that holds it.
        for (which, pointer) in [("first render", "first"), ("update on refresh", "update")] {
            for (stage, what) in PANEL_STAGES {
                rows.push(row(
                    format!("panel {which}, {size} machines, stage: {what}"),
                    Unit::Ms,
                    Better::Lower,
                    r.get("panel", &format!("/stages_ms/{pointer}/{stage}/{n}")),
                    None,
                    None,
                ));
            }
        }
        for (group, what) in [
            ("decode_input", "decode input"),
            ("refresh_input", "decode a refresh slid by a step (and the step back)"),
            ("slide_input", "decode a refresh slid by a step (the slide alone)"),
            ("build_view", "build_view"),
            (
                "build_view_refresh",
                "build_view on a refresh (same descriptions, what they derive reused)",
            ),
        ] {
            rows.push(row(
                format!("panel {what} natively, {size} machines (criterion median)"),
                Unit::Ms,
                Better::Lower,
                ms(r.criterion_ns(&format!("{group}/{n}"))),
                None,
                None,
            ));
        }
    }
    rows.extend([
        row(
            "panel wasm, gzipped".into(),
            Unit::KB,
            Better::Lower,
            r.get("wasm", "/gzip_bytes"),
            None,
            limit(150_000.0),
        ),
        row(
            "panel wasm, raw".into(),
            Unit::KB,
            Better::Lower,
            r.get("wasm", "/raw_bytes"),
            None,
            None,
        ),
    ]);
    rows
}

/// The stages of a panel update, as bench/panel/measure.ts reports them.
const PANEL_STAGES: [(&str, &str); 4] = [
    ("marshal", "marshal (frames.ts builds the update)"),
    ("decode", "decode (the wasm applies it to the frames it keeps)"),
    ("view", "view (build_view, handed to Leptos)"),
    ("dom", "DOM (React, Leptos patching, style and layout)"),
];

/// `1k`, `10k`, or the number when it is not whole thousands.
fn size_label(n: usize) -> String {
    if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Formats a figure with three significant digits and its unit.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms if v < 1.0 => format!("{} µs", sig3(v * 1e3)),
        Unit::Ms => format!("{} ms", sig3(v)),
        Unit::EventsPerSec => format!("{} /s", thousands(v.round())),
        Unit::Bytes if v < 1024.0 => format!("{} B", sig3(v)),
        Unit::Bytes if v < 1024.0 * 1024.0 => format!("{} KiB", sig3(v / 1024.0)),
        Unit::Bytes => format!("{} MiB", sig3(v / 1024.0 / 1024.0)),
        Unit::KB => format!("{} kB", sig3(v / 1000.0)),
        Unit::Count => thousands(v.round()),
        Unit::Times => format!("{}×", sig3(v)),
    }
}

fn sig3(v: f64) -> String {
    if v >= 1000.0 {
        thousands(v.round())
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

fn format_target(row: &Row) -> String {
    let Some(t) = row.target else { return "—".into() };
    let cmp = if row.better == Better::Lower { "<" } else { "≥" };
    let mut parts = Vec::new();
    if let Some(l) = t.limit {
        parts.push(format!("{cmp} {}", format_value(l, row.unit)));
    }
    if let Some(m) = t.min_ratio {
        parts.push(format!("≥ {m:.0}× baseline"));
    }
    parts.join(", ")
}

/// The table in Markdown, with a header saying where and when it ran.
pub fn markdown(rows: &[Row], heading: &str) -> String {
    let mut out = String::new();
    writeln!(out, "{heading}\n").unwrap();
    writeln!(out, "| metric | ours | baseline | ratio | target | met? |").unwrap();
    writeln!(out, "| --- | ---: | ---: | ---: | --- | --- |").unwrap();
    for row in rows {
        let value = |v: Option<f64>| v.map_or("—".into(), |v| format_value(v, row.unit));
        let ratio = row.ratio().map_or("—".into(), |r| {
            let word = match (row.better, row.unit) {
                (Better::Higher, _) => "more",
                (_, Unit::Ms) => "faster",
                (_, Unit::Count) => "fewer",
                _ => "less",
            };
            format!("{}× {word}", sig3(r))
        });
        let met = match (row.met(), row.ours) {
            (None, _) => "—",
            (Some(true), _) => "yes",
            (Some(false), None) => "NOT MEASURED",
            (Some(false), Some(_)) => "**NO**",
        };
        let (ours, base, target) = (value(row.ours), value(row.baseline), format_target(row));
        writeln!(out, "| {} | {ours} | {base} | {ratio} | {target} | {met} |", row.metric).unwrap();
    }
    out
}

/// nproc, CPU model and memory of this machine, from /proc.
pub fn machine_description() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    format!("{nproc} CPUs ({cpu}), {:.1} GiB memory", mem_kib / 1024.0 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn results() -> Results {
        let mut r = Results::default();
        r.push(
            "scrape.ours",
            json!({"machines": 10000, "latency": {"p50_ms": 4.0, "p99_ms": 9.0}, "series": 80000}),
        );
        r.push(
            "scrape.baseline",
            json!({"machines": 10000, "latency": {"p50_ms": 1600.0, "p99_ms": 1700.0}}),
        );
        for eps in [90_000.0, 120_000.0, 130_000.0] {
            r.push(
                "ingest.ours",
                json!({"connections": 16, "events_per_sec": eps, "scrape_latency": {"p99_ms": 70.0}}),
            );
        }
        r.push("ingest.baseline", json!({"events_per_sec": 6000.0}));
        r.push(
            "rss.ours",
            json!({"machines": 1000, "before_kib": 10000, "after_kib": 13000}),
        );
        r
    }

    fn find<'a>(rows: &'a [Row], prefix: &str) -> &'a Row {
        rows.iter().find(|r| r.metric.starts_with(prefix)).unwrap()
    }

    #[test]
    fn scrape_row_needs_both_the_limit_and_the_ratio() {
        let rows = rows(&results());
        let scrape = find(&rows, "/metrics at 10000 machines: time to serve, median");
        assert_eq!(scrape.ratio(), Some(400.0));
        assert_eq!(scrape.met(), Some(true));
        let mut slow = scrape.clone();
        slow.baseline = Some(200.0);
        assert_eq!(slow.met(), Some(false), "50x faster misses the 150x target");
        slow.baseline = Some(560.0);
        assert_eq!(
            slow.met(),
            Some(false),
            "140x faster misses the 150x target of issue 13"
        );
    }

    #[test]
    fn rounds_reduce_to_their_median_and_targets_are_checked() {
        let rows = rows(&results());
        let ingest = find(&rows, "ingest over HTTP, 16 connections");
        assert_eq!(ingest.ours, Some(120_000.0));
        assert_eq!(ingest.ratio(), Some(20.0));
        assert_eq!(ingest.met(), Some(true));
        assert_eq!(
            find(&rows, "scrape p99 during ingest").met(),
            Some(false),
            "70 ms misses < 50 ms"
        );
        let rss = find(&rows, "resident memory per machine");
        assert_eq!(rss.ours, Some(3072.0));
        assert_eq!(rss.met(), Some(false));
        assert_eq!(
            find(&rows, "panel wasm, gzipped").met(),
            Some(false),
            "a target not measured is not met"
        );
    }

    #[test]
    fn table_shows_units_ratios_and_verdicts() {
        let table = markdown(&rows(&results()), "## x");
        assert!(table.contains("| /metrics at 10000 machines: time to serve, median | 4.00 ms | 1,600 ms | 400× faster | < 15.0 ms, ≥ 150× baseline | yes |"), "{table}");
        assert!(
            table.contains("| 120,000 /s | 6,000 /s | 20.0× more | ≥ 100,000 /s | yes |"),
            "{table}"
        );
        assert!(
            table.contains("| panel wasm, gzipped | — | — | — | < 150 kB | NOT MEASURED |"),
            "{table}"
        );
        assert!(table.contains("**NO**"));
    }

    #[test]
    fn panel_rows_follow_the_sizes_the_browser_measured() {
        let mut r = results();
        r.push(
            "panel",
            json!({"first_render_ms": {"100": 12.5}, "update_ms": {"100": 3.0}}),
        );
        let table = markdown(&rows(&r), "");
        assert!(
            table.contains("| panel first render, 100 machines (Chromium) | 12.5 ms | — | — | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| panel update on refresh, 100 machines (Chromium) | 3.00 ms |"),
            "{table}"
        );
        assert!(!table.contains("1k machines (Chromium)"));
    }

    #[test]
    fn panel_stages_are_rows_that_explain_a_miss() {
        let mut r = results();
        r.push(
            "panel",
            json!({"first_render_ms": {"1000": 60.0}, "update_ms": {"1000": 20.0},
                   "stages_ms": {"update": {"marshal": {"1000": 2.5}, "decode": {"1000": 1.0},
                                            "view": {"1000": 12.0}, "dom": {"1000": 4.5}}}}),
        );
        let rows = rows(&r);
        assert_eq!(
            find(&rows, "panel update on refresh, 1k machines (Chromium)").met(),
            Some(false)
        );
        let stage = |s: &str| find(&rows, &format!("panel update on refresh, 1k machines, stage: {s}")).ours;
        assert_eq!(
            (stage("marshal"), stage("decode"), stage("view"), stage("DOM")),
            (Some(2.5), Some(1.0), Some(12.0), Some(4.5))
        );
        let table = markdown(&rows, "");
        assert!(
            table.contains(
                "| panel update on refresh, 1k machines, stage: view (build_view, handed to Leptos) | 12.0 ms |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| panel first render, 1k machines, stage: marshal (frames.ts builds the update) | — |"),
            "a stage not measured shows as such: {table}"
        );
    }

    /// A criterion output directory holding `(id, median ns)` estimates.
    fn criterion_dir(name: &str, estimates: &[(&str, f64)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("statescope-report-{name}-{}", std::process::id()));
        for (id, ns) in estimates {
            let d = dir.join(id).join("new");
            std::fs::create_dir_all(&d).unwrap();
            let v = json!({"median": {"point_estimate": ns}});
            std::fs::write(d.join("estimates.json"), v.to_string()).unwrap();
        }
        dir
    }

    #[test]
    fn encode_growth_and_the_crate_baseline() {
        let dir = criterion_dir(
            "encode",
            &[
                ("encode_metrics/1000", 2e6),
                ("encode_metrics/10000", 21e6),
                ("encode_metrics/100000", 280e6),
                ("encode_vs_crate/ours/10000", 20e6),
                ("encode_vs_crate/prometheus_client/10000", 150e6),
                ("encode_gzip/identity/10000", 10e6),
                ("encode_gzip/gzip/10000", 35e6),
                ("encode_gzip/copy/10000", 4e6),
            ],
        );
        let mut r = results();
        r.criterion = Some(dir.clone());
        let rows = rows(&r);
        let linear = find(&rows, "encode growth 1k -> 10k");
        assert_eq!((linear.ours, linear.met()), (Some(10.5), Some(true)));
        let superlinear = find(&rows, "encode growth 10k -> 100k");
        assert!((superlinear.ours.unwrap() - 13.33).abs() < 0.01);
        assert_eq!(superlinear.met(), Some(false), "n log n and worse is not linear");
        let krate = find(
            &rows,
            "encode 10k machines in process, OpenMetrics, baseline: the prometheus-client crate",
        );
        assert_eq!(krate.ratio(), Some(7.5));
        assert_eq!(krate.met(), Some(false), "7.5x misses the 10x target");
        r.push(
            "gzip.ours",
            json!({"machines": 10000, "identity_bytes": 2e7, "gzip_bytes": 1e6}),
        );
        let rows = super::rows(&r);
        assert_eq!(find(&rows, "/metrics body at 10k machines, gzip").ratio(), Some(20.0));
        let gzip = find(&rows, "gzip over identity");
        assert!((gzip.ours.unwrap() - 3.5).abs() < 1e-9);
        assert_eq!(find(&rows, "encode 10k machines as served, gzip").ours, Some(35.0));
        assert_eq!(
            find(&rows, "copy 10k machines' body from a buffer per machine").ours,
            Some(4.0)
        );
        assert_eq!(find(&rows, "encoding over that copy").ours, Some(2.5));
        let table = markdown(&rows, "");
        assert!(table.contains("| 10.5× | — | — | < 11.0× | yes |"), "{table}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_transfer_floor_beside_the_time_to_serve() {
        let mut r = results();
        r.push("scrape_floor.streamed", json!({"latency": {"p50_ms": 2.5}}));
        r.push("scrape_floor.whole", json!({"latency": {"p50_ms": 2.0}}));
        let rows = rows(&r);
        let streamed = find(
            &rows,
            "/metrics at 10000 machines: transfer floor, the same body pre-encoded, streamed",
        );
        assert_eq!(streamed.ours, Some(2.5));
        assert_eq!(
            find(
                &rows,
                "/metrics at 10000 machines: transfer floor, the same body as one piece"
            )
            .ours,
            Some(2.0)
        );
        assert_eq!(
            find(&rows, "/metrics at 10000 machines: time to serve over its streamed").ours,
            Some(1.6)
        );
    }

    #[test]
    fn paced_scrape_against_the_idle_one() {
        let mut r = results();
        r.push(
            "ingest_paced.ours",
            json!({"rate": 100000, "scrape_latency": {"p99_ms": 25.0}}),
        );
        let rows = rows(&r);
        let paced = find(&rows, "scrape p99 during ingest paced");
        assert_eq!(paced.met(), Some(true), "25 ms is under 30 ms");
        let over_idle = find(&rows, "scrape p99 paced at 100,000 events/s over idle scrape p99");
        assert!((over_idle.ours.unwrap() - 25.0 / 9.0).abs() < 1e-9);
        assert_eq!(over_idle.met(), Some(false), "2.8x the idle scrape misses 2x");
    }

    #[test]
    fn panel_targets_of_issue_13_at_1k_and_10k() {
        let mut r = results();
        r.push(
            "panel",
            json!({"first_render_ms": {"1000": 60.0, "10000": 250.0}, "update_ms": {"1000": 12.0, "10000": 160.0}}),
        );
        let rows = rows(&r);
        assert_eq!(
            find(&rows, "panel first render, 1k").met(),
            Some(false),
            "60 ms misses 50 ms"
        );
        assert_eq!(find(&rows, "panel update on refresh, 1k").met(), Some(true));
        assert_eq!(
            find(&rows, "panel first render, 10k").met(),
            Some(true),
            "250 ms is under 300 ms"
        );
        assert_eq!(
            find(&rows, "panel update on refresh, 10k").met(),
            Some(false),
            "160 ms misses 150 ms"
        );
    }

    #[test]
    fn number_formatting() {
        assert_eq!(format_value(0.0123, Unit::Ms), "12.3 µs");
        assert_eq!(format_value(1234567.0, Unit::EventsPerSec), "1,234,567 /s");
        assert_eq!(format_value(1536.0, Unit::Bytes), "1.50 KiB");
        assert_eq!(format_value(999.0, Unit::Count), "999");
    }
}
