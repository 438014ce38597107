// How Grafana really loads the panel, beyond the happy path of panel.spec.ts:
// - an upgrade while the old build's files sit in the browser's HTTP cache
//   (Grafana serves plugin files with `Cache-Control: public, max-age=3600`
//   and cache-busts only module.js);
// - Grafana's frontend sandbox, which uses the AMD factory's return value;
// - Grafana under a sub-path (root_url http://host/grafana/);
// - Grafana's default Content-Security-Policy (nonce + 'strict-dynamic') with
//   'wasm-unsafe-eval' added, as the panel's README tells admins;
// - display-name templates filled in by Grafana's replaceVariables.
// Cases tagged @smoke also run against Grafana 12.0's packages (project grafana-12).
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Page, Response } from '@playwright/test';

import { fixtureCounts, fixtureFinalStates, FIXTURE_BREAKERS } from '../support/fixtures';
import { startHostServer, type HostServer } from '../support/hostServer';
import { nodeCounts, nonZero, panelDom, tileStates } from '../support/panelDom';
import { env, expect, test } from '../support/test';

const PLUGIN_ID = 'statescope-statemachine-panel';
const CB = 'circuit_breaker';
const BREAKERS = {
  expr: [
    `statescope_state{kind="${CB}", provider="e2e"}`,
    `statescope_transitions_total{kind="${CB}", provider="e2e"}`,
    `statescope_transition_allowed{kind="${CB}"}`,
  ],
  legend: ['{{machine}} {{state}}', '{{machine}} {{from}}->{{to}}', '{{from}}->{{to}}'],
};

/** The panel drew the fixture breakers: the diagram's counts and every tile's state. */
async function expectFixtureBreakers(page: Page) {
  const dom = panelDom(page);
  await expect(dom.loadFailure).toHaveCount(0);
  await expect(dom.diagram(CB)).toBeVisible();
  await expect(dom.tiles).toHaveCount(Object.keys(FIXTURE_BREAKERS).length);
  expect(nonZero(await nodeCounts(page, CB))).toEqual(fixtureCounts());
  expect(await tileStates(page)).toEqual(fixtureFinalStates());
}

/** Responses for the plugin's .wasm, in order. */
function wasmResponses(page: Page): Response[] {
  const seen: Response[] = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.endsWith('.wasm')) {
      seen.push(r);
    }
  });
  return seen;
}

function ownHost(subPath = ''): Promise<HostServer> {
  return startHostServer({
    repoRoot: path.resolve(__dirname, '../..'),
    buildDir: env('STATESCOPE_E2E_HOST_BUILD_DIR'),
    plugins: { [PLUGIN_ID]: env('STATESCOPE_E2E_PLUGIN_DIST') },
    prometheusUrl: env('STATESCOPE_E2E_PROMETHEUS_URL'),
    subPath,
  });
}

/**
 * Build B from the built plugin (build A), as a release with new wasm-bindgen
 * glue would be: every import the glue gives the wasm carries a build hash
 * (`__wbg_<name>_<16 hex>`); B renames them all, in module.js and in the
 * .wasm alike (same length, so the binary stays valid), so B's glue cannot
 * link A's .wasm nor A's glue B's. The version in plugin.json changes, so
 * module.js gets a new `?_cache=`, as Grafana does on an upgrade. The .wasm
 * keeps the name scheme of the build: a content-hashed name gets B's hash.
 */
function makeBuildB(distA: string, into: string): { wasmA: string; wasmB: string } {
  cpSync(distA, into, { recursive: true });
  const [wasmA] = readdirSync(into).filter((f) => f.endsWith('.wasm'));
  let js = readFileSync(path.join(into, 'module.js'), 'utf8');
  let wasm = readFileSync(path.join(into, wasmA));
  const names = [...new Set(js.match(/__wbg_\w+?_[0-9a-f]{16}\b/g) ?? [])];
  expect(names.length, "module.js's wasm imports carry no build hashes (__wbg_<name>_<hash>)").toBeGreaterThan(0);
  let renamed = 0;
  for (const name of names) {
    const hex = name.slice(-16);
    const flipped = name.slice(0, -16) + [...hex].map((c) => (parseInt(c, 16) ^ 0xf).toString(16)).join('');
    const at = wasm.indexOf(Buffer.from(name));
    if (at >= 0) {
      Buffer.from(flipped).copy(wasm, at);
      renamed += 1;
    }
    js = js.replaceAll(name, flipped);
  }
  expect(renamed, 'no glue import name was found in the .wasm').toBeGreaterThan(0);
  const hashed = /^(.*_bg)\.[0-9a-f]{16}\.wasm$/.exec(wasmA);
  let wasmB = wasmA;
  if (hashed) {
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    wasmB = `${hashed[1]}.${createHash('sha256').update(wasm).digest('hex').slice(0, 16)}.wasm`;
    js = js.replaceAll(wasmA, wasmB);
    rmSync(path.join(into, wasmA));
  }
  writeFileSync(path.join(into, wasmB), wasm);
  writeFileSync(path.join(into, 'module.js'), js);
  const meta = JSON.parse(readFileSync(path.join(into, 'plugin.json'), 'utf8'));
  meta.info.version = `${meta.info.version}-b`;
  writeFileSync(path.join(into, 'plugin.json'), JSON.stringify(meta, null, 2));
  return { wasmA, wasmB };
}

