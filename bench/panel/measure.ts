// Times the built panel (dist/) in headless Chromium: first render and update
// on refresh for each generated fleet, medians over repeats. Prints one JSON
// object for bench/run.sh.
//
//   node measure.cjs --dist DIR --data DIR --manifest FILE [--repeat N] [--updates N]
//
// Reuses e2e's host server (e2e/support/hostServer.ts) to serve the plugin as
// Grafana does; bench/panel/host.tsx is the page's script.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

import { startHostServer } from '../../e2e/support/hostServer';
import type { Fleet } from './data';
import type { Timing } from './host';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string' },
    data: { type: 'string' },
    manifest: { type: 'string' },
    build: { type: 'string' },
    repeat: { type: 'string', default: '5' },
    updates: { type: 'string', default: '4' },
    // Writes a Chromium CPU profile of each fleet's updates (and of its first
    // renders) to DIR, for chrome://inspect or any .cpuprofile viewer.
    profile: { type: 'string' },
  },
});
if (!args.dist || !args.data || !args.manifest || !args.build) {
  throw new Error('usage: measure --dist DIR --data DIR --manifest FILE --build DIR [--repeat N] [--updates N]');
}
// Run from the repository root (bench/run.sh does); the bundle itself lives in bench/results/.build.
const repoRoot = process.cwd();
const fleets = JSON.parse(readFileSync(args.manifest, 'utf8')) as Fleet[];
const repeat = Number(args.repeat);
const updates = Number(args.updates);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.ceil(s.length / 2) - 1] : NaN;
};
const round = (x: number) => Math.round(x * 1000) / 1000;

