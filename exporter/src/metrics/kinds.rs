//! Each kind's graph and severities, so the panel can draw a custom kind's
//! diagram from the data alone.

use statescope_model::contract as c;

use super::Snapshot;
use super::writer::{Type, Writer, labels};
use crate::telemetry::Telemetry;

pub(super) fn collect(scrape: &Snapshot, _: &Telemetry, out: &mut Writer<'_>) {
    let kinds = &scrape.kinds;
    out.family(
        c::TRANSITION_ALLOWED,
        Type::Gauge,
        "1 for each transition a kind allows; flow is normal (its own) or manual (forced by someone)",
    );
    for kind in kinds {
        for (from, to, flow) in kind.edges() {
            let l = labels(
                [
                    (c::LABEL_KIND, kind.name()),
                    (c::LABEL_FROM, kind.state_name(from)),
                    (c::LABEL_TO, kind.state_name(to)),
                    (c::LABEL_FLOW, flow.as_str()),
                ]
                .into_iter(),
            );
            out.sample(c::TRANSITION_ALLOWED, &l, "", 1.0);
        }
    }
    out.family(
        c::STATE_SEVERITY,
        Type::Gauge,
        "Severity of each state: 0 ok, 1 info, 2 warning, 3 critical",
    );
    for kind in kinds {
        for id in kind.state_ids() {
            let l = labels([(c::LABEL_KIND, kind.name()), (c::LABEL_STATE, kind.state_name(id))].into_iter());
            out.sample(c::STATE_SEVERITY, &l, "", f64::from(kind.severity(id).level()));
        }
    }
}