test.describe('Grafana loading the panel', () => {
  test('an upgrade: build B works while build A sits in the browser cache under Grafana cache headers', async ({ page, openPanel }) => {
    const host = await ownHost();
    const work = mkdtempSync(path.join(os.tmpdir(), 'statescope-upgrade-'));
    try {
      const wasm = wasmResponses(page);
      const a = await openPanel({ ...BREAKERS, hostUrl: host.url });
      await expectFixtureBreakers(a.page);
      expect(wasm).toHaveLength(1);
      // What Grafana's getPluginAssets sends in production.
      expect(wasm[0].headers()['cache-control']).toBe('public, max-age=3600');

      const { wasmA, wasmB } = makeBuildB(env('STATESCOPE_E2E_PLUGIN_DIST'), path.join(work, 'b'));
      host.setPluginDir(PLUGIN_ID, path.join(work, 'b'));
      // Same browser context: A's files are fresh in its HTTP cache for an hour.
      const b = await openPanel({ ...BREAKERS, hostUrl: host.url });
      await expectFixtureBreakers(b.page);
      expect(wasmB, 'build B must load a .wasm under a new name').not.toBe(wasmA);
      expect(wasm.map((r) => path.basename(new URL(r.url()).pathname))).toEqual([wasmA, wasmB]);
      await b.shot('upgrade-build-b');
    } finally {
      await host.close();
      rmSync(work, { recursive: true, force: true });
    }
  });

  test("loads through a sandbox-style define that uses the AMD factory's return value @smoke", async ({ openPanel }) => {
    const p = await openPanel({ ...BREAKERS, loader: 'sandbox' });
    await expectFixtureBreakers(p.page);
    await p.shot('sandbox-loader');
  });

  test('under a sub-path (root_url http://host/grafana/) the wasm comes from /grafana/public/plugins/<id>/ @smoke', async ({ page, openPanel }) => {
    const host = await ownHost('/grafana');
    try {
      const wasm = wasmResponses(page);
      const p = await openPanel({ ...BREAKERS, hostUrl: host.url });
      await expectFixtureBreakers(p.page);
      expect(wasm.map((r) => new URL(r.url()).pathname)).toEqual([expect.stringMatching(new RegExp(`^/grafana/public/plugins/${PLUGIN_ID}/[^/]+\\.wasm$`))]);
      // Both loaders.
      const s = await openPanel({ ...BREAKERS, hostUrl: host.url, loader: 'sandbox' });
      await expectFixtureBreakers(s.page);
      await s.shot('sub-path');
    } finally {
      await host.close();
    }
  });

  test("Grafana's default CSP (nonce + 'strict-dynamic') with 'wasm-unsafe-eval', as the README gives it @smoke", async ({ page, openPanel }) => {
    const served: string[] = [];
    page.on('response', (r) => {
      const csp = r.headers()['content-security-policy'];
      if (csp) served.push(csp);
    });
    const p = await openPanel({ ...BREAKERS, csp: 'readme' });
    await expectFixtureBreakers(p.page);
    expect(served[0]).toMatch(/script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval' 'unsafe-inline' 'strict-dynamic' 'nonce-[A-Za-z0-9+/=]+';object-src 'none';/);
    await p.shot('grafana-default-csp');
  });

  test('display-name templates (${__field.labels.x}) are filled in by Grafana before the panel sees them @smoke', async ({ openPanel }) => {
    // One series: no label varies, so none identifies the machine and the
    // panel names it by the field's display name, here a template over the
    // series' labels. `max by` drops the metric name, so the kind is named:
    // without it a 0/1/2 gauge is not taken for a breaker.
    const p = await openPanel({
      expr: [`max by (provider, key_id) (circuit_breaker_state{provider="e2e", key_id="k4"})`],
      options: { shape: 'enum', kind: 'circuit_breaker' },
      fieldConfig: { defaults: { displayName: 'Breaker ${__field.labels.provider} ${__field.labels.key_id}' } },
    });
    const dom = panelDom(p.page);
    await expect(dom.tiles).toHaveCount(1);
    expect(await tileStates(p.page)).toEqual({ 'Breaker e2e k4': fixtureFinalStates()['e2e/k4'] });
    await p.shot('display-name-template');
  });
});
