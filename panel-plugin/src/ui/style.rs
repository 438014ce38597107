//! The panel's stylesheet and theme variables. Every rule is scoped under
//! `.ss-root` so nothing leaks into Grafana, and every colour comes from the
//! theme Grafana passed in (as CSS variables on the root), so dark and light
//! themes both work.

use crate::color;
use crate::input::Theme;

/// Theme roles the stylesheet uses: (CSS variable, palette key).
const ROLES: [(&str, &str); 11] = [
    ("--ss-text", "text"),
    ("--ss-text-weak", "textSecondary"),
    ("--ss-bg", "background"),
    ("--ss-bg-2", "backgroundSecondary"),
    ("--ss-border", "border"),
    ("--ss-border-weak", "borderWeak"),
    ("--ss-primary", "primary"),
    ("--ss-ok", "ok"),
    ("--ss-info", "info"),
    ("--ss-warning", "warning"),
    ("--ss-critical", "critical"),
];

/// Roles also used as text colours: a `-text` variable that reads on the
/// panel's backgrounds (the light theme's warning orange does not).
const TEXT_ROLES: [(&str, &str); 3] = [
    ("--ss-warning-text", "warning"),
    ("--ss-critical-text", "critical"),
    ("--ss-primary-text", "primary"),
];

/// The `style` attribute of the panel root: one CSS variable per theme role.
pub fn theme_vars(theme: &Theme) -> String {
    let mut out = String::new();
    for (var, key) in ROLES {
        // `role` only passes colours it parsed, which cannot break out of the attribute.
        let value = color::role(theme, key);
        out.push_str(&format!("{var}:{value};"));
    }
    for (var, key) in TEXT_ROLES {
        out.push_str(&format!("{var}:{};", color::readable(&color::role(theme, key), theme)));
    }
    out.push_str(if theme.is_dark {
        "color-scheme:dark;"
    } else {
        "color-scheme:light;"
    });
    out
}

/// A colour from the palette goes into a `style` attribute; refuse anything
/// that could end the declaration and start another.
pub fn is_safe_css_value(v: &str) -> bool {
    !v.is_empty() && v.len() < 64 && !v.contains([';', '{', '}', '<', '>', '"', '\\'])
}

/// The stylesheet, inserted once inside each panel root.
pub const CSS: &str = r#"
.ss-root{position:relative;width:100%;height:100%;overflow:hidden;color:var(--ss-text);font-size:12px;line-height:1.35;
  display:flex;flex-direction:column;box-sizing:border-box}
