// Grafana's data, theme and options as the update the Rust side applies
// (store.rs): strings and configs once, frame descriptions once (as numbers
// naming them), samples as typed arrays, a column the range slid as its new
// samples only, every refresh naming the frames it holds.
import { DataFrame, Field, GrafanaTheme2, InterpolateFunction, Labels, PanelProps } from '@grafana/data';

import type { StatescopeOptions } from './options';

// Markers in the layout (store.rs's SAME_TIMES, UNCHANGED and SLID) and the
// description's "none" (store.rs's NONE).
const SAME_TIMES = 0xffffffff;
const UNCHANGED = 0xfffffffe;
const SLID = 0xfffffffd;
const NONE = 0xffffffff;
/** Field types by their number in a description (input.rs's FieldType::from_code). */
const TYPES: Record<string, number> = { time: 0, number: 1, string: 2, boolean: 3 };
const OTHER = 4;

/** The wasm panel's update entry (wasm.rs): false when it no longer holds
 * the frames, strings or configs this update names, and wants them all
 * described again. */
export interface Updatable {
  update(meta: string, describe: Uint32Array, layout: Uint32Array, numbers: Float64Array): boolean;
}

/** Samples of time and number fields, one growing Float64Array (NaN for null). */
class Numbers {
  // Empty until an update needs room: a FrameSender is made on every render of the panel.
  buffer = new Float64Array(0);
  length = 0;
  /** How many numbers the rest of the update will likely add (the frames
   * left, each like the last one): a buffer that must grow is made that
   * size at once, not doubled up to it. */
  ahead = 0;

  /** Makes room for `n` more numbers. */
  private grow(n: number) {
    const grown = new Float64Array(Math.max(2 * this.buffer.length, this.length + n + this.ahead, 1 << 16));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** Appends a field's values from `from` on; false (nothing kept) if one is neither a number nor null. */
  add(values: ArrayLike<unknown>, from = 0): boolean {
    const n = values.length - from;
    if (this.length + n > this.buffer.length) {
      this.grow(n);
    }
    const out = this.buffer;
    const at = this.length - from;
    for (let i = from; i < values.length; i++) {
      const v = values[i];
      if (typeof v === 'number') {
        out[at + i] = v;
      } else if (v == null) {
        out[at + i] = NaN;
      } else {
        return false;
      }
    }
    this.length += n;
    return true;
  }

  /** The numbers of this update; the buffer is let go when it is more than
   * twice what the data's samples need (`samples`, counted while encoding),
   * as after a query that returned much more than it does now. */
  take(samples: number): Float64Array {
    const taken = this.buffer.subarray(0, this.length);
    if (this.buffer.length > 2 * samples + (1 << 16)) {
      this.buffer = new Float64Array(0);
    }
    this.length = 0;
    this.ahead = 0;
    return taken;
  }
}

/** A growing Uint32Array: `describe` and `layout`, reused from update to update. */
class Words {
  buffer = new Uint32Array(0);
  length = 0;

  push(word: number) {
    if (this.length === this.buffer.length) {
      const grown = new Uint32Array(Math.max(2 * this.buffer.length, 1024));
      grown.set(this.buffer);
      this.buffer = grown;
    }
    this.buffer[this.length++] = word;
  }

