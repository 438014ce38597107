#!/usr/bin/env node
// Checks the built plugin in dist/ the way Grafana will use it:
// - every file Grafana and the catalogue need is there, plugin.json is right;
// - the .wasm compiles (so wasm-opt kept only features browsers have) and is
//   within its size budget;
// - module.js is an anonymous AMD module whose only dependencies are the ones
//   Grafana provides; run with a tiny AMD `define` and stand-ins for React and
//   @grafana/*, it exports `plugin`, a PanelPlugin with a panel component;
// - every option the editor saves is one the Rust side reads (options.rs),
//   with values it accepts.
// Exits non-zero with one line per problem.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { gzipSync } from 'node:zlib';

import { DIST, GRAFANA_EXTERNALS, PLUGIN_DIR, PLUGIN_ID, REPO, WASM_NAME } from './paths.mjs';

// The goal is 150 KB; the data core with serde_json and Leptos' runtime alone
// is ~180 KB gzipped (see the panel's README), so this guards against
// regressions from where the build is now rather than asserting the goal.
const WASM_GZIP_BUDGET = 280 * 1024;

const problems = [];
const check = (ok, message) => {
  if (!ok) problems.push(message);
};
const dist = (f) => path.join(DIST, f);
const exists = (f) => Boolean(statSync(dist(f), { throwIfNoEntry: false })?.isFile());

// 1. Files.
const wasmFile = `${WASM_NAME}_bg.wasm`;
for (const f of ['module.js', wasmFile, 'plugin.json', 'img/logo.svg', 'README.md', 'CHANGELOG.md', 'LICENSE']) {
  check(exists(f), `dist/${f} is missing`);
}
if (problems.length) finish();

// 2. plugin.json.
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const meta = JSON.parse(readFileSync(dist('plugin.json'), 'utf8'));
check(meta.type === 'panel', `plugin.json type is ${meta.type}, not panel`);
check(meta.id === PLUGIN_ID, `plugin.json id is ${meta.id}, not ${PLUGIN_ID}`);
check(meta.name === 'Statescope state machines', `plugin.json name is ${meta.name}`);
check(meta.info?.version === pkg.version, `plugin.json version ${meta.info?.version} != package.json ${pkg.version}`);
check(/^\d{4}-\d{2}-\d{2}$/.test(meta.info?.updated ?? ''), `plugin.json info.updated is not a date: ${meta.info?.updated}`);
check(meta.dependencies?.grafanaDependency === '>=12.0.0', 'plugin.json grafanaDependency is not >=12.0.0');
for (const size of ['small', 'large']) {
  const logo = meta.info?.logos?.[size];
  check(logo && exists(logo), `plugin.json logo ${size} (${logo}) is not in dist/`);
}
check(meta.info?.author?.name, 'plugin.json has no author');
check(readFileSync(dist('README.md'), 'utf8').includes("'wasm-unsafe-eval'"), "README.md does not explain the CSP ('wasm-unsafe-eval')");
check(readFileSync(dist('LICENSE'), 'utf8').includes('Apache License'), 'LICENSE is not the Apache License');

// 3. The WebAssembly module.
const wasm = readFileSync(dist(wasmFile));
try {
  await WebAssembly.compile(wasm);
} catch (e) {
  problems.push(`${wasmFile} does not compile: ${e.message}`);
}
const gz = gzipSync(wasm, { level: 9 }).length;
check(gz <= WASM_GZIP_BUDGET, `${wasmFile} is ${(gz / 1024).toFixed(1)} KB gzipped, over the ${WASM_GZIP_BUDGET / 1024} KB budget`);

// 4. module.js as Grafana's AMD loader sees it.
const source = readFileSync(dist('module.js'), 'utf8');
check(source.includes(wasmFile), `module.js does not load ${wasmFile}`);
let defined;
const sandbox = {
  define(deps, factory) {
    check(Array.isArray(deps), 'module.js calls define() with a module id; Grafana needs an anonymous AMD module');
    defined = { deps, factory };
  },
  console,
  URL,
  // What the wasm-bindgen glue touches at load time.
  TextDecoder,
  TextEncoder,
  WebAssembly,
  FinalizationRegistry,
};
sandbox.define.amd = {};
vm.runInNewContext(source, sandbox, { filename: 'dist/module.js' });
if (!defined) {
  problems.push('module.js did not call define()');
  finish();
}
for (const dep of defined.deps) {
  check(['module', 'exports', 'require', ...GRAFANA_EXTERNALS].includes(dep), `module.js depends on ${dep}, which Grafana does not provide`);
}

