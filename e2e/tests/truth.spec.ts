// Truth on screen (issue 11): real libraries nobody here wrote (pybreaker,
// Celery) driven through thousands of transitions with concurrency, manual
// moves and machines created mid-run (e2e/drivers/truth_driver.py), reported
// by statescope_client to an exporter of this test's own, scraped by the
// run's Prometheus and drawn by the built panel. What the libraries did must
// be what every layer says: final states, transitions per machine and per
// edge, machines per state.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { TRUTH_JOB } from '../support/fixtures';
import { edgeCounts, nodeCounts, nonZero, panelDom, tileDetails } from '../support/panelDom';
import { startProcess, stopProcess, tail, waitFor } from '../support/processes';
import { promQuery, startExporter } from '../support/services';
import { env, expect, test, type PanelPage } from '../support/test';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DRIVER = path.join(REPO_ROOT, 'e2e/drivers/truth_driver.py');
const PYTHON = process.env.STATESCOPE_PYTHON ?? path.join(process.env.STATESCOPE_VENV ?? path.join(os.homedir(), '.cache/statescope/venv'), 'bin/python');
/** Seconds of library traffic: thousands of transitions, and time for the mid-run machines. */
const DRIVE_SECONDS = 25;
const KINDS = ['circuit_breaker', 'worker'] as const;

interface Truth {
  machines: Array<{ kind: string; machine: string; state: string }>;
  transitions: Array<{ kind: string; machine: string; from: string; to: string; count: number }>;
  jobs: Array<{ machine: string; result: string; count: number }>;
  calls: Record<string, number>;
  manual_moves: Record<string, number>;
  reporters: Record<string, { enqueued: number; rejected: number }>;
}

/** What one layer says: final state per machine, transitions per machine and edge. */
interface Layer {
  states: Record<string, string>;
  /** "machine|from|to" -> count, non-zero only (zero-valued series exist from a machine's creation). */
  edges: Record<string, number>;
}

const edgeKey = (machine: string, from: string, to: string) => `${machine}|${from}|${to}`;

function perMachine(l: Layer): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(Object.keys(l.states).map((m) => [m, 0]));
  for (const [k, n] of Object.entries(l.edges)) {
    const m = k.split('|')[0];
    out[m] = (out[m] ?? 0) + n;
  }
  return out;
}

/** "from → to" -> count over the machines of `kind`. */
function perEdge(l: Layer, machines: Set<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(l.edges)) {
    const [m, from, to] = k.split('|');
    if (machines.has(m) && n > 0) out[`${from} → ${to}`] = (out[`${from} → ${to}`] ?? 0) + n;
  }
  return out;
}

function perState(l: Layer, machines: Set<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [m, s] of Object.entries(l.states)) {
    if (machines.has(m)) out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

/**
 * Runs the driver in its own process group (it spawns a process per Celery
 * worker), so a driver that overruns its bound is stopped with everything it started.
 */
async function runDriver(exporterUrl: string, out: string, logFile: string): Promise<string> {
  const p = startProcess('truth-driver', PYTHON, [DRIVER, '--exporter', exporterUrl, '--out', out, '--seconds', String(DRIVE_SECONDS)], logFile, {
    PYTHONPATH: path.join(REPO_ROOT, 'clients/python/src'),
  });
  const boundMs = (DRIVE_SECONDS + 90) * 1000;
  const finished = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), boundMs))]);
  if (!finished) {
    await stopProcess(p);
    throw new Error(`the driver did not finish in ${boundMs / 1000} s:\n${tail(p)}`);
  }
  // Let the log stream write out the driver's last lines.
  await new Promise((r) => setTimeout(r, 100));
  if (p.child.exitCode !== 0) {
    throw new Error(`the driver failed (exit ${p.child.exitCode ?? p.child.signalCode}):\n${tail(p, 60)}`);
  }
  return readFileSync(logFile, 'utf8');
}

/** Samples of /metrics text: name, labels, value. */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function fromSamples(samples: Array<{ name: string; labels: Record<string, string>; value: number }>): Layer {
  const l: Layer = { states: {}, edges: {} };
  for (const s of samples) {
    if (s.name === 'statescope_state' && s.value === 1) l.states[s.labels.machine] = s.labels.state;
    if (s.name === 'statescope_transitions_total' && s.value > 0) l.edges[edgeKey(s.labels.machine, s.labels.from, s.labels.to)] = s.value;
  }
  return l;
}

