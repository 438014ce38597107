// What frames.ts puts on the wire (store.rs decodes it; its tests check the
// decoding): a refresh slid by a step sends only the new samples, and never
// when a sample already sent changed; strings cross once. Run by
// `npm run test:frames` (bundled by esbuild, run by node's test runner).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FrameSender, type Updatable } from '../src/panel/frames';

const SAME_TIMES = 0xffffffff;
const SLID = 0xfffffffd;

interface Sent {
  meta: { reset: boolean; strings: string[]; configs: object[] };
  describe: number[];
  layout: number[];
  numbers: number[];
}

/** The wasm's side, recording each update; `stale` answers the next one as a store that was reset. */
class Recorder implements Updatable {
  updates: Sent[] = [];
  stale = false;
  update(meta: string, describe: Uint32Array, layout: Uint32Array, numbers: Float64Array): boolean {
    this.updates.push({ meta: JSON.parse(meta), describe: [...describe], layout: [...layout], numbers: [...numbers] });
    const ok = !this.stale;
    this.stale = false;
    return ok;
  }
  get last(): Sent {
    return this.updates[this.updates.length - 1];
  }
}

const STEP = 15_000;

/** A Prometheus range frame: `[Time, Value{machine}]`, samples `from..to` of `history`. */
function frame(machine: string, from: number, to: number, history: Array<number | null>) {
  const times: number[] = [];
  const values: Array<number | null> = [];
  for (let i = from; i < to; i++) {
    times.push(i * STEP);
    values.push(history[i % history.length]);
  }
  return {
    refId: 'A',
    length: times.length,
    fields: [
      { name: 'Time', type: 'time', config: { interval: STEP }, values: times },
      { name: 'Value', type: 'number', config: {}, labels: { __name__: 'statescope_state', machine }, values },
    ],
  };
}

const theme = {
  isDark: true,
  visualization: { hues: [] },
  colors: {
    text: { primary: '#fff', secondary: '#ccc' },
    background: { primary: '#000', secondary: '#111' },
    border: { medium: '#222', weak: '#333' },
    primary: { main: 'blue' },
    success: { main: 'green' },
    info: { main: 'cyan' },
    warning: { main: 'orange' },
    error: { main: 'red' },
  },
};

let structureRev = 0;
function send(sender: FrameSender, panel: Recorder, series: object[], sameStructure = true) {
  structureRev += sameStructure ? 0 : 1;
  const props = {
    data: { series, structureRev, state: 'Done' },
    options: {},
    timeRange: { from: 0, to: 1 },
    width: 100,
    height: 100,
    replaceVariables: (s: string) => s,
  };
  sender.update(panel, props as never, theme as never);
  return panel.last;
}

const history = [0, 1, 1, null, 2, 0, 0, 1];

/** The frame ids a layout names, its frames having a time and a value field each. */
function frameIds(layout: number[]): number[] {
  const ids: number[] = [];
  for (let at = 0; at < layout.length; ) {
    ids.push(layout[at++]);
    for (let field = 0; field < 2; field++) {
      at += layout[at] === SLID ? 3 : 1;
    }
  }
  return ids;
}

test('a range slid by a step sends each column as its new samples', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const first = send(sender, panel, [frame('m1', 0, 20, history), frame('m2', 0, 20, history)], false);
  assert.deepEqual(first.layout, [1, 20, 20, 2, SAME_TIMES, 20]);
  const next = send(sender, panel, [frame('m1', 1, 21, history), frame('m2', 1, 21, history)]);
  assert.deepEqual(next.describe, [], 'no frame described again');
  assert.deepEqual(next.layout, [1, SLID, 1, 1, SLID, 1, 1, 2, SAME_TIMES, SLID, 1, 1]);
  assert.deepEqual(next.numbers, [20 * STEP, history[20 % 8], history[20 % 8]]);
});

