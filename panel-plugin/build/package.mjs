#!/usr/bin/env node
// `npm run package`: zips the built dist/ into the archive Grafana installs
// (`grafana cli --pluginUrl <zip> plugins install statescope-statemachine-panel`,
// or unzipped into the plugins directory): one top-level folder named by the
// plugin id, as Grafana's plugin catalogue expects. Then lists the archive
// back and fails if anything Grafana needs is not in it.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { DIST, PLUGIN_ID, REPO, WASM_FILE_PATTERN } from './paths.mjs';

if (!existsSync(path.join(DIST, 'module.js'))) {
  console.error('package: dist/ has no module.js; run `npm run build` first');
  process.exit(1);
}
const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const zip = path.join(REPO, `${PLUGIN_ID}-${version}.zip`);
const stage = mkdtempSync(path.join(os.tmpdir(), 'statescope-package-'));
try {
  cpSync(DIST, path.join(stage, PLUGIN_ID), { recursive: true });
  rmSync(zip, { force: true });
  // -X: no extra file attributes, so the archive depends only on the files.
  execFileSync('zip', ['-q', '-r', '-X', zip, PLUGIN_ID], { cwd: stage, stdio: 'inherit' });
} finally {
  rmSync(stage, { recursive: true, force: true });
}

const listed = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).split('\n').filter(Boolean);
const wasm = readdirSync(DIST).filter((f) => WASM_FILE_PATTERN.test(f));
const shots = (JSON.parse(readFileSync(path.join(DIST, 'plugin.json'), 'utf8')).info.screenshots ?? []).map((s) => s.path);
const needed = ['module.js', 'module.js.map', 'plugin.json', ...wasm, 'img/logo.svg', ...shots, 'README.md', 'CHANGELOG.md', 'LICENSE'];
if (wasm.length !== 1) {
  console.error(`package: dist/ has ${wasm.length} content-hashed .wasm files, not one; run \`npm run build\``);
  process.exit(1);
}
const missing = needed.filter((f) => !listed.includes(`${PLUGIN_ID}/${f}`));
const stray = listed.filter((f) => !f.startsWith(`${PLUGIN_ID}/`));
if (missing.length || stray.length) {
  console.error(`package: ${zip} is wrong: missing ${missing.join(', ') || 'nothing'}; outside ${PLUGIN_ID}/: ${stray.join(', ') || 'nothing'}`);
  process.exit(1);
}
const bytes = readFileSync(zip);
const sha256 = createHash('sha256').update(bytes).digest('hex');
console.log(`package: ${path.relative(REPO, zip)}: ${listed.length} entries, ${(bytes.length / 1024).toFixed(1)} KiB, sha256 ${sha256}`);
