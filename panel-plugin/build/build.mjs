#!/usr/bin/env node
// Builds the Grafana panel plugin into dist/ (at the repository root):
//   1. cargo build of the panel crate for wasm32 with the wasm-release profile;
//   2. wasm-bindgen --target web (the CLI must match Cargo.lock's wasm-bindgen);
//   3. wasm-opt -Oz --converge from the npm package binaryen (Debian's is too old for
//      the features rustc now emits);
//   4. the .wasm named by its content hash (statescope_panel_bg.<hash>.wasm):
//      Grafana serves plugin files with `Cache-Control: public, max-age=3600`
//      and cache-busts only module.js, so a fixed name would let an upgraded
//      module.js meet a cached old .wasm (whose imports no longer link);
//   5. rollup: src/module.ts + the wasm-bindgen glue -> dist/module.js (AMD,
//      returning its exports) and module.js.map;
//   6. plugin.json (version from package.json, build date), logo,
//      screenshots, README, CHANGELOG and LICENSE next to it.
//
// Honours CARGO_TARGET_DIR; without it, cargo's own target directory (from
// `cargo metadata`). `--skip-opt` leaves out wasm-opt (faster local builds).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

import { CRATE, PLUGIN_DIR, REPO, WASM_NAME, DIST, PKG_DIR, IMG_DIR, wasmFileName } from './paths.mjs';

const skipOpt = process.argv.includes('--skip-opt');
const started = Date.now();

function fail(message) {
  console.error(`\nbuild: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  console.log(`build: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: REPO, ...opts });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} failed (exit ${r.status})`);
}

function timed(label, f) {
  const t = Date.now();
  const out = f();
  console.log(`build: ${label} took ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

function targetDir() {
  if (process.env.CARGO_TARGET_DIR) return path.resolve(REPO, process.env.CARGO_TARGET_DIR);
  const meta = execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: REPO, encoding: 'utf8' });
  return JSON.parse(meta).target_directory;
}

/** The wasm-bindgen version Cargo.lock resolved, which the CLI must match. */
function lockedWasmBindgen() {
  const lock = readFileSync(path.join(REPO, 'Cargo.lock'), 'utf8');
  const m = lock.match(/\[\[package\]\]\nname = "wasm-bindgen"\nversion = "([^"]+)"/);
  if (!m) fail('Cargo.lock has no wasm-bindgen package; run `cargo generate-lockfile`.');
  return m[1];
}

function checkWasmBindgenCli(want) {
  const r = spawnSync('wasm-bindgen', ['--version'], { encoding: 'utf8' });
  if (r.error) {
    fail(`wasm-bindgen CLI not found. Install the version Cargo.lock pins:\n  cargo install wasm-bindgen-cli --version ${want}`);
  }
  const have = (r.stdout.trim().split(/\s+/)[1] || '').trim();
  if (have !== want) {
    fail(
      `wasm-bindgen CLI is ${have || 'unknown'} but Cargo.lock has wasm-bindgen ${want}; they must be equal.\n` +
        `  cargo install wasm-bindgen-cli --version ${want} --force`,
    );
  }
}

function kb(n) {
  return `${(n / 1024).toFixed(1)} KB`;
}

// 1. cargo
const target = targetDir();
timed('cargo build', () =>
  run('cargo', ['build', '-p', CRATE, '--target', 'wasm32-unknown-unknown', '--profile', 'wasm-release', '--locked'], {
    env: { ...process.env, CARGO_TARGET_DIR: target },
  }),
);
const rawWasm = path.join(target, 'wasm32-unknown-unknown', 'wasm-release', `${WASM_NAME}.wasm`);
if (!statSync(rawWasm, { throwIfNoEntry: false })) fail(`cargo did not produce ${rawWasm}`);

// 2. wasm-bindgen
checkWasmBindgenCli(lockedWasmBindgen());
rmSync(PKG_DIR, { recursive: true, force: true });
timed('wasm-bindgen', () =>
  run('wasm-bindgen', ['--target', 'web', '--out-dir', PKG_DIR, '--out-name', WASM_NAME, rawWasm]),
);
const bgWasm = path.join(PKG_DIR, `${WASM_NAME}_bg.wasm`);

// 3. wasm-opt (binaryen from node_modules). The features listed are the ones
// rustc enables by default for wasm32-unknown-unknown and wasm-bindgen keeps.
if (!skipOpt) {
  const wasmOpt = path.join(REPO, 'node_modules', '.bin', 'wasm-opt');
  if (!statSync(wasmOpt, { throwIfNoEntry: false })) fail('node_modules/.bin/wasm-opt missing: run `bash scripts/setup.sh` (npm install).');
  const features = [
    '--enable-bulk-memory',
    '--enable-nontrapping-float-to-int',
    '--enable-sign-ext',
    '--enable-mutable-globals',
    '--enable-reference-types',
    '--enable-multivalue',
  ];
  // --converge runs the passes again while the module keeps shrinking: about
  // 0.75 KB gzipped less than one -Oz round, for ~12 s more (measured at 305 KB).
  timed('wasm-opt', () => run(wasmOpt, ['-Oz', '--converge', ...features, '-o', bgWasm, bgWasm]));
}

// 4. the content-hashed name, which module.ts imports from pkg/wasm_file.js.
const wasmFile = wasmFileName(createHash('sha256').update(readFileSync(bgWasm)).digest('hex'));
writeFileSync(path.join(PKG_DIR, 'wasm_file.js'), `export const WASM_FILE = ${JSON.stringify(wasmFile)};\n`);
writeFileSync(path.join(PKG_DIR, 'wasm_file.d.ts'), 'export declare const WASM_FILE: string;\n');

// 5. rollup
rmSync(DIST, { recursive: true, force: true });
mkdirSync(path.join(DIST, 'img'), { recursive: true });
timed('rollup', () =>
  run(path.join(REPO, 'node_modules', '.bin', 'rollup'), ['--config', path.join(PLUGIN_DIR, 'build', 'rollup.config.mjs')]),
);

// 6. static files
const version = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version;
const pluginJson = JSON.parse(readFileSync(path.join(PLUGIN_DIR, 'src', 'plugin.json'), 'utf8'));
pluginJson.info.version = version;
pluginJson.info.updated = new Date().toISOString().slice(0, 10);
writeFileSync(path.join(DIST, 'plugin.json'), JSON.stringify(pluginJson, null, 2) + '\n');
copyFileSync(bgWasm, path.join(DIST, wasmFile));
copyFileSync(path.join(PLUGIN_DIR, 'img', 'logo.svg'), path.join(DIST, 'img', 'logo.svg'));
for (const { path: shot } of pluginJson.info.screenshots ?? []) {
  copyFileSync(path.join(IMG_DIR, path.basename(shot)), path.join(DIST, shot));
}
copyFileSync(path.join(PLUGIN_DIR, 'README.md'), path.join(DIST, 'README.md'));
copyFileSync(path.join(PLUGIN_DIR, 'CHANGELOG.md'), path.join(DIST, 'CHANGELOG.md'));
copyFileSync(path.join(REPO, 'LICENSE'), path.join(DIST, 'LICENSE'));

const wasmBytes = readFileSync(path.join(DIST, wasmFile));
const jsBytes = readFileSync(path.join(DIST, 'module.js'));
console.log(
  `build: dist/ ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
    `${wasmFile} ${kb(wasmBytes.length)} (gzip ${kb(gzipSync(wasmBytes, { level: 9 }).length)}), ` +
    `module.js ${kb(jsBytes.length)} (gzip ${kb(gzipSync(jsBytes, { level: 9 }).length)})`,
);
