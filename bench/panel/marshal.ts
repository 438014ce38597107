// The marshalling stage alone (frames.ts), in node, without a browser or the
// wasm: fed the frames the Chromium bench feeds the panel (bench/src/frames.rs,
// converted by Grafana's toDataFrame and applyFieldOverrides as
// bench/panel/host.tsx does), in the same order: a first render, then
// `--updates` refreshes, each one step later than the one before. Prints
// the median CPU milliseconds of each, per fleet: a profile of this stage
// (node --cpu-prof) without the browser's noise around it.
//
//   npx esbuild bench/panel/marshal.ts --bundle --platform=node --format=cjs --outfile=/tmp/marshal.cjs
//   node /tmp/marshal.cjs --data DIR --manifest FILE [--repeat N] [--updates N] [--machines N]
//
// The frames come from `statescope-bench frames --dir DIR --machines 1000,10000 --refreshes N >FILE`
// (N at least --updates).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { createTheme, PanelPlugin, type PanelData } from '@grafana/data';

import { registerStandardOptions } from '../../e2e/host/standardOptions';
import { FrameSender, type Updatable } from '../../panel-plugin/src/panel/frames';
import { panelData, structureRevisions, type Fleet } from './data';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    manifest: { type: 'string' },
    repeat: { type: 'string', default: '5' },
    updates: { type: 'string', default: '6' },
    machines: { type: 'string' },
  },
});
if (!args.data || !args.manifest) {
  throw new Error('usage: marshal --data DIR --manifest FILE [--repeat N] [--updates N] [--machines N]');
}

// Node 20 has no `navigator`; Grafana's date formats read the locale from it.
(globalThis as { navigator?: object }).navigator ??= { language: 'en-US', languages: ['en-US'] };
registerStandardOptions();
// Grafana's standard field config (module.ts turns a few options off, which
// only leaves out parts of the config frames.ts does not read; importing it
// would bring @grafana/ui into node).
const plugin = new PanelPlugin(() => null).useFieldConfig();
const theme = createTheme({ colors: { mode: 'dark' } });

const load = (file: string, fromMs: number, toMs: number): PanelData =>
  panelData(JSON.parse(readFileSync(path.join(args.data!, file), 'utf8')) as object[], fromMs, toMs, plugin, theme);

/** The wasm's side: takes the update (its arrays as they are; an older frames.ts had fewer). */
class Sink implements Updatable {
  words = 0;
  update(meta: string, ...arrays: Array<ArrayLike<number>>): boolean {
    this.words += meta.length + arrays.reduce((n, a) => n + a.length, 0);
    return true;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length / 2) - 1];

/** The marshallers timed, turn about in each repeat so they share the machine's
 * noise: a scratch copy of this file may add an older frames.ts here. */
const SENDERS: Record<string, new () => FrameSender> = { current: FrameSender };

function main() {
  const fleets = (JSON.parse(readFileSync(args.manifest!, 'utf8')) as Fleet[]).filter(
    (f) => !args.machines || String(f.machines) === args.machines
  );
  const result: Record<string, Record<string, { first: number; update: number }>> = {};
  for (const fleet of fleets) {
    const updates = Number(args.updates);
    if (fleet.refreshes.length < updates) {
      throw new Error(`${updates} updates asked for, but the data has ${fleet.refreshes.length} refreshes (statescope-bench frames --refreshes)`);
    }
    const datas = [load(fleet.first, fleet.from, fleet.to), ...fleet.refreshes.slice(0, updates).map((r) => load(r.name, r.from, r.to))];
    const withStructureRev = structureRevisions();
    // As the page: a new PanelData each time, stamped with Grafana's structureRev.
    const props = (data: PanelData) =>
      ({
        data: withStructureRev(data),
        options: {},
        timeRange: data.timeRange,
        width: 1000,
        height: 600,
        replaceVariables: (s: string) => s,
      }) as never;
    // CPU time of the process (its threads: the collector's too), in ms: on
    // a shared machine it moves less than the wall clock, which counts the
    // time other processes had the CPU.
    const timed = (sender: FrameSender, data: PanelData) => {
      const p = props(data);
      const t0 = process.cpuUsage();
      sender.update(new Sink(), p, theme);
      const t = process.cpuUsage(t0);
      return (t.user + t.system) / 1000;
    };
    const times = Object.fromEntries(Object.keys(SENDERS).map((name) => [name, { first: [] as number[], update: [] as number[] }]));
    for (let r = 0; r < Number(args.repeat); r++) {
      // Each in turn first: the one that runs after another meets the heap it left.
      const order = Object.entries(SENDERS);
      for (const [name, Sender] of r % 2 ? order.reverse() : order) {
        const sender = new Sender();
        times[name].first.push(timed(sender, datas[0]));
        for (let u = 1; u <= updates; u++) {
          times[name].update.push(timed(sender, datas[u]));
        }
      }
    }
    result[fleet.machines] = {};
    for (const [name, t] of Object.entries(times)) {
      result[fleet.machines][name] = { first: median(t.first), update: median(t.update) };
      const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
      console.error(`${fleet.machines} ${name}: first ${list(t.first)} | update ${list(t.update)}`);
    }
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main();