  /** The words of this update (the wasm copies them before the next). */
  take(): Uint32Array {
    const taken = this.buffer.subarray(0, this.length);
    this.length = 0;
    return taken;
  }
}

/** Words `from..to` as a string: a frame description's identity (two UTF-16 units a word). */
function wordsKey(words: Uint32Array, from: number, to: number): string {
  const halves = new Uint16Array(words.buffer, words.byteOffset, 2 * to);
  let key = '';
  for (let at = 2 * from; at < 2 * to; at += 8192) {
    key += String.fromCharCode.apply(null, halves.subarray(at, Math.min(at + 8192, 2 * to)) as unknown as number[]);
  }
  return key;
}

/** Whether the wasm would hold the same number for samples `a` and `b`:
 * equal numbers (0 and -0 apart), or both null, undefined or NaN (sent as
 * NaN). The loops call it only where `Object.is` (which V8 compiles to a
 * compare for numbers, and which tells 0 from -0) says they differ: rare. */
function sameSample(a: unknown, b: unknown): boolean {
  return a === b ? a !== 0 || 1 / a === 1 / (b as number) : (a == null || a !== a) && (b == null || b !== b);
}

/** Whether `values` starts with `kept` from `k` on (`kept.length - k`
 * samples, at least one), read in full: a sample Prometheus corrected
 * late must reach the wasm, so any difference sends the whole column. */
function slidBy(kept: ArrayLike<unknown>, values: ArrayLike<unknown>, k: number): boolean {
  const overlap = kept.length - k;
  if (k < 0 || overlap <= 0 || overlap > values.length) {
    return false;
  }
  for (let i = 0; i < overlap; i++) {
    const a = kept[k + i];
    const b = values[i];
    if (!Object.is(a, b) && !sameSample(a, b)) {
      return false;
    }
  }
  return true;
}

/** Whether two time columns hold the same samples. The same loop as
 * `slidBy`'s, kept apart so that each compiles for its own arrays (times
 * are doubles, one-hot values small integers). */
function sameTimes(a: ArrayLike<unknown>, b: ArrayLike<unknown>): boolean {
  if (a.length !== b.length) {
    return false;
  }
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (!Object.is(x, y) && !sameSample(x, y)) {
      return false;
    }
  }
  return true;
}

/** Where `first` is in the times `kept`: at `guess` (the slide of the frame
 * before), else found by halving (times ascend); -1 when not found. Only a
 * guess: `slidBy` checks every sample of the overlap it implies. */
function slideOf(kept: ArrayLike<unknown>, first: unknown, guess: number): number {
  if (guess >= 0 && guess < kept.length && kept[guess] === first) {
    return guess;
  }
  let lo = 0;
  let hi = kept.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const t = kept[mid] as number;
    if (t === first) {
      return mid;
    }
    if (t < (first as number)) {
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return -1;
}

/** The number fields of a frame holding text: mostly none. */
const NO_CELLS: readonly number[] = [];

/** The descriptions one update wrote (a copy: the buffer is reused), under
 * the table generation they name; `live` counts the words of its frames
 * still kept, as of update `counted`. */
interface Described {
  words: Uint32Array;
  generation: string;
  live: number;
  counted: number;
}

/** What was sent of a frame: its id, the value arrays its numeric fields
 * had, how many strings and configs its description names, the update
 * that last named it (one kept frame stands for one frame of an update),
 * and where its description is (words `from..to` of `described`), which
 * is its key. The key is made only when a frame is not the one at its
 * place (Grafana's structure changed): a first render and the refreshes
 * after it never need it. */
interface Sent {
  id: number;
  columns: Array<ArrayLike<unknown>>;
  refs: number;
  update: number;
  /** One of the two is set, at least: the key, or where to make it from. */
  key: string | undefined;
  described: Described | undefined;
  from: number;
  to: number;
}

/** A kept frame's key (see `Sent`), made once. */
function keyOf(sent: Sent): string {
  if (sent.key === undefined) {
    const { generation, words } = sent.described!;
    sent.key = generation + wordsKey(words, sent.from, sent.to);
  }
  return sent.key;
}

/** A table the wasm keeps too (store.rs): each value sent once, then named
 * by its index. */
class Interned<T> {
  ids = new Map<string, number>();
  fresh: T[] = [];

  id(key: string, value: T): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(key, id);
      this.fresh.push(value);
    }
    return id;
  }
}

const numeric = (field: Field) => field.type === 'time' || field.type === 'number';

/** JSON of a config part that may be an object (small: a colour, mappings). */
function objectKey(value: unknown): string {
  return value === null || typeof value !== 'object' ? String(value ?? '') : JSON.stringify(value);
}

/** The parts of a field's colour the Rust side reads (input.rs's FieldColor),
 * or undefined when it is not of that shape. */
function colorParts(color: unknown): { mode: string; fixedColor: string | undefined } | undefined {
  const c = color as { mode?: unknown; fixedColor?: unknown } | null | undefined;
  return c && typeof c.mode === 'string' && (c.fixedColor == null || typeof c.fixedColor === 'string')
    ? { mode: c.mode, fixedColor: (c.fixedColor as string | null | undefined) ?? undefined }
    : undefined;
}