async function main() {
  await build({
    entryPoints: [path.join(repoRoot, 'bench/panel/host.tsx')],
    bundle: true,
    format: 'iife',
    target: 'chrome120',
    // The host page loads host-<Grafana major>.js; the bench runs on the newest (13).
    outfile: path.join(args.build!, 'host-13.js'),
    // As e2e's bundleHost: hide SystemJS's AMD `define` from UMD libraries (lodash) in the bundle.
    define: { 'process.env.NODE_ENV': '"production"', define: 'undefined' },
    minifyWhitespace: true,
    minifySyntax: true,
    jsx: 'automatic',
    loader: { '.svg': 'text', '.css': 'empty', '.woff': 'empty', '.woff2': 'empty' },
    logLevel: 'error',
  });
  const server = await startHostServer({
    repoRoot,
    buildDir: args.build!,
    plugins: { 'statescope-statemachine-panel': args.dist, 'statescope-bench-data': args.data },
    // The benchmark feeds frames itself; nothing is proxied.
    prometheusUrl: 'http://127.0.0.1:9',
  });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const result: Record<string, unknown> = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${server.url}/?plugin=statescope-statemachine-panel&width=1000&height=600`);
    await page
      .waitForFunction(() => document.getElementById('host-status')?.dataset.state !== 'loading', null, {
        timeout: Number(process.env.BENCH_PAGE_TIMEOUT_MS ?? 60_000),
      })
      .catch((e: Error) => {
        throw new Error(`the bench page did not load: ${e.message}; page errors: ${errors.join(' | ')}`);
      });
    const hostError = await page.evaluate(() => window.statescopeBenchError);
    if (hostError) {
      throw new Error(`bench page: ${hostError}`);
    }
    const render = (step: 'first' | 'update', name: string): Promise<Timing> =>
      page.evaluate(
        ([step, name]) => (step === 'first' ? window.statescopeBench.first(name) : window.statescopeBench.update(name)),
        [step, name] as const,
      );
    const load = (name: string, from: number, to: number) =>
      page.evaluate(([name, from, to]) => window.statescopeBench.load(name, from, to), [name, from, to] as const);

    const cdp = args.profile ? await page.context().newCDPSession(page) : undefined;
    if (cdp) {
      mkdirSync(args.profile!, { recursive: true });
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
    }
    /** Runs `f` under the CPU profiler when profiling, writing the profile to `name`. */
    const profiled = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
      if (!cdp) {
        return f();
      }
      await cdp.send('Profiler.start');
      try {
        return await f();
      } finally {
        const { profile } = await cdp.send('Profiler.stop');
        writeFileSync(path.join(args.profile!, `${name}.cpuprofile`), JSON.stringify(profile));
      }
    };
    const first: Record<string, number> = {};
    const firstFrame: Record<string, number> = {};
    const update: Record<string, number> = {};
    const updateFrame: Record<string, number> = {};
    const elements: Record<string, number> = {};
    // Medians of each stage: where a first render's or an update's time went.
    // `dom` is the rest of the time to layout: React, Leptos patching the DOM,
    // style and layout.
    const stages: Record<'first' | 'update', Record<string, Record<string, number>>> = { first: {}, update: {} };
    const addStages = (which: 'first' | 'update', n: string, ts: Timing[]) => {
      const parts = {
        marshal: ts.map((t) => t.stages.marshal),
        decode: ts.map((t) => t.stages.decode),
        view: ts.map((t) => t.stages.view),
        dom: ts.map((t) => t.layout - t.stages.marshal - t.stages.decode - t.stages.view),
      };
      for (const [stage, xs] of Object.entries(parts)) {
        const m = median(xs.filter((x) => Number.isFinite(x)));
        if (Number.isFinite(m)) {
          (stages[which][stage] ??= {})[n] = round(m);
        }
      }
    };
    for (const fleet of fleets) {
      // A dashboard refresh slides the range forward: each update is one step
      // later than the one before (never back, which no refresh does).
      if (fleet.refreshes.length < updates) {
        throw new Error(`${updates} updates asked for, but the data has ${fleet.refreshes.length} refreshes (statescope-bench frames --refreshes)`);
      }
      await load(fleet.first, fleet.from, fleet.to);
      for (const r of fleet.refreshes.slice(0, updates)) {
        await load(r.name, r.from, r.to);
      }
      const firsts: Timing[] = [];
      const updatesT: Timing[] = [];
      for (let r = 0; r < repeat; r++) {
        const t = await (r === repeat - 1 ? profiled(`first-${fleet.machines}`, () => render('first', fleet.first)) : render('first', fleet.first));
        if (result.cold_first_render_ms === undefined) {
          // The very first mount: whatever the plugin initialises lazily is in it.
          result.cold_first_render_ms = round(t.layout);
        }
        firsts.push(t);
        const refresh = async () => {
          for (let u = 0; u < updates; u++) {
            updatesT.push(await render('update', fleet.refreshes[u].name));
          }
        };
        await (r === repeat - 1 ? profiled(`update-${fleet.machines}`, refresh) : refresh());
      }
      const n = String(fleet.machines);
      first[n] = round(median(firsts.map((t) => t.layout)));
      firstFrame[n] = round(median(firsts.map((t) => t.frame)));
      update[n] = round(median(updatesT.map((t) => t.layout)));
      updateFrame[n] = round(median(updatesT.map((t) => t.frame)));
      elements[n] = firsts[firsts.length - 1].elements;
      addStages('first', n, firsts);
      addStages('update', n, updatesT);
      if (elements[n] < 3) {
        const text = await page.evaluate(() => window.statescopeBench.text());
        throw new Error(`the panel drew nothing for ${n} machines: ${JSON.stringify(text)}`);
      }
      await page.evaluate(() => window.statescopeBench.unmount());
    }
    if (errors.length) {
      // A correctness problem for the panel's own tests to catch; the timings still stand.
      const distinct = [...new Set(errors.map((e) => e.slice(0, 160)))];
      console.error(`bench: ${errors.length} error(s) in the page while the panel rendered, e.g.: ${distinct.slice(0, 3).join(' | ')}`);
      result.page_errors = { count: errors.length, examples: distinct.slice(0, 3) };
    }
    Object.assign(result, {
      first_render_ms: first,
      first_render_frame_ms: firstFrame,
      update_ms: update,
      update_frame_ms: updateFrame,
      stages_ms: stages,
      elements,
      repeat,
      updates,
    });
  } finally {
    await browser.close();
    await server.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