test.describe('truth on screen: real pybreaker and Celery through exporter, Prometheus and the panel', () => {
  test('final states, transitions per machine and per edge, and machines per state are equal at every layer', async ({ openPanel }, testInfo) => {
    // 25 s of library traffic, Celery start-up and shutdown, then the panel
    // opened once per kind and once per machine (12 page loads): 60-70 s
    // here, over the 60 s every other test gets; the driver itself is
    // bounded at 115 s.
    test.setTimeout(240_000);
    expect(existsSync(PYTHON), `no Python with pybreaker and Celery at ${PYTHON}: run scripts/setup.sh (or set STATESCOPE_PYTHON)`).toBe(true);
    const prom = env('STATESCOPE_E2E_PROMETHEUS_URL');
    const dir = testInfo.outputPath('truth');
    const exporter = await startExporter(env('STATESCOPE_E2E_EXPORTER_BIN'), path.join(dir, 'data'), dir, { demo: false, name: 'truth-exporter' });
    const instance = new URL(exporter.url).host;
    const targets = env('STATESCOPE_E2E_TRUTH_TARGETS');
    const sel = `job="${TRUTH_JOB}", instance="${instance}"`;
    try {
      writeFileSync(targets, JSON.stringify([{ targets: [instance] }]));
      await waitFor(`Prometheus to scrape ${instance}`, 30_000, async () => ((await promQuery(prom, `up{${sel}} == 1`)).length ? true : undefined));

      // The panel's range starts here, before the first machine exists (by
      // more than the 1 s step its start is aligned down to).
      const rangeStart = Date.now();
      await new Promise((r) => setTimeout(r, 1100));
      const truthFile = path.join(dir, 'truth.json');
      const driverLog = await runDriver(exporter.url, truthFile, path.join(dir, 'driver.log'));
      const driverEnd = Date.now();
      const truth = JSON.parse(readFileSync(truthFile, 'utf8')) as Truth;
      await testInfo.attach('truth.json', { path: truthFile, contentType: 'application/json' });

      const library: Layer = {
        states: Object.fromEntries(truth.machines.map((m) => [m.machine, m.state])),
        edges: Object.fromEntries(truth.transitions.filter((t) => t.count > 0).map((t) => [edgeKey(t.machine, t.from, t.to), t.count])),
      };
      const kindOf = Object.fromEntries(truth.machines.map((m) => [m.machine, m.kind]));
      const machinesOf = (kind: string) => new Set(truth.machines.filter((m) => m.kind === kind).map((m) => m.machine));
      const total = Object.values(library.edges).reduce((a, b) => a + b, 0);
      // The run is what the suite claims it is: thousands of transitions,
      // manual moves, machines of both kinds, every breaker state at the end.
      expect(total, 'transitions the libraries made').toBeGreaterThan(2000);
      expect(Object.keys(library.edges).some((k) => k.endsWith('|open|closed')), 'a manual close() of an open breaker').toBe(true);
      expect(Object.keys(library.edges).some((k) => k.endsWith('|closed|half_open')), 'a manual half_open() of a closed breaker').toBe(true);
      expect(machinesOf('circuit_breaker').size).toBe(8);
      expect(machinesOf('worker').size).toBeGreaterThanOrEqual(2);
      expect(Object.keys(perState(library, machinesOf('circuit_breaker'))).sort(), 'breaker states at the end').toEqual(['closed', 'half_open', 'open']);

      // Exporter: its API and its /metrics.
      const api: Layer = { states: {}, edges: {} };
      const apiTotals: Record<string, number> = {};
      const apiUnexpected: Record<string, number> = {};
      for (let after: string | undefined, page = 0; page < 100; page++) {
        const res = await fetch(`${exporter.url}/api/v1/machines${after ? `?after=${encodeURIComponent(after)}` : ''}`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as { machines: Array<{ machine: string; state: string; transitions: number; unexpected_transitions?: number }>; next?: string | null };
        for (const m of body.machines) {
          api.states[m.machine] = m.state;
          apiTotals[m.machine] = m.transitions;
          apiUnexpected[m.machine] = m.unexpected_transitions ?? NaN;
        }
        if (!body.next) break;
        after = body.next;
      }
      const metricsText = await (await fetch(`${exporter.url}/metrics`)).text();
      const samples = parseMetrics(metricsText);
      const scraped = fromSamples(samples);
      api.edges = scraped.edges;
      const exporterJobs = Object.fromEntries(
        samples.filter((s) => s.name === 'statescope_worker_jobs_total' && s.value > 0).map((s) => [`${s.labels.machine}|${s.labels.result}`, s.value])
      );

      // Prometheus: once it has scraped the exporter after the driver ended
      // (nothing changes after that), the last value of every series.
      await waitFor('a scrape after the driver ended', 30_000, async () => {
        const r = await promQuery(prom, `timestamp(up{${sel}})`);
        return r.length && Number(r[0].value[1]) * 1000 > driverEnd ? true : undefined;
      });
      const promLayer: Layer = { states: {}, edges: {} };
      for (const r of await promQuery(prom, `statescope_state{${sel}} == 1`)) promLayer.states[r.metric.machine] = r.metric.state;
      for (const r of await promQuery(prom, `statescope_transitions_total{${sel}} > 0`)) {
        promLayer.edges[edgeKey(r.metric.machine, r.metric.from, r.metric.to)] = Number(r.value[1]);
      }
      const promJobs = Object.fromEntries(
        (await promQuery(prom, `statescope_worker_jobs_total{${sel}} > 0`)).map((r) => [`${r.metric.machine}|${r.metric.result}`, Number(r.value[1])])
      );

      // The panel, over a range that starts before the first machine was
      // created and ends after the last scrape (queries end at now aligned
      // down to the 1 s step: let one step pass).
      await new Promise((r) => setTimeout(r, 1100));
      const open = (kind: string, machine?: string): Promise<PanelPage> => {
        const m = `kind="${kind}", ${sel}${machine ? `, machine="${machine}"` : ''}`;
        return openPanel({
          // The query panel-plugin/README.md recommends, narrowed to this test's exporter.
          expr: [`{__name__=~"statescope_(state|transitions_total|transitions_created|state_since_timestamp_seconds)", ${m}}`, `statescope_transition_allowed{kind="${kind}", ${sel}}`],
          from: rangeStart,
          options: { view: 'both' },
          width: 1400,
          height: 1000,
        });
      };
      const panel: Layer = { states: {}, edges: {} };
      const panelTotals: Record<string, number> = {};
      const panelEdges: Record<string, Record<string, number>> = {};
      const panelStates: Record<string, Record<string, number>> = {};
      const problems: string[] = [];
      for (const kind of KINDS) {
        const p = await open(kind);
        const dom = panelDom(p.page);
        await expect(dom.diagram(kind)).toBeVisible();
        await expect(dom.tiles).toHaveCount(machinesOf(kind).size);
        await p.shot(`truth-${kind}`);
        panelStates[kind] = nonZero(await nodeCounts(p.page, kind));
        const edges = await edgeCounts(p.page, kind);
        panelEdges[kind] = Object.fromEntries(Object.entries(edges).filter(([, e]) => e.exact > 0).map(([k, e]) => [k, e.exact]));
        for (const [k, e] of Object.entries(edges)) {
          // pybreaker's manual moves are manual edges of circuit_breaker, not moves it does not allow.
          if (e.exact > 0 && e.note === 'not an allowed transition') problems.push(`${kind} ${k}, taken ${e.exact} times, drawn as "${e.note}"`);
          if (e.exact > 0 && !drawnAs(e.drawn.replace(/×$/, ''), e.exact)) problems.push(`${kind} ${k}: label "${e.drawn}" for ${e.exact}`);
        }
        for (const [id, t] of Object.entries(await tileDetails(p.page))) {
          panel.states[id] = t.state;
          panelTotals[id] = t.transitions.exact;
          if (t.source !== 'counted by the exporter') problems.push(`${id}: transitions ${t.source || 'not counted'}`);
          if (!drawnAs(t.transitions.drawn.replace(/^↻ /, ''), t.transitions.exact) || !t.transitions.drawn.startsWith('↻ ')) problems.push(`${id}: "${t.transitions.drawn}" for ${t.transitions.exact}`);
        }
      }
      // Per machine and edge: the panel narrowed to one machine.
      for (const m of Object.keys(library.states)) {
        const p = await open(kindOf[m], m);
        await expect(panelDom(p.page).tiles).toHaveCount(1);
        for (const [k, e] of Object.entries(await edgeCounts(p.page, kindOf[m]))) {
          const [from, to] = k.split(' → ');
          if (e.exact > 0) panel.edges[edgeKey(m, from, to)] = e.exact;
        }
      }

      const layers: Array<[string, Layer]> = [
        ['library', library],
        ['exporter API + /metrics', api],
        ['Prometheus', promLayer],
        ['panel', panel],
      ];
      const table = summary(layers, machinesOf, { 'exporter API': apiTotals, panel: panelTotals }, panelEdges, panelStates);
      const head =
        `truth: ${total} transitions by the libraries in ${((driverEnd - rangeStart) / 1000).toFixed(1)} s ` +
        `(manual moves ${JSON.stringify(truth.manual_moves)}, breaker calls ${JSON.stringify(truth.calls)}), ` +
        `events reported ${sum(truth.reporters, 'enqueued')}, refused by the exporter ${sum(truth.reporters, 'rejected')}, panel range from ${new Date(rangeStart).toISOString()} to now\n`;
      console.log(head + table + `\n${driverLog.trim()}`);
      await testInfo.attach('layers.txt', { body: head + table, contentType: 'text/plain' });

      for (const [name, l] of layers.slice(1)) {
        expect.soft(l.states, `${name}: final state per machine`).toEqual(library.states);
        expect.soft(l.edges, `${name}: transitions per machine and edge`).toEqual(library.edges);
      }
      expect.soft(apiTotals, 'exporter API: transitions per machine').toEqual(perMachine(library));
      expect.soft(apiUnexpected, 'exporter API: every move the libraries made is one their kind knows (normal or manual)').toEqual(
        Object.fromEntries(Object.keys(library.states).map((m) => [m, 0]))
      );
      expect.soft(panelTotals, 'panel: tile transitions per machine').toEqual(perMachine(library));
      for (const kind of KINDS) {
        expect.soft(panelEdges[kind], `panel: ${kind} diagram edge counts`).toEqual(perEdge(library, machinesOf(kind)));
        expect.soft(panelStates[kind], `panel: ${kind} machines per state`).toEqual(perState(library, machinesOf(kind)));
      }
      const celeryJobs = Object.fromEntries(truth.jobs.filter((j) => j.count > 0).map((j) => [`${j.machine}|${j.result}`, j.count]));
      expect.soft(exporterJobs, 'exporter: Celery jobs per worker and result').toEqual(celeryJobs);
      expect.soft(promJobs, 'Prometheus: Celery jobs per worker and result').toEqual(celeryJobs);
      expect.soft(problems, 'panel: how counts are drawn').toEqual([]);
    } finally {
      writeFileSync(targets, '[]');
      await stopProcess(exporter.proc);
    }
  });
});

function sum<K extends string>(o: Record<string, Record<K, number>>, key: K): number {
  return Object.values(o).reduce((a, r) => a + r[key], 0);
}

/**
 * Whether `drawn` is `n` itself or the panel's short form of it (ui/format.rs
 * `count`): exact below 1,000, then 1.2k, 12k, 1.5M, rounded (ties either way).
 */
function drawnAs(drawn: string, n: number): boolean {
  if (drawn === String(n)) return true;
  const m = /^(\d+(?:\.\d)?)([kM])$/.exec(drawn);
  if (!m) return false;
  const shown = Number(m[1]);
  // 12k: whole thousands, rounded down.
  if (m[2] === 'k' && n >= 10_000) return shown === Math.floor(n / 1e3);
  // 1.2k, 1.5M: one decimal, rounded.
  const unit = m[2] === 'k' ? 1e3 : 1e6;
  return Math.abs(shown * unit - n) <= 0.05 * unit;
}

/** The per-layer table printed with the result. */
function summary(
  layers: Array<[string, Layer]>,
  machinesOf: (kind: string) => Set<string>,
  totals: Record<string, Record<string, number>>,
  panelEdges: Record<string, Record<string, number>>,
  panelStates: Record<string, Record<string, number>>
): string {
  const rows: string[][] = [['layer', 'kind', 'machines', 'per state', 'transitions', 'per edge']];
  for (const kind of KINDS) {
    const ms = machinesOf(kind);
    for (const [name, l] of layers) {
      const edges = perEdge(l, ms);
      const n = Object.values(edges).reduce((a, b) => a + b, 0);
      const states = perState(l, ms);
      rows.push([name, kind, String(Object.keys(l.states).filter((m) => ms.has(m)).length), fmt(states), String(n), fmt(edges)]);
    }
    const pe = panelEdges[kind] ?? {};
    rows.push(['panel diagram (all machines)', kind, '', fmt(panelStates[kind] ?? {}), String(Object.values(pe).reduce((a, b) => a + b, 0)), fmt(pe)]);
    for (const [name, t] of Object.entries(totals)) {
      rows.push([`${name} per-machine totals`, kind, '', '', String([...ms].reduce((a, m) => a + (t[m] ?? 0), 0)), '']);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

function fmt(o: Record<string, number>): string {
  return Object.entries(o)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k.replace(' → ', '>')}=${v}`)
    .join(' ');
}
