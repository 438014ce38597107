//! The push API's event schema, generated from the exporter's own event types
//! (`statescope_exporter::events::Event`) plus the limits the exporter checks,
//! and committed as `clients/event.schema.json` for clients in other languages
//! (the Python client's tests validate every event they send against it).

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../event.schema.json")
}

/// The schema of `Event` as serde writes it, with what the exporter checks
/// in code added from the same constants: lengths, the identity label names,
/// the range of job times, and no fields beyond the event type's.
fn generate() -> String {
    use serde_json::{Value, json};
    use statescope_exporter::events::{MAX_EVENT_ID_LEN, MAX_JOB_SECONDS, MAX_LABEL_VALUE_LEN, MAX_MACHINE_LEN};
    use statescope_model::contract::{DEFAULT_IDENTITY_LABELS, MAX_IDENTITY_LABELS};

    let mut v = serde_json::to_value(schemars::schema_for!(statescope_exporter::events::Event)).unwrap();
    v["title"] = json!("Statescope event");
    v["description"] = json!(
        "One event of POST /api/v1/events (the body is one event or {\"events\": [...]}, at most 1000). \
         Generated from the exporter's event types by clients/rust/tests/schema.rs; do not edit."
    );
    let props = &mut v["properties"];
    props["machine"]["minLength"] = json!(1);
    props["machine"]["maxLength"] = json!(MAX_MACHINE_LEN);
    props["id"]["minLength"] = json!(1);
    props["id"]["maxLength"] = json!(MAX_EVENT_ID_LEN);
    // The names are the exporter's identity labels: configurable
    // (`identity_labels`), so the schema holds what every config shares.
    props["labels"]["description"] = json!(format!(
        "Identity labels: the exporter config's `identity_labels` (default {}), at most {MAX_IDENTITY_LABELS}",
        DEFAULT_IDENTITY_LABELS.join(", ")
    ));
    props["labels"]["propertyNames"] = json!({ "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$" });
    props["labels"]["maxProperties"] = json!(MAX_IDENTITY_LABELS);
    props["labels"]["additionalProperties"] =
        json!({ "type": "string", "minLength": 1, "maxLength": MAX_LABEL_VALUE_LEN });
    let variants = v["oneOf"]
        .as_array_mut()
        .expect("Event's action is a oneOf of event types");
    for variant in variants {
        for field in ["duration_seconds", "queue_seconds"] {
            if let Some(f) = variant["properties"].get_mut(field) {
                f["minimum"] = json!(0);
                f["maximum"] = json!(MAX_JOB_SECONDS);
            }
        }
    }
    // The exporter refuses unknown fields and fields of another event type.
    v["unevaluatedProperties"] = Value::Bool(false);
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

#[test]
fn the_committed_event_schema_is_current() {
    let want = generate();
    if std::env::var_os("STATESCOPE_BLESS").is_some() {
        std::fs::write(committed(), &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        have == want,
        "clients/event.schema.json differs from the exporter's event types; regenerate it with \
         `STATESCOPE_BLESS=1 cargo test -p statescope-client --test schema` and review the diff"
    );
}