/** A field's colour as sent: its parts, or the value as it is when it is
 * not of that shape (the Rust side decides). */
function fieldColor(color: unknown): unknown {
  return colorParts(color) ?? color;
}

/** The config the Rust side reads (input.rs's FieldConfig), variables filled in. */
function fieldConfig(field: Field, replaceVariables: InterpolateFunction) {
  const c = field.config ?? {};
  return {
    // A display name may be a template (`${__field.labels.key_id}`), resolved
    // as Grafana's own panels do, with the field's scoped variables.
    displayName: c.displayName ? replaceVariables(c.displayName, field.state?.scopedVars) : undefined,
    displayNameFromDS: c.displayNameFromDS || undefined,
    unit: c.unit,
    mappings: c.mappings?.length ? c.mappings : undefined,
    color: fieldColor(c.color),
    // Dashboard variables are filled in here; per-machine placeholders
    // (${__field.labels.x}) are left for the Rust side.
    links: c.links?.length
      ? c.links.map((link) => ({
          title: replaceVariables(link.title ?? ''),
          url: replaceVariables(link.url ?? ''),
          targetBlank: Boolean(link.targetBlank),
        }))
      : undefined,
    interval: c.interval ?? undefined,
  };
}

/** The part of a frame's identity that Grafana's `structureRev` does not
 * cover (compareDataFrameStructures): the refId, the fields' `interval` and
 * the config after variables are filled in. Just the refId unless a field
 * has a display name, links or an interval. */
function unversioned(frame: DataFrame, replaceVariables: InterpolateFunction): string {
  let part = frame.refId ?? '';
  const fields = frame.fields;
  for (let i = 0; i < fields.length; i++) {
    const c = fields[i].config;
    if (c?.displayName || c?.links?.length) {
      const f = fieldConfig(fields[i], replaceVariables);
      part += `\u001d${i}\u001e${f.displayName ?? ''}\u001e${f.interval ?? ''}\u001e${f.links ? JSON.stringify(f.links) : ''}`;
    } else if (c?.interval != null) {
      part += `\u001d${i}\u001e\u001e${c.interval}\u001e`;
    }
  }
  return part;
}

/** Whether two label sets are equal (same names, same values). */
function sameLabels(a: Labels | undefined, b: Labels | undefined): boolean {
  if (a === b) {
    return true;
  }
  if (!a || !b) {
    return false;
  }
  let names = 0;
  for (const name in a) {
    if (a[name] !== b[name]) {
      return false;
    }
    names++;
  }
  for (const _ in b) {
    names--;
  }
  return names === 0;
}

/** The JSON of the last mappings array seen in an update: Grafana hands
 * every field of a panel the same array. */
interface MappingsSeen {
  of?: unknown;
  json: string;
}

/** A field config's identity: the parts the Rust side reads. */
function configKey(c: FieldConfigs[number], mappings: MappingsSeen): string {
  if (c.mappings !== mappings.of) {
    mappings.of = c.mappings;
    mappings.json = objectKey(c.mappings);
  }
  const parts = colorParts(c.color);
  const colorKey = parts ? `${parts.mode}\u001f${parts.fixedColor ?? ''}` : objectKey(c.color);
  return `${c.displayName ?? ''}\u001e${c.displayNameFromDS ?? ''}\u001e${c.unit ?? ''}\u001e${c.interval ?? ''}\u001e${mappings.json}\u001e${colorKey}\u001e${c.links ? JSON.stringify(c.links) : ''}`;
}

/** Whether `a` has the key `b` has (`configKey`), told part by part:
 * strict equality, and the same mappings array (Grafana hands every field
 * the same one; the update reads it once, see `MappingsSeen`). False when
 * unsure (links, a colour of another shape): the key decides then. */
function sameConfig(a: FieldConfigs[number], b: FieldConfigs[number] | undefined): boolean {
  if (!b || a.links || b.links) {
    return false;
  }
  return (
    a.displayName === b.displayName &&
    a.displayNameFromDS === b.displayNameFromDS &&
    a.unit === b.unit &&
    a.interval === b.interval &&
    a.mappings === b.mappings &&
    (a.color === b.color || (isParts(a.color) && isParts(b.color) && a.color.mode === b.color.mode && a.color.fixedColor === b.color.fixedColor))
  );
}

