//! The exporter's own metrics: machines kept per kind, the process's CPU,
//! memory and file descriptors, and the telemetry registry (events,
//! rejections, HTTP requests).

use statescope_model::contract as c;

use super::Snapshot;
use super::writer::{Type, Writer, labels};
use crate::telemetry::{Telemetry, process_metrics};

pub(super) fn collect(scrape: &Snapshot, telemetry: &Telemetry, out: &mut Writer<'_>) {
    out.family(
        c::EXPORTER_MACHINES,
        Type::Gauge,
        "Machines the exporter keeps, by kind",
    );
    for (kind, n) in scrape.kinds.iter().zip(&scrape.per_kind) {
        out.sample(
            c::EXPORTER_MACHINES,
            &labels([(c::LABEL_KIND, kind.name())].into_iter()),
            "",
            *n as f64,
        );
    }
    for (name, help, counter, value) in process_metrics() {
        out.family(name, if counter { Type::Counter } else { Type::Gauge }, help);
        out.unlabelled(name, value);
    }
    let mut own = String::new();
    telemetry.encode_openmetrics(&mut own);
    out.openmetrics_families(&own);
}
