//! The exporter's own metrics: machines kept per kind, the process's CPU,
//! memory and file descriptors, and the telemetry registry (events,
//! rejections, HTTP requests).

use statescope_model::contract as c;

use super::Scrape;
use super::writer::{Type, Writer, labels};
use crate::telemetry::process_metrics;

pub(super) fn collect(scrape: &Scrape<'_>, out: &mut Writer<'_>) {
    out.family(
        c::EXPORTER_MACHINES,
        Type::Gauge,
        "Machines the exporter keeps, by kind",
    );
    for kind in scrape.store.catalog().all() {
        let n = scrape.machines.iter().filter(|row| row.key.kind == kind.name()).count();
        out.sample(
            c::EXPORTER_MACHINES,
            &labels([(c::LABEL_KIND, kind.name())].into_iter()),
            "",
            n as f64,
        );
    }
    for (name, help, counter, value) in process_metrics() {
        out.family(name, if counter { Type::Counter } else { Type::Gauge }, help);
        out.unlabelled(name, value);
    }
    let mut own = String::new();
    scrape.telemetry.encode_openmetrics(&mut own);
    out.openmetrics_families(&own);
}