/** Whether a field's colour as sent (`fieldColor`) is its parts: a value
 * `colorParts` refused is never of this shape. */
function isParts(color: unknown): color is { mode: string; fixedColor: string | undefined } {
  const c = color as { mode?: unknown; fixedColor?: unknown } | null | undefined;
  return typeof c?.mode === 'string' && (c.fixedColor === undefined || typeof c.fixedColor === 'string');
}

/** Grafana colour names (all hue shades and aliases) and theme roles to CSS colours. */
export function themePalette(theme: GrafanaTheme2): Record<string, string> {
  const palette: Record<string, string> = {};
  for (const hue of theme.visualization.hues) {
    for (const shade of hue.shades) {
      palette[shade.name] = shade.color;
      for (const alias of shade.aliases ?? []) {
        palette[alias] = shade.color;
      }
    }
  }
  Object.assign(palette, {
    text: theme.colors.text.primary,
    textSecondary: theme.colors.text.secondary,
    background: theme.colors.background.primary,
    backgroundSecondary: theme.colors.background.secondary,
    border: theme.colors.border.medium,
    borderWeak: theme.colors.border.weak,
    primary: theme.colors.primary.main,
    ok: theme.colors.success.main,
    info: theme.colors.info.main,
    warning: theme.colors.warning.main,
    critical: theme.colors.error.main,
  });
  return palette;
}

/** One panel's side of the frames the wasm keeps (store.rs): an id per frame
 * description, so labels and config cross once, not on every refresh. */
export class FrameSender {
  private nextId = 0;
  /** Reused from update to update (the wasm copies what it is handed). */
  private numbers = new Numbers();
  private describe = new Words();
  private layout = new Words();
  /** The string and config tables the wasm keeps too, and how many label
   * sets it was sent since they started (it keeps those by their strings). */
  private strings = new Interned<string>();
  private configs = new Interned<FieldConfigs[number]>();
  private labelSets = 0;
  /** Strings, configs and fields the last update's frames name: the tables
   * start over when they outgrow twice that (frames that came and went). */
  private live = 0;
  private reset = true;
  /** Updates encoded: `Sent.update` says which last named a kept frame. */
  private updates = 0;
  /** Starts every frame key: keys are made of table indices, which name
   * other strings once the tables start over, so each start has its own. */
  private generation = '';
  /** The last update's `structureRev`, and per frame (in order) its
   * field count, its `unversioned` part and what was sent of it: while
   * Grafana says the structure is the same and those parts are too, a
   * frame is the one at its place last time, without building its key. */
  private structureRev: number | undefined;
  private fieldCounts: number[] = [];
  private unversioned: string[] = [];
  private sents: Array<Sent | undefined> = [];
  /** Every field's labels, frame after frame: compared too, so that a
   * structureRev that restarted (a new query subscription) cannot pass one
   * machine's frame for another's. */
  private labels: Array<Labels | undefined> = [];
  /** The data of the last update. Only while it is the same object may a
   * column be taken as unchanged because its array is: a streaming
   * datasource appends to its arrays in place, then hands a new PanelData. */
  private lastData: unknown;
  /** The strings (and their indices) at each place of the description
   * written last: frames alike name mostly the same strings at the same
   * places (a machine's labels, the field names), found so without hashing
   * them into the tables. Emptied when the tables start over. */
  private memoStrings: Array<string | undefined> = [];
  private memoStringIds: number[] = [];

