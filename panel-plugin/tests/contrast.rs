//! Text in the panel reads at WCAG AA (4.5:1) in Grafana's dark and light
//! themes. The theme colours are Grafana's own: `fixtures/grafana_theme_*.json`
//! are written by `fixtures/grafana_themes.mjs` from `@grafana/data`'s
//! `createTheme` (palette.ts, createColors.ts, createVisualizationColors.ts),
//! exactly as `module.ts` sends them to the panel.

mod support;

use serde_json::{Value, json};
use statescope_panel::color::{self, MIN_TEXT_CONTRAST, contrast, over, parse};
use statescope_panel::input::Theme;
use statescope_panel::ui::style;
use support::*;

fn theme(mode: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/grafana_theme_{mode}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn rust_theme(v: &Value) -> Theme {
    serde_json::from_value(v.clone()).unwrap()
}

/// The opaque colour `css` shows on `bg`.
fn on(css: &str, bg: [f64; 3]) -> [f64; 3] {
    over(parse(css).unwrap_or_else(|| panic!("not a colour: {css}")), bg)
}

/// The panel's two backgrounds: the panel and the tiles/chips on it.
fn backgrounds(t: &Theme) -> Vec<(&'static str, [f64; 3])> {
    let bg = on(&color::role(t, "background"), [255.0; 3]);
    let bg2 = on(&color::role(t, "backgroundSecondary"), bg);
    vec![("background", bg), ("backgroundSecondary", bg2)]
}

fn var<'a>(vars: &'a str, name: &str) -> &'a str {
    vars.split(';')
        .find_map(|d| d.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {name} in {vars}"))
}

/// A view of breakers and workers in every state, in the given theme.
fn every_state(theme: &Value) -> statescope_panel::PanelView {
    let mut frames = Vec::new();
    for (i, s) in BREAKER.iter().enumerate() {
        frames.extend(statescope_machine(
            "circuit_breaker",
            &format!("b{i}"),
            &BREAKER,
            &[s, s],
        ));
    }
    let worker = ["starting", "idle", "busy", "draining", "offline"];
    for (i, s) in worker.iter().enumerate() {
        frames.extend(statescope_machine("worker", &format!("w{i}"), &worker, &[s, s]));
    }
    let mut input = input(frames, json!({}), 2);
    input["theme"] = theme.clone();
    view(&input)
}

#[test]
fn every_text_colour_reads_at_4_5_to_1_in_both_themes() {
    for mode in ["dark", "light"] {
        let raw = theme(mode);
        let t = rust_theme(&raw);
        assert_eq!(t.is_dark, mode == "dark");
        let vars = style::theme_vars(&t);
        let texts = [
            "--ss-text",
            "--ss-text-weak",
            "--ss-warning-text",
            "--ss-critical-text",
            "--ss-primary-text",
        ];
        for (bg_name, bg) in backgrounds(&t) {
            for name in texts {
                let c = contrast(on(var(&vars, name), bg), bg);
                assert!(c >= MIN_TEXT_CONTRAST, "{mode}: {name} on {bg_name} is {c:.2}:1");
            }
        }
        let view = every_state(&raw);
        for kind in &view.kinds {
            for node in &kind.nodes {
                for (bg_name, bg) in backgrounds(&t) {
                    let c = contrast(on(&node.text_color, bg), bg);
                    assert!(
                        c >= MIN_TEXT_CONTRAST,
                        "{mode}: {} {} text ({}) on {bg_name} is {c:.2}:1",
                        kind.name,
                        node.state,
                        node.text_color
                    );
                }
            }
        }
    }
}

/// Why the text colours are not the state colours themselves: the issue's
/// measurements, reproduced from Grafana's colours.
#[test]
fn grafanas_own_state_and_warning_colours_do_not_read_as_text() {
    let light = rust_theme(&theme("light"));
    let white = backgrounds(&light)[0].1;
    let orange = contrast(on(&color::resolve("orange", &light).unwrap(), white), white);
    assert!(orange < 3.0, "light orange (half_open) {orange:.2}:1");
    let warning = contrast(on(&color::role(&light, "warning"), white), white);
    assert!(warning < 2.5, "light warning (flapping) {warning:.2}:1");
    let dark = rust_theme(&theme("dark"));
    let bg = backgrounds(&dark)[1].1;
    let red = contrast(on(&color::resolve("red", &dark).unwrap(), bg), bg);
    assert!(red < MIN_TEXT_CONTRAST, "dark red (open) on tiles {red:.2}:1");
}