test('a range slid by several steps sends their samples; one slid back goes whole', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  send(sender, panel, [frame('m1', 0, 20, history), frame('m2', 0, 20, history)], false);
  const later = send(sender, panel, [frame('m1', 3, 23, history), frame('m2', 3, 23, history)]);
  assert.deepEqual(later.layout, [1, SLID, 3, 3, SLID, 3, 3, 2, SAME_TIMES, SLID, 3, 3]);
  assert.deepEqual(later.numbers.slice(0, 3), [20 * STEP, 21 * STEP, 22 * STEP]);
  // Back to the first window: its first instant is not among the times sent.
  const back = send(sender, panel, [frame('m1', 0, 20, history), frame('m2', 0, 20, history)]);
  assert.deepEqual(back.layout, [1, 20, 20, 2, SAME_TIMES, 20]);
});

test('two frames alike in one update are kept as two frames', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const twice = () => [frame('m1', 0, 20, history), frame('m1', 0, 20, history)];
  assert.deepEqual(frameIds(send(sender, panel, twice(), false).layout), [1, 2]);
  // The wasm keeps a frame once per id: naming one twice would make it start over.
  const next = send(sender, panel, twice());
  assert.deepEqual(frameIds(next.layout), [1, 2]);
  assert.deepEqual(next.describe, []);
  // Another frame before them (Grafana's structure changed): each is still named once.
  const ids = frameIds(send(sender, panel, [frame('m0', 0, 20, history), ...twice()], false).layout);
  assert.equal(new Set(ids).size, 3, `ids ${ids}`);
});

test('a frame kept after most of its first update went is still found by its description', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const fleet = (names: string[]) => names.map((m) => frame(m, 0, 4, history));
  send(sender, panel, fleet(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']), false);
  // The same structure as far as it goes (as Grafana said): m0 at its place, the rest gone.
  send(sender, panel, fleet(['m0']));
  // Another machine before it: m0 is found by its description, under its id, not described again.
  const next = send(sender, panel, fleet(['m9', 'm0']), false);
  assert.deepEqual(frameIds(next.layout), [7, 1]);
  assert.equal(next.describe[0], 7, 'only m9 described');
});

test('a sample corrected late in the overlap sends the whole column', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const corrected = [...history];
  send(sender, panel, [frame('m1', 0, 20, history)], false);
  corrected[5] = 2;
  const next = send(sender, panel, [frame('m1', 1, 21, corrected)]);
  assert.deepEqual(next.layout, [1, SLID, 1, 1, 20], 'the times slid, the values went whole');
  assert.equal(next.numbers.length, 1 + 20);
  assert.equal(next.numbers[1 + 4], 2, 'the corrected sample (step 5) reaches the wasm');
});

test('in the overlap null is NaN, as the wasm holds it, and -0 is not 0', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  send(sender, panel, [frame('m1', 0, 8, [0, 1, null, NaN, 0, 1, 1, 0])], false);
  // Both reach the wasm as NaN: no change, only the new sample crosses.
  const swapped = [0, 1, NaN, null, 0, 1, 1, 0];
  const next = send(sender, panel, [frame('m1', 1, 9, swapped)]);
  assert.deepEqual(next.layout, [1, SLID, 1, 1, SLID, 1, 1]);
  // The wasm tells -0 from 0 (a sign Prometheus may send): the column goes whole.
  const negated = [...swapped];
  negated[4] = -0;
  const again = send(sender, panel, [frame('m1', 2, 10, negated)]);
  assert.deepEqual(again.layout, [1, SLID, 1, 1, 8]);
  assert.ok(Object.is(again.numbers[1 + 2], -0), 'step 4, the third sample of the window, is -0');
});

test('an array changed in place (streaming) is never compared with itself', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const f = frame('m1', 0, 20, history);
  send(sender, panel, [f], false);
  const values = f.fields[1].values;
  values.push(1);
  values.shift();
  // A new PanelData holding the same arrays.
  const next = send(sender, panel, [{ ...f }]);
  assert.deepEqual(next.layout, [1, 20, 20], 'both columns whole: what was sent is gone from the array');
});