  /** Hands `panel` the props' data, options, time range, size and theme. The
   * stages are timed as performance measures `statescope:marshal`,
   * `statescope:decode` (marked by the wasm) and `statescope:view`. */
  update(panel: Updatable, props: PanelProps<StatescopeOptions>, theme: GrafanaTheme2) {
    performance.mark('statescope:start');
    let [meta, describe, layout, numbers] = this.encode(props, theme);
    performance.mark('statescope:marshalled');
    if (!panel.update(meta, describe, layout, numbers)) {
      // The wasm holds none of our frames, strings or configs (it was reset): describe them all.
      this.forget();
      this.lastData = undefined;
      this.reset = true;
      [meta, describe, layout, numbers] = this.encode(props, theme);
      performance.mark('statescope:marshalled');
      panel.update(meta, describe, layout, numbers);
    }
    performance.mark('statescope:updated');
    for (const [name, from, to] of [
      ['statescope:marshal', 'statescope:start', 'statescope:marshalled'],
      ['statescope:decode', 'statescope:marshalled', 'statescope:decoded'],
      ['statescope:view', 'statescope:decoded', 'statescope:updated'],
    ]) {
      // Only the last update's: a dashboard left open must not grow the timeline.
      performance.clearMeasures(name);
      try {
        performance.measure(name, from, to);
      } catch {
        // No decode mark: the update failed before it.
      }
    }
    for (const mark of ['statescope:start', 'statescope:marshalled', 'statescope:decoded', 'statescope:updated']) {
      performance.clearMarks(mark);
    }
  }

  /** Forgets every frame sent: the next update describes them all. */
  private forget() {
    this.fieldCounts = [];
    this.unversioned = [];
    this.sents = [];
    this.labels = [];
  }

  private encode(
    props: PanelProps<StatescopeOptions>,
    theme: GrafanaTheme2
  ): [string, Uint32Array, Uint32Array, Float64Array] {
    const { data, options, timeRange, width, height, replaceVariables } = props;
    const reset = this.reset || this.strings.ids.size + this.configs.ids.size + this.labelSets > 2 * this.live + 4096;
    if (reset) {
      this.strings = new Interned<string>();
      this.configs = new Interned<FieldConfigs[number]>();
      this.labelSets = 0;
      this.reset = false;
      this.generation = String.fromCharCode(this.updates & 0xffff, this.updates >>> 16);
      this.memoStrings = [];
    }
    const stamp = ++this.updates;
    const out: Out = { cells: [], lastTimes: undefined, slide: -1, samples: 0 };
    const sameData = data === this.lastData;
    this.lastData = data;
    // Grafana counts up `structureRev` when the frames' names, fields, labels
    // or config change (PanelQueryRunner / VizPanel.applyFieldConfig).
    const sameStructure = data.structureRev !== undefined && data.structureRev === this.structureRev;
    const series = data.series;
    const fieldCounts: number[] = [];
    const unversionedParts: string[] = [];
    const sents: Array<Sent | undefined> = [];
    const labels: Array<Labels | undefined> = [];
    // The kept frames by key, in order, made when a frame is not the one at
    // its place. Frames alike are matched in order: each to the one whose
    // arrays it has (a streaming datasource changes its arrays in place, so
    // another frame's arrays no longer hold what was sent).
    let byKey: Map<string, Sent[]> | undefined;
    const d = this.describe;
    // Where the frames described in this update keep their descriptions (filled in at the end).
    const described: Described = { words: d.buffer, generation: this.generation, live: 0, counted: 0 };
    let describedKept = false;
    const ctx: Context = { replaceVariables, mappings: { json: '' }, configs: [], configIds: [] };
    let live = 0;
    for (let f = 0; f < series.length; f++) {
      const frame = series[f];
      const fields = frame.fields;
      const slot = labels.length;
      let same = sameStructure && f < this.fieldCounts.length && fields.length === this.fieldCounts[f];
      let describable = true;
      for (let i = 0; i < fields.length; i++) {
        const field = fields[i];
        same &&= sameLabels(field.labels, this.labels[slot + i]);
        describable &&= numeric(field);
        labels.push(field.labels);
      }
      const part = unversioned(frame, replaceVariables);
      same &&= part === this.unversioned[f];
      // A frame with text fields (tables) is described whole every time, under a new id.
      let before = same && describable ? this.sents[f] : undefined;
      let key: string | undefined;
      // Where this frame's description starts in `describe`, once written.
      let start = -1;
      if (describable && !before) {
        // Its description (without the id) is its key: written, then taken back if it is kept.
        start = d.length;
        this.describeFrame(frame, 0, ctx);
        byKey ??= this.keptByKey();
        if (byKey.size) {
          key = this.generation + wordsKey(d.buffer, start + 1, d.length);
          before = byKey.get(key)?.find((kept) => kept.update !== stamp);
        }
        if (before) {
          d.length = start;
          start = -1;
          this.labelSets -= fields.length;
        }
      }
      if (before?.update === stamp) {
        // Two frames alike in one update: the second is described on its own.
        before = undefined;
      }
      let cells = before ? this.encodeSamples(frame, before.id, before, sameData, out) : NO_CELLS;
      if (cells.length && before) {
        // Text in a number field this time: described anew, with those cells.
        before = undefined;
      }
      let sent: Sent | undefined = before;
      // (A frame with text fields is never kept: it is described anew each time.)
      if (before) {
        before.update = stamp;
        before.columns = out.columns!;
        live += before.refs;
      } else {
        const id = ++this.nextId;
        if (start < 0) {
          start = d.length;
          this.describeFrame(frame, id, ctx);
        }
        d.buffer[start] = id;
        const refs = d.length - start - 2 - fields.length;
        live += refs;
        cells = this.encodeSamples(frame, id, undefined, false, out);
        for (let i = 0; i < fields.length; i++) {
          if (!numeric(fields[i]) || cells.includes(i)) {
            out.cells.push([id, i, Array.from(fields[i].values as ArrayLike<unknown>)]);
          }
        }
        if (describable && !cells.length) {
          sent = { id, columns: out.columns!, refs, update: stamp, key, described, from: start + 1, to: d.length };
          describedKept = true;
        }
      }
      out.columns = undefined;
      fieldCounts.push(fields.length);
      unversionedParts.push(part);
      sents.push(sent);
      // The rest of the update's numbers, if the frames left are like this one.
      this.numbers.ahead = Math.ceil(((series.length - f - 1) * this.numbers.length) / (f + 1));
    }
    this.live = live;
    this.structureRev = data.structureRev;
    this.fieldCounts = fieldCounts;
    this.unversioned = unversionedParts;
    this.sents = sents;
    this.labels = labels;
    const meta = JSON.stringify({
      reset,
      strings: this.strings.fresh,
      configs: this.configs.fresh,
      cells: out.cells,
      options: { ...options, search: replaceVariables(options.search ?? '') },
      timeRange: { from: timeRange.from.valueOf(), to: timeRange.to.valueOf() },
      width,
      height,
      theme: { isDark: theme.isDark, palette: themePalette(theme) },
      now: Date.now(),
    });
    this.strings.fresh = [];
    this.configs.fresh = [];
    const describe = d.take();
    described.words = describedKept ? describe.slice() : describe;
    this.trimDescriptions(stamp);
    return [meta, describe, this.layout.take(), this.numbers.take(out.samples)];
  }

