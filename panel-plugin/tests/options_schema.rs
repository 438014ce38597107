//! The panel's options as `src/options.rs` defines them, committed as
//! `src/panel/options.schema.json` for what is not Rust: the options editor
//! (`src/panel/options.ts`), the dashboards generator
//! (`provisioning/grafana/generate.py`, which checks every Statescope panel's
//! options against it) and `build/check-dist.mjs`.

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/panel/options.schema.json")
}

/// The file's shape; a struct, so the fields keep their order.
#[derive(serde::Serialize)]
struct Schema {
    description: &'static str,
    options: Vec<statescope_panel::options::OptionSpec>,
}

fn generate() -> String {
    let schema = Schema {
        description: "The Statescope panel's options, in the editor's order: the key each is saved under (path), \
            its name, description and category in the editor, its type (radio, select, text, stringArray, number; \
            colorMap has no editor), its default, and the values it takes (choices, pattern, min, max). \
            Generated from panel-plugin/src/options.rs by panel-plugin/tests/options_schema.rs; do not edit.",
        options: statescope_panel::options::descriptor(),
    };
    serde_json::to_string_pretty(&schema).unwrap() + "\n"
}

#[test]
fn the_committed_options_schema_is_current() {
    let want = generate();
    if std::env::var_os("STATESCOPE_BLESS").is_some() {
        std::fs::write(committed(), &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        have == want,
        "panel-plugin/src/panel/options.schema.json differs from the options in options.rs; regenerate it with \
         `STATESCOPE_BLESS=1 cargo test -p statescope-panel --test options_schema` and review the diff"
    );
}