test('strings and configs cross once; a store that was reset gets them all again', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  const first = send(sender, panel, [frame('m1', 0, 4, history)], false);
  assert.deepEqual(first.meta.strings, ['A', 'Time', 'Value', '__name__', 'statescope_state', 'machine', 'm1']);
  assert.equal(first.meta.configs.length, 2);
  assert.equal(first.meta.reset, true);
  const more = send(sender, panel, [frame('m1', 0, 4, history), frame('m2', 0, 4, history)], false);
  assert.deepEqual(more.meta.strings, ['m2'], 'only the new machine name');
  assert.deepEqual(more.meta.configs, []);
  // m2's value field: labels __name__=statescope_state (3, 4) and machine=m2 (5, 7).
  assert.deepEqual(more.describe.slice(-4), [3, 4, 5, 7]);
  panel.stale = true;
  const again = send(sender, panel, [frame('m1', 0, 4, history)]);
  assert.equal(panel.updates.length, 4, 'sent twice: refused, then whole');
  assert.equal(again.meta.reset, true);
  assert.deepEqual(again.meta.strings, ['A', 'Time', 'Value', '__name__', 'statescope_state', 'machine', 'm1']);
  assert.equal(again.describe[0], again.layout[0], 'described again under the id the layout names');
});

test('the tables start over once they outgrow what the frames name (machines that came and went)', () => {
  const [sender, panel] = [new FrameSender(), new Recorder()];
  let resets = 0;
  for (let i = 0; i < 3000; i++) {
    // One machine at a time, a new one each refresh: a new name, a new label set.
    const sent = send(sender, panel, [frame(`m${i}`, 0, 2, history)], false);
    resets += sent.meta.reset ? 1 : 0;
    if (i > 0 && sent.meta.reset) {
      assert.equal(sent.meta.strings.length, 7, 'every string the frame names, again');
    }
  }
  // 3 new entries a refresh (a string, two fields' label sets) against 12 named: past 2 x 12 + 4096
  // entries, a start over every ~1,370 refreshes.
  assert.equal(resets, 3, 'the first update, then twice');
});

/** The wasm's store (store.rs) in a few lines: applies updates to the frames
 * it keeps and returns what it then holds, each frame as its refId and its
 * fields' names, labels and samples (NaN for null). Throws where the store
 * would answer "stale" or "malformed". */
class Store implements Updatable {
  strings: string[] = [];
  frames = new Map<number, Decoded>();
  held: Decoded[] = [];
  update(metaJson: string, describe: Uint32Array, layout: Uint32Array, numbers: Float64Array): boolean {
    const meta = JSON.parse(metaJson) as { reset: boolean; strings: string[] };
    if (meta.reset) {
      this.strings = [];
    }
    this.strings.push(...meta.strings);
    const str = (i: number) => (i === 0xffffffff ? undefined : this.strings[i]);
    const described = new Map<number, Decoded>();
    for (let at = 0; at < describe.length; ) {
      const id = describe[at];
      const frame: Decoded = { refId: str(describe[at + 1]), fields: [] };
      const count = describe[at + 3];
      at += 4;
      for (let i = 0; i < count; i++) {
        const [name, type, , labels] = describe.subarray(at, at + 4);
        const pairs: Record<string, string> = {};
        for (let l = 0; l < labels; l++) {
          pairs[str(describe[at + 4 + 2 * l])!] = str(describe[at + 5 + 2 * l])!;
        }
        frame.fields.push({ name: str(name)!, type, labels: pairs, values: [] });
        at += 4 + 2 * labels;
      }
      assert.ok(!described.has(id), `frame ${id} described twice`);
      described.set(id, frame);
    }
    const kept = new Map<number, Decoded>();
    this.held = [];
    let n = 0;
    let lastTimes: number[] | undefined;
    for (let at = 0; at < layout.length; ) {
      const id = layout[at++];
      const old = described.get(id) ?? this.frames.get(id);
      assert.ok(old, `frame ${id} is neither described nor kept`);
      assert.ok(!kept.has(id), `frame ${id} named twice`);
      const fields = old.fields.map((field) => {
        if (field.type > 1) {
          return field;
        }
        const marker = layout[at++];
        let values: number[];
        if (marker === SAME_TIMES) {
          values = lastTimes!;
        } else if (marker === UNCHANGED) {
          values = field.values;
        } else if (marker === SLID) {
          const [k, m] = [layout[at++], layout[at++]];
          values = [...field.values.slice(k), ...numbers.subarray(n, (n += m))];
        } else {
          values = [...numbers.subarray(n, (n += marker))];
        }
        if (field.type === 0) {
          lastTimes = values;
        }
        return { ...field, values };
      });
      const frame = { refId: old.refId, fields };
      kept.set(id, frame);
      this.held.push(frame);
    }
    assert.equal(n, numbers.length, 'numbers left over');
    this.frames = kept;
    return true;
  }
}