  /** Lets go of each copy of descriptions that is more than half frames
   * no longer kept, after making its survivors' keys: what the copies hold
   * stays within twice the descriptions of the frames kept. */
  private trimDescriptions(stamp: number) {
    for (const sent of this.sents) {
      const described = sent?.described;
      if (described) {
        if (described.counted !== stamp) {
          described.counted = stamp;
          described.live = 0;
        }
        // The frame's words and its id.
        described.live += sent.to - sent.from + 1;
      }
    }
    for (const sent of this.sents) {
      if (sent?.described && 2 * sent.described.live < sent.described.words.length) {
        keyOf(sent);
        sent.described = undefined;
      }
    }
  }

  /** The frames kept from the last update, by key. */
  private keptByKey(): Map<string, Sent[]> {
    const byKey = new Map<string, Sent[]>();
    for (const kept of this.sents) {
      if (kept) {
        const k = keyOf(kept);
        const alike = byKey.get(k);
        alike ? alike.push(kept) : byKey.set(k, [kept]);
      }
    }
    return byKey;
  }

  /** Writes frame `id`'s description into `describe`: its refId, name and
   * field count, then per field its name, type, config and labels, each a
   * string or config index (interned). */
  private describeFrame(frame: DataFrame, id: number, ctx: Context) {
    const d = this.describe;
    const start = d.length;
    d.push(id);
    d.push(this.str(frame.refId, start));
    d.push(this.str(frame.name, start));
    const fields = frame.fields;
    d.push(fields.length);
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i];
      d.push(this.str(field.name, start));
      d.push(TYPES[field.type] ?? OTHER);
      const config = fieldConfig(field, ctx.replaceVariables);
      if (!sameConfig(config, ctx.configs[i])) {
        ctx.configs[i] = config;
        ctx.configIds[i] = this.configs.id(configKey(config, ctx.mappings), config);
      }
      d.push(ctx.configIds[i]);
      const count = d.length;
      d.push(0);
      let names = 0;
      for (const name in field.labels) {
        d.push(this.str(name, start));
        d.push(this.str(String(field.labels[name]), start));
        names++;
      }
      d.buffer[count] = names;
    }
    this.labelSets += fields.length;
  }

  /** The index of string `s`, about to be written into the description
   * that starts at `start` (see `memoStrings`). */
  private str(s: string | undefined, start: number): number {
    if (s == null) {
      return NONE;
    }
    const at = this.describe.length - start;
    if (this.memoStrings[at] !== s) {
      this.memoStrings[at] = s;
      this.memoStringIds[at] = this.strings.id(s, s);
    }
    return this.memoStringIds[at];
  }

  /** Adds a frame's id and samples to the layout and numbers (markers where
   * the wasm has them already), and sets `out.columns` to the value arrays
   * sent. Returns the number fields holding text (`cells`), after undoing
   * what it wrote when the frame was kept (`before`): it is described anew. */
  private encodeSamples(
    frame: DataFrame,
    id: number,
    before: Sent | undefined,
    sameData: boolean,
    out: Out
  ): readonly number[] {
    const layout = this.layout;
    const numbers = this.numbers;
    const [startLayout, startNumbers, startTimes] = [layout.length, numbers.length, out.lastTimes];
    const columns: Array<ArrayLike<unknown>> = [];
    let cells = NO_CELLS;
    layout.push(id);
    const fields = frame.fields;
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i];
      if (!numeric(field)) {
        continue;
      }
      const values = field.values as ArrayLike<unknown>;
      out.samples += values.length;
      const isTime = field.type === 'time';
      const kept = before?.columns[columns.length];
      columns.push(values);
      if (isTime && kept && values.length) {
        // How far the range slid: where the frame's first instant is in the times sent before.
        out.slide = slideOf(kept, values[0], out.slide);
      }
      let marker: number;
      let from = 0;
      if (sameData && kept === values) {
        marker = UNCHANGED;
      } else if (isTime && out.lastTimes && (out.lastTimes === values || sameTimes(out.lastTimes, values))) {
        // (The same array twice in one update holds the same samples.)
        marker = SAME_TIMES;
      } else if (kept && kept !== values && slidBy(kept, values, out.slide)) {
        // An array Grafana handed before may have been changed in place since
        // (streaming): only another array is compared with it.
        marker = SLID;
        from = kept.length - out.slide;
      } else {
        marker = values.length;
      }
      if (marker === UNCHANGED || marker === SAME_TIMES || numbers.add(values, from)) {
        layout.push(marker);
        if (marker === SLID) {
          layout.push(out.slide);
          layout.push(values.length - from);
        }
        if (isTime) {
          out.lastTimes = values;
        }
      } else {
        cells = [...cells, i];
      }
    }
    if (cells.length && before) {
      layout.length = startLayout;
      numbers.length = startNumbers;
      out.lastTimes = startTimes;
    }
    out.columns = columns;
    return cells;
  }
}

type FieldConfigs = Array<ReturnType<typeof fieldConfig>>;

/** What describing a frame needs of its update, and the config (and its
 * index) of each field of the frame described last: in one update, frames
 * alike have equal configs, told so without making their keys. */
interface Context {
  replaceVariables: InterpolateFunction;
  mappings: MappingsSeen;
  configs: FieldConfigs;
  configIds: number[];
}

/** The update being written (besides the numbers, describe and layout). */
interface Out {
  cells: Array<[number, number, unknown[]]>;
  /** The samples of the last time field, while the wasm's last time field is that one. */
  lastTimes: ArrayLike<unknown> | undefined;
  /** How far the current frame's range slid (the last frame's, as the guess for the next). */
  slide: number;
  /** The numeric fields' samples, counted: what the numbers buffer is sized against. */
  samples: number;
  /** The value arrays of the frame just encoded. */
  columns?: Array<ArrayLike<unknown>>;
}
