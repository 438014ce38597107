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

/** Modules Grafana provides to plugins at runtime: external in the bundle, as in
 * @grafana/create-plugin's webpack config, and the only dependencies module.js may have. */
export const GRAFANA_EXTERNALS = [
  'react',
  'react-dom',
  '@grafana/data',
  '@grafana/ui',
  '@grafana/runtime',
  '@grafana/schema',
  '@emotion/css',
  'rxjs',
];