// Stand-ins: a PanelPlugin that records what the plugin configures.
class PanelPlugin {
  constructor(panel) {
    this.panel = panel;
    this.options = [];
    this.fieldConfig = undefined;
  }
  useFieldConfig(config) {
    this.fieldConfig = config ?? {};
    return this;
  }
  setPanelOptions(build) {
    const builder = {};
    for (const method of ['addRadio', 'addSelect', 'addTextInput', 'addStringArray', 'addNumberInput', 'addBooleanSwitch', 'addMultiSelect']) {
      builder[method] = (config) => {
        this.options.push({ method, ...config });
        return builder;
      };
    }
    build(builder);
    return this;
  }
}
const grafanaData = {
  PanelPlugin,
  FieldConfigProperty: new Proxy({}, { get: (_, k) => String(k).toLowerCase() }),
  LoadingState: { Loading: 'Loading', Done: 'Done' },
};
const react = { createElement: () => null, useState: () => [null, () => {}], useRef: () => ({}), useEffect: () => {}, useCallback: (f) => f };
const provided = {
  module: { uri: `http://grafana.local/public/plugins/${PLUGIN_ID}/module.js` },
  exports: {},
  react,
  '@grafana/data': grafanaData,
  '@grafana/ui': { useTheme2: () => ({}) },
};
try {
  defined.factory(...defined.deps.map((d) => provided[d] ?? {}));
} catch (e) {
  problems.push(`module.js threw while loading: ${e.stack}`);
  finish();
}
const plugin = provided.exports.plugin;
check(plugin instanceof PanelPlugin, 'module.js does not export `plugin` as a PanelPlugin');
check(typeof plugin?.panel === 'function', 'the plugin has no panel component');
check(plugin?.fieldConfig !== undefined, 'the plugin does not use field config (value mappings, colours, links would not apply)');

// 5. The options editor against the Rust options reader.
const optionsRs = readFileSync(path.join(PLUGIN_DIR, 'src', 'options.rs'), 'utf8');
const rustKeys = new Set([...optionsRs.matchAll(/reader\s*\.\s*\w+\(\s*"(\w+)"/g)].map((m) => m[1]));
const rustValues = new Set([...optionsRs.matchAll(/\("(\w+)",\s*\w+::\w+\)/g)].map((m) => m[1]));
check(rustKeys.size > 5, `could not read the option keys from options.rs (found ${[...rustKeys]})`);
const paths = (plugin?.options ?? []).map((o) => o.path);
for (const want of ['view', 'shape', 'stateLabel', 'identityLabels', 'kind', 'flappingThreshold', 'sort']) {
  check(paths.includes(want), `the options editor has no ${want} option`);
}
for (const option of plugin?.options ?? []) {
  check(rustKeys.has(option.path), `option ${option.path} is not read by options.rs (it reads ${[...rustKeys].join(', ')})`);
  if (['addRadio', 'addSelect'].includes(option.method) && option.path !== 'kind') {
    for (const { value } of option.settings?.options ?? []) {
      check(rustValues.has(value), `option ${option.path} offers ${value}, which options.rs does not accept`);
    }
    const values = (option.settings?.options ?? []).map((o) => o.value);
    check(values.includes(option.defaultValue), `option ${option.path} defaults to ${option.defaultValue}, not one of its choices`);
  }
}

finish();

function finish() {
  if (problems.length) {
    console.error(`check-dist: ${problems.length} problem(s) in dist/:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  const js = readFileSync(dist('module.js')).length;
  console.log(
    `check-dist: dist/ ok: ${wasmFile} ${(wasm.length / 1024).toFixed(1)} KB (gzip ${(gz / 1024).toFixed(1)} KB), ` +
      `module.js ${(js / 1024).toFixed(1)} KB, ${plugin.options.length} options`,
  );
  process.exit(0);
}
