// The Playwright `test` the specs use: every test fails on any page error or
// console.error (unless the test declared that exact message as expected, and
// then the message must really appear), and gets helpers to open the host
// page, refresh it, push exporter events and save screenshots as artifacts.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { test as base, expect, type Page } from '@playwright/test';

import { waitFor } from './processes';
import { promQuery, pushEvents, type ExporterEvent } from './services';

export { expect };

export const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

export interface PanelPage {
  page: Page;
  /** Re-run the queries and re-render (a dashboard refresh); resolves when the new render is committed. */
  refresh(): Promise<void>;
  /** Save a full-page screenshot as e2e/artifacts/<name>.png and attach it to the report. */
  shot(name: string): Promise<void>;
}

export interface OpenOptions {
  plugin?: string;
  /** Another host server than the run's (a sub-path, an upgraded plugin). */
  hostUrl?: string;
  /** How the host loads module.js: SystemJS (default) or as Grafana's frontend sandbox does. */
  loader?: 'systemjs' | 'sandbox';
  /** Merged over the plugin's field config defaults (e.g. { defaults: { displayName } }). */
  fieldConfig?: Record<string, unknown>;
  theme?: 'dark' | 'light';
  expr: string[];
  /** Legend format per expr (same order); "__auto" where missing. */
  legend?: string[];
  range?: number;
  /** The range's start (epoch ms) instead of `range`: from then to now. */
  from?: number;
  options?: Record<string, unknown>;
  csp?: string;
  width?: number;
  height?: number;
}

/** Which Grafana's packages the host page runs (a project option: e2e/playwright.config.ts). */
export interface HostOptions {
  grafanaVersion: '13' | '12';
}

interface Fixtures {
  /** Messages (console.error / page errors) this test expects; each must occur at least once. */
  expectConsoleErrors: (patterns: RegExp[]) => void;
  openPanel: (o: OpenOptions) => Promise<PanelPage>;
  push: (events: ExporterEvent[]) => Promise<void>;
  /** Wait until Prometheus answers `expr` with `value` for every series matched, and `count` series. */
  waitForProm: (expr: string, check: (r: Array<{ metric: Record<string, string>; value: [number, string] }>) => boolean) => Promise<void>;
  consoleGuard: void;
}

export function env(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: the e2e globalSetup did not run (run via \`npm run test:e2e\`)`);
  }
  return v;
}

export const test = base.extend<Fixtures & HostOptions & { expectedErrors: RegExp[] }>({
  grafanaVersion: ['13', { option: true }],
  expectedErrors: async ({}, use) => {
    await use([]);
  },
  expectConsoleErrors: async ({ expectedErrors }, use) => {
    await use((patterns) => expectedErrors.push(...patterns));
  },
  consoleGuard: [
    async ({ page, expectedErrors }, use, testInfo) => {
      const errors: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') {
          const where = msg.location().url;
          errors.push(`console.error: ${msg.text()}${where ? ` (${where})` : ''}`);
        }
      });
      page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
      await use();
      const unexpected = errors.filter((e) => !expectedErrors.some((re) => re.test(e)));
      const missing = expectedErrors.filter((re) => !errors.some((e) => re.test(e)));
      if (unexpected.length || missing.length) {
        await testInfo.attach('console-errors.txt', { body: errors.join('\n'), contentType: 'text/plain' });
      }
      expect(unexpected, 'the page logged errors').toEqual([]);
      expect(missing.map(String), 'expected console errors that did not occur').toEqual([]);
    },
    { auto: true },
  ],
  openPanel: async ({ page, grafanaVersion }, use, testInfo) => {
    await use(async (o) => {
      const q = new URLSearchParams();
      q.set('grafana', grafanaVersion);
      q.set('plugin', o.plugin ?? 'statescope-statemachine-panel');
      q.set('theme', o.theme ?? 'dark');
      o.expr.forEach((e, i) => {
        q.append('expr', e);
        q.append('legend', o.legend?.[i] ?? '');
      });
      if (o.range) q.set('range', String(o.range));
      if (o.from !== undefined) q.set('from', String(o.from));
      if (o.options) q.set('options', JSON.stringify(o.options));
      if (o.csp) q.set('csp', o.csp);
      if (o.loader) q.set('loader', o.loader);
      if (o.fieldConfig) q.set('fieldConfig', JSON.stringify(o.fieldConfig));
      if (o.width) q.set('width', String(o.width));
      if (o.height) q.set('height', String(o.height));
      await page.goto(`${o.hostUrl ?? env('STATESCOPE_E2E_HOST_URL')}/?${q}`);
      const status = page.locator('#host-status');
      await expect(status).toHaveAttribute('data-state', /done|error/);
      await expect(status, 'the host page could not render the panel').toHaveAttribute('data-state', 'done');
      return {
        page,
        refresh: async () => {
          const before = Number(await status.getAttribute('data-renders'));
          await page.evaluate(() => (window as HostWindow).statescopeHost.refresh());
          await expect(status).toHaveAttribute('data-renders', String(before + 1));
          await expect(status).toHaveAttribute('data-state', 'done');
        },
        shot: async (name) => {
          mkdirSync(ARTIFACTS, { recursive: true });
          const file = path.join(ARTIFACTS, `${testInfo.project.name}-${name}.png`);
          await page.screenshot({ path: file, fullPage: true });
          await testInfo.attach(name, { path: file, contentType: 'image/png' });
        },
      };
    });
  },
  push: async ({}, use) => {
    await use((events) => pushEvents(env('STATESCOPE_E2E_EXPORTER_URL'), events));
  },
  waitForProm: async ({}, use) => {
    await use(async (expr, check) => {
      await waitFor(`Prometheus to answer ${expr} as expected`, 20_000, async () => {
        const r = await promQuery(env('STATESCOPE_E2E_PROMETHEUS_URL'), expr);
        return check(r) ? true : undefined;
      });
    });
  },
});

/** The page's host API (e2e/host/host.tsx), as the browser side sees it. */
type HostWindow = Window & { statescopeHost: { refresh(): Promise<number>; lastSeries(): unknown[] } };
