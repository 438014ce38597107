//! Builders for Grafana-shaped test input: frames as Grafana's Prometheus
//! datasource hands them to a panel (see `@grafana/prometheus`'s
//! result_transformer and the backend's dataplane "timeseries-multi" frames):
//! one frame per series, a `Time` field with the query step in
//! `config.interval`, and a `Value` field carrying the series labels
//! (including `__name__`).
#![allow(dead_code)]

pub mod scrape;

use serde_json::{Value, json};
use statescope_panel::{PanelInput, PanelView, build_view};

pub const STEP: f64 = 15_000.0;
/// 2023-11-14T22:13:20Z, a round epoch in ms.
pub const T0: f64 = 1_700_000_000_000.0;

/// `n` sample times, one step apart from `T0`.
pub fn times(n: usize) -> Vec<f64> {
    (0..n).map(|i| T0 + i as f64 * STEP).collect()
}

/// One Prometheus range-query frame.
pub fn prom_frame(ref_id: &str, labels: &[(&str, &str)], times: &[f64], values: Vec<Value>) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| ((*k).into(), json!(v))).collect();
    json!({
        "refId": ref_id,
        "meta": {"type": "timeseries-multi", "typeVersion": [0, 1], "executedQueryString": "Expr: ...\nStep: 15s"},
        "fields": [
            {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"},
             "config": {"interval": STEP}, "values": times},
            {"name": "Value", "type": "number", "typeInfo": {"frame": "float64"}, "labels": labels,
             "config": {"displayNameFromDS": ""}, "values": values}
        ],
        "length": times.len()
    })
}

/// `statescope_state` one-hot frames for one machine following `states` (one per sample).
pub fn statescope_machine(kind: &str, machine: &str, all_states: &[&str], states: &[&str]) -> Vec<Value> {
    let t = times(states.len());
    all_states
        .iter()
        .map(|s| {
            let values = states.iter().map(|x| json!(if x == s { 1 } else { 0 })).collect();
            prom_frame(
                "A",
                &[
                    ("__name__", "statescope_state"),
                    ("instance", "exporter:9733"),
                    ("job", "statescope"),
                    ("kind", kind),
                    ("machine", machine),
                    ("state", s),
                ],
                &t,
                values,
            )
        })
        .collect()
}

/// Envoy's circuit-breaker gauge for one cluster: 1 while that breaker is
/// open, one sample per step from `T0`.
pub fn envoy_open_gauge(cluster: &str, values: &[u8]) -> Value {
    prom_frame(
        "A",
        &[
            ("__name__", "envoy_cluster_circuit_breakers_default_rq_open"),
            ("envoy_cluster_name", cluster),
            ("instance", "envoy:9901"),
            ("job", "envoy"),
        ],
        &times(values.len()),
        values.iter().map(|v| json!(v)).collect(),
    )
}

pub const BREAKER: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];

/// A panel input over the range covering `samples` steps from `T0`.
pub fn input(frames: Vec<Value>, options: Value, samples: usize) -> Value {
    let to = T0 + (samples.max(1) - 1) as f64 * STEP;
    json!({
        "frames": frames,
        "options": options,
        "timeRange": {"from": T0, "to": to},
        "width": 800, "height": 600,
        "theme": {"isDark": true, "palette": {"green": "#73BF69", "red": "#F2495C", "orange": "#FF9830",
                   "text": "#CCCCDC", "ok": "#73BF69", "critical": "#F2495C"}},
        "now": to
    })
}

pub fn view(input: &Value) -> PanelView {
    try_view(input).unwrap_or_else(|e| panic!("build_view failed: {e}"))
}

pub fn try_view(input: &Value) -> Result<PanelView, String> {
    let input = PanelInput::from_json(&input.to_string())?;
    build_view(&input).map_err(|e| e.to_string())
}

pub fn machine<'a>(view: &'a PanelView, id: &str) -> &'a statescope_panel::view::MachineView {
    view.machines.iter().find(|m| &*m.id == id).unwrap_or_else(|| {
        panic!(
            "no machine {id}; have {:?}",
            view.machines.iter().map(|m| &m.id).collect::<Vec<_>>()
        )
    })
}
