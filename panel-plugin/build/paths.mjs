// Paths and names the build, package and check scripts share.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PLUGIN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(PLUGIN_DIR, '..');
export const DIST = path.join(REPO, 'dist');
/** wasm-bindgen output (generated, git-ignored). */
export const PKG_DIR = path.join(PLUGIN_DIR, 'pkg');
export const CRATE = 'statescope-panel';
/** The cdylib's file name: the crate name with `_`. */
export const WASM_NAME = 'statescope_panel';
export const PLUGIN_ID = 'statescope-statemachine-panel';

/** Modules Grafana provides to plugins at runtime (sharedDependencies.ts of
 * Grafana 12.0 to 13.2: @grafana/schema is NOT one of them, a plugin bundles
 * what it uses of it): external in the bundle, as in @grafana/create-plugin's
 * webpack config, and the only dependencies module.js may have. Grafana's
 * frontend sandbox resolves nothing else either (no AMD `module`/`exports`). */
export const GRAFANA_EXTERNALS = ['react', 'react-dom', '@grafana/data', '@grafana/ui', '@grafana/runtime', '@emotion/css', 'rxjs'];

/** The .wasm in dist/: named by its content hash (see build.mjs). */
export const WASM_FILE_PATTERN = new RegExp(`^${WASM_NAME}_bg\\.([0-9a-f]{16})\\.wasm$`);
/** The wasm's file name for its bytes. */
export function wasmFileName(sha256Hex) {
  return `${WASM_NAME}_bg.${sha256Hex.slice(0, 16)}.wasm`;
}

/** Screenshots the plugin catalogue shows (plugin.json info.screenshots), in src/img/. */
export const IMG_DIR = path.join(PLUGIN_DIR, 'src', 'img');