interface Decoded {
  refId: string | undefined;
  fields: Array<{ name: string; type: number; labels: Record<string, string>; values: number[] }>;
}

const UNCHANGED = 0xfffffffe;

/** What the store must hold for `series`: decoded from scratch. */
function fromScratch(series: Array<ReturnType<typeof frame>>): Decoded[] {
  return series.map((f) => ({
    refId: f.refId,
    fields: f.fields.map((field) => ({
      name: field.name,
      type: field.type === 'time' ? 0 : 1,
      labels: field.labels ?? {},
      values: (field.values as Array<number | null>).map((v) => (v === null ? NaN : v)),
    })),
  }));
}

test('whatever a run of refreshes sends, the store holds what a decode from scratch would', () => {
  // A small seeded generator (mulberry32): the same runs every time.
  let seed = 13;
  const random = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
  for (let run = 0; run < 40; run++) {
    const [sender, store] = [new FrameSender(), new Store()];
    const values = Array.from({ length: 40 }, () => [0, 1, 2, null][random(4)]);
    let [from, len] = [random(10), 1 + random(12)];
    let machines = ['m1', 'm2', 'm3'];
    let last: { series: Array<ReturnType<typeof frame>>; names: string } | undefined;
    for (let step = 0; step < 12; step++) {
      const what = random(8);
      let series: Array<ReturnType<typeof frame>>;
      if (what === 0 && last) {
        // A streaming datasource: the same arrays, changed in place, in a new PanelData.
        series = last.series.map((f) => ({ ...f }));
        for (const f of series) {
          for (const field of f.fields) {
            (field.values as unknown[]).push((field.values as unknown[])[0]);
            (field.values as unknown[]).shift();
          }
        }
      } else {
        if (what === 1) {
          values[random(values.length)] = [0, 1, 2, null][random(4)]; // corrected late
        } else if (what === 2) {
          machines = ['m1', 'm2', 'm3', 'm4', 'm2'].filter(() => random(3) > 0); // came, went, twice
        } else if (what === 3) {
          [from, len] = [random(20), 1 + random(12)]; // another range
        } else {
          from += random(4) - 1; // slid by a step or three, or back
          from = Math.max(from, 0);
        }
        series = machines.map((m) => frame(m, from, from + len, values));
      }
      const panel = what === 5 && last ? last.series : series; // the same data object again
      const names = panel.map((f) => JSON.stringify(f.fields[1].labels)).join();
      sendTo(sender, store, panel, last !== undefined && names === last.names && random(4) > 0);
      assert.deepEqual(store.held, fromScratch(panel), `run ${run}, step ${step}`);
      last = { series: panel, names };
    }
  }
});

/** As `send`, into the store; the same series object is handed as the same PanelData. */
const datas = new WeakMap<object, object>();
function sendTo(sender: FrameSender, store: Store, series: object[], sameStructure: boolean) {
  structureRev += sameStructure ? 0 : 1;
  let data = datas.get(series) as { structureRev: number } | undefined;
  if (!data || data.structureRev !== structureRev) {
    data = { series, structureRev, state: 'Done' } as never;
    datas.set(series, data!);
  }
  const props = { data, options: {}, timeRange: { from: 0, to: 1 }, width: 100, height: 100, replaceVariables: (s: string) => s };
  sender.update(store, props as never, theme as never);
}
