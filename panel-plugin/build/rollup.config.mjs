// Bundles src/module.ts and the wasm-bindgen glue into dist/module.js as an
// anonymous AMD module, the format Grafana's SystemJS loader expects from
// plugins. Everything Grafana already provides at runtime stays external,
// as in @grafana/create-plugin's webpack config.
//
// Grafana's frontend sandbox (sandbox_plugin_loader.ts) runs the AMD factory
// with only the shared modules it knows and takes the factory's RETURN VALUE
// as the module's exports; rollup's named-exports AMD output returns nothing
// and asks for `exports` (and `module` for import.meta), which the sandbox
// cannot resolve. So the entry is a virtual module whose default export is the
// exports object ({ plugin }), which rollup's AMD output returns, and
// `import.meta.url` (only in wasm-bindgen's default-path branch, which the
// panel never takes: it always passes the .wasm's URL) is replaced by
// `undefined` before rollup sees it (rollup would add `module` for it).
import path from 'node:path';
import typescript from '@rollup/plugin-typescript';
import { nodeResolve } from '@rollup/plugin-node-resolve';

import { DIST, GRAFANA_EXTERNALS, PKG_DIR, PLUGIN_DIR } from './paths.mjs';

const ENTRY = '\0statescope-amd-entry';
const MODULE_TS = path.join(PLUGIN_DIR, 'src', 'module.ts');

const amdExportsEntry = {
  name: 'statescope-amd-entry',
  resolveId: (id) => (id === ENTRY ? ENTRY : null),
  load: (id) => (id === ENTRY ? `import { plugin } from ${JSON.stringify(MODULE_TS)};\nexport default { plugin };\n` : null),
  transform: (code, id) =>
    id.startsWith(PKG_DIR) && code.includes('import.meta.url') ? { code: code.replaceAll('import.meta.url', 'undefined'), map: null } : null,
};

// options.schema.json (the options as options.rs defines them) as an ES module;
// @rollup/plugin-json for one file would be a dependency for three lines.
const jsonModules = {
  name: 'statescope-json',
  transform: (code, id) => (id.endsWith('.json') ? { code: `export default ${code};`, map: { mappings: '' } } : null),
};

export default {
  input: ENTRY,
  external: (id) => GRAFANA_EXTERNALS.some((e) => id === e || id.startsWith(`${e}/`)),
  plugins: [amdExportsEntry, jsonModules, nodeResolve(), typescript({ tsconfig: path.join(PLUGIN_DIR, 'tsconfig.json'), noEmitOnError: true })],
  output: {
    file: path.join(DIST, 'module.js'),
    format: 'amd',
    exports: 'default',
    // module.js.map beside it, as create-plugin ships and Grafana's loaders
    // expect (`//# sourceMappingURL=module.js.map`).
    sourcemap: true,
  },
};
