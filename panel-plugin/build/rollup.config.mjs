// Bundles src/module.ts and the wasm-bindgen glue into dist/module.js as an
// anonymous AMD module, the format Grafana's SystemJS loader expects from
// plugins. Everything Grafana already provides at runtime stays external,
// as in @grafana/create-plugin's webpack config.
import path from 'node:path';
import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';

import { DIST, GRAFANA_EXTERNALS, PLUGIN_DIR } from './paths.mjs';

export default {
  input: path.join(PLUGIN_DIR, 'src', 'module.ts'),
  external: (id) => GRAFANA_EXTERNALS.some((e) => id === e || id.startsWith(`${e}/`)),
  plugins: [nodeResolve(), typescript({ tsconfig: path.join(PLUGIN_DIR, 'tsconfig.json'), noEmitOnError: true })],
  output: {
    file: path.join(DIST, 'module.js'),
    format: 'amd',
    sourcemap: false,
  },
};