.ss-root *{box-sizing:border-box}
.ss-message{margin:auto;padding:8px 12px;max-width:90%;text-align:center;color:var(--ss-text-weak)}
.ss-message.ss-error{color:var(--ss-critical-text)}
.ss-warnings{flex:none;height:18px;padding:2px 6px;color:var(--ss-warning-text);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.ss-header{flex:none;position:relative;overflow:hidden}
.ss-search{position:absolute;left:0;top:3px;width:150px;height:22px;padding:0 8px;border:1px solid var(--ss-border);
  border-radius:2px;background:var(--ss-bg);color:var(--ss-text);font:inherit}
.ss-search:focus{outline:2px solid var(--ss-primary);outline-offset:-1px}
.ss-search::placeholder{color:var(--ss-text-weak);opacity:1}
.ss-chip{position:absolute;display:flex;align-items:center;gap:5px;height:22px;padding:0 8px;border-radius:11px;
  border:1px solid var(--ss-border);background:var(--ss-bg-2);color:var(--ss-state-text,var(--ss-text));cursor:pointer;
  white-space:nowrap;overflow:hidden;font:inherit;margin:0}
.ss-chip:hover{border-color:var(--ss-state,var(--ss-text-weak))}
.ss-chip:focus-visible{outline:2px solid var(--ss-primary);outline-offset:1px}
.ss-chip.ss-pressed{border-color:var(--ss-state,var(--ss-text));box-shadow:inset 0 0 0 1px var(--ss-state,var(--ss-text))}
.ss-chip.ss-note{cursor:default;color:var(--ss-text-weak);background:transparent}
.ss-chip.ss-note:hover{border-color:var(--ss-border)}
.ss-dot{flex:none;width:8px;height:8px;border-radius:50%;background:var(--ss-state)}
.ss-chip-name{flex:1 1 auto;min-width:0;overflow:hidden;text-overflow:ellipsis;text-align:left}
.ss-chip-count{flex:none;font-weight:600;font-variant-numeric:tabular-nums}
.ss-sev{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:3px}
.ss-body{flex:1 1 auto;min-height:0;display:flex;gap:8px}
.ss-body.ss-column{flex-direction:column}
.ss-diagrams{flex:none;position:relative}
.ss-diagram{position:absolute}
.ss-diagram svg{display:block;overflow:hidden}
.ss-kind-name{position:absolute;left:4px;top:0;line-height:14px;color:var(--ss-text-weak)}
.ss-node{cursor:pointer}
.ss-node:focus{outline:none}
.ss-node:focus-visible .ss-node-body{stroke:var(--ss-primary);stroke-width:3}
.ss-node-count{font-size:13px;font-weight:600;fill:var(--ss-text)}
.ss-node-name{font-size:11px;fill:var(--ss-text-weak)}
.ss-node-name,.ss-edge-label,.ss-band-label{paint-order:stroke;stroke:var(--ss-bg);stroke-width:3px;stroke-linejoin:round}
.ss-node.ss-selected .ss-node-name{fill:var(--ss-text);font-weight:600}
.ss-node.ss-dim .ss-node-body{opacity:0.45}
.ss-worst{animation:ss-pulse 2s ease-in-out infinite}
@keyframes ss-pulse{0%,100%{opacity:0.9}50%{opacity:0.35}}
@media (prefers-reduced-motion: reduce){.ss-worst{animation:none}}
.ss-edge{fill:none;stroke:var(--ss-text-weak)}
.ss-edge.ss-idle{opacity:0.25}
.ss-edge.ss-unseen{stroke-dasharray:4 4}
.ss-edge.ss-manual{stroke-dasharray:1 3}
.ss-edge-label{font-size:10px;fill:var(--ss-text-weak);text-anchor:middle;dominant-baseline:middle}
.ss-band-line{stroke:var(--ss-border);stroke-dasharray:4 3}
.ss-band-label{font-size:10px;fill:var(--ss-text-weak)}
.ss-machines{flex:1 1 auto;min-width:0;min-height:0;position:relative;overflow-y:auto;overflow-x:hidden}
.ss-tiles{position:relative;width:100%}
.ss-cells{position:absolute;left:0;top:0;right:0;bottom:0}
.ss-tile{position:absolute;display:flex;flex-direction:column;gap:3px;padding:5px 8px 5px 10px;overflow:hidden;
  border:1px solid var(--ss-border-weak);border-radius:3px;background:var(--ss-bg-2)}
.ss-tile::before{content:"";position:absolute;left:0;top:0;bottom:0;width:4px;background:var(--ss-state)}
.ss-tile.ss-flapping{border-color:var(--ss-warning)}
.ss-cell{position:absolute;border-radius:2px;background:var(--ss-state)}
.ss-cell.ss-flapping{outline:2px solid var(--ss-warning);outline-offset:-2px}
.ss-cell:hover{outline:2px solid var(--ss-text);outline-offset:0}
.ss-row{display:flex;align-items:baseline;gap:6px;min-width:0;height:16px;white-space:nowrap}
.ss-id{font-weight:500;overflow:hidden;text-overflow:ellipsis;flex:1 1 auto;min-width:0}
.ss-state{color:var(--ss-state-text);font-weight:600;overflow:hidden;text-overflow:ellipsis}
.ss-weak{color:var(--ss-text-weak)}
.ss-flap{color:var(--ss-warning-text);font-weight:600}
.ss-links{margin-left:auto;display:flex;gap:6px;overflow:hidden}
.ss-links a{color:var(--ss-primary-text);text-decoration:none;overflow:hidden;text-overflow:ellipsis;max-width:90px}
.ss-links a:hover{text-decoration:underline}
.ss-strip{display:block;flex:none;width:100%;height:14px;border-radius:2px;background:var(--ss-border-weak);cursor:crosshair}
.ss-strip-cursor{stroke:var(--ss-text);stroke-width:2px;vector-effect:non-scaling-stroke}
.ss-empty{padding:12px;color:var(--ss-text-weak)}
.ss-tooltip{position:absolute;z-index:10;pointer-events:none;overflow:hidden;padding:6px 8px;font-size:11px;border-radius:3px;
  background:var(--ss-bg);color:var(--ss-text);border:1px solid var(--ss-border);box-shadow:0 4px 8px rgba(0,0,0,0.3)}
.ss-tooltip table{border-collapse:collapse}
.ss-tooltip td{padding:0 8px 0 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:230px}
.ss-tooltip .ss-title{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.ss-at{margin-bottom:2px}
.ss-at .ss-weak{display:inline;margin-left:6px}
.ss-shares{display:flex;flex-wrap:wrap;gap:0 8px}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn theme(is_dark: bool, pairs: &[(&str, &str)]) -> Theme {
        Theme {
            is_dark,
            palette: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn uses_the_theme_colours_passed_in() {
        let vars = theme_vars(&theme(false, &[("text", "#111111"), ("critical", "rgb(200, 0, 0)")]));
        assert!(vars.contains("--ss-text:#111111;"), "{vars}");
        assert!(vars.contains("--ss-critical:rgb(200, 0, 0);"), "{vars}");
        // Missing roles fall back to Grafana's light defaults.
        assert!(vars.contains("--ss-bg:#ffffff;"), "{vars}");
        assert!(vars.ends_with("color-scheme:light;"));
        assert!(theme_vars(&theme(true, &[])).contains("--ss-bg:#181b1f;"));
    }

    #[test]
    fn refuses_values_that_would_inject_css() {
        let vars = theme_vars(&theme(true, &[("text", "red;background:url(x)")]));
        assert!(vars.contains("--ss-text:#ccccdc;"), "{vars}");
        assert!(!is_safe_css_value("a}b"));
        assert!(is_safe_css_value("rgba(1,2,3,0.5)"));
    }

    #[test]
    fn every_rule_is_scoped_to_the_panel_root() {
        for rule in CSS.split('}').map(str::trim).filter(|r| r.contains('{')) {
            let selector = rule.split('{').next().unwrap().trim();
            let scoped = selector.starts_with(".ss-")
                || selector.starts_with("@keyframes")
                || selector.starts_with("@media")
                || selector.starts_with("0%")
                || selector.starts_with("50%");
            assert!(scoped, "unscoped rule: {selector}");
        }
    }
}
