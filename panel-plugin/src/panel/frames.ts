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
  buffer = new Float64Array(1 << 16);
  length = 0;

  /** Empties it for an update of about `size` numbers: the buffer is kept
   * when it fits (a refresh needs as much as the last one), else made that
   * size at once rather than doubled up to it, copying as it grows. */
  clear(size: number) {
    this.length = 0;
    if (this.buffer.length < size || this.buffer.length > 2 * size + (1 << 16)) {
      this.buffer = new Float64Array(Math.max(size, 1 << 16));
    }
  }

  /** Appends a field's values from `from` on; false (nothing kept) if one is neither a number nor null. */
  add(values: ArrayLike<unknown>, from = 0): boolean {
    const n = values.length - from;
    if (this.length + n > this.buffer.length) {
      const grown = new Float64Array(Math.max(this.buffer.length * 2, this.length + n));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    const out = this.buffer;
    const at = this.length;
    for (let i = 0; i < n; i++) {
      const v = values[from + i];
      if (typeof v === 'number') {
        out[at + i] = v;
      } else if (v === null || v === undefined) {
        out[at + i] = NaN;
      } else {
        return false;
      }
    }
    this.length += n;
    return true;
  }

}

/** Whether `values` starts with `kept` from `k` on (`kept.length - k`
 * samples, at least one), read in full: a sample Prometheus corrected
 * late must reach the wasm, so any difference sends the whole column.
 * Samples are the same when the wasm would hold the same number: equal
 * numbers (0 and -0 apart), or both null, undefined or NaN (sent as NaN). */
function slidBy(kept: ArrayLike<unknown>, values: ArrayLike<unknown>, k: number): boolean {
  const overlap = kept.length - k;
  if (k < 0 || overlap <= 0 || overlap > values.length) {
    return false;
  }
  for (let i = 0; i < overlap; i++) {
    const a = kept[k + i];
    const b = values[i];
    if (a !== b ? !((a == null || a !== a) && (b == null || b !== b)) : a === 0 && 1 / a !== 1 / (b as number)) {
      return false;
    }
  }
  return true;
}

/** Whether two columns hold the same samples. */
function sameColumn(a: ArrayLike<unknown>, b: ArrayLike<unknown>): boolean {
  return a.length === b.length && slidBy(a, b, 0);
}

/** What was sent of a frame: its id, the value arrays its numeric fields
 * had, and how many strings and configs its description names. */
interface Sent {
  id: number;
  columns: Array<ArrayLike<unknown>>;
  refs: number;
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
    color: c.color,
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
 * the config after variables are filled in. Small unless a field has a
 * display name, links or an interval. */
function unversioned(frame: DataFrame, replaceVariables: InterpolateFunction): string {
  let part = frame.refId ?? '';
  for (const field of frame.fields) {
    const c = field.config;
    part += '\u001d';
    if (c?.displayName || c?.links?.length || c?.interval != null) {
      const f = fieldConfig(field, replaceVariables);
      part += `${f.displayName ?? ''}\u001e${f.interval ?? ''}\u001e${f.links ? JSON.stringify(f.links) : ''}`;
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

/** A field config's identity: the parts the Rust side reads. */
function configKey(c: FieldConfigs[number]): string {
  return `${c.displayName ?? ''}\u001e${c.displayNameFromDS ?? ''}\u001e${c.unit ?? ''}\u001e${c.interval ?? ''}\u001e${objectKey(c.mappings)}\u001e${objectKey(c.color)}\u001e${c.links ? JSON.stringify(c.links) : ''}`;
}

/** A frame's identity: everything of its description but the samples. */
function frameKey(frame: DataFrame, configKeys: string[]): string {
  let key = `${frame.refId ?? ''}\u001d${frame.name ?? ''}`;
  frame.fields.forEach((field, i) => {
    key += `\u001d${field.name}\u001e${field.type}\u001e`;
    for (const name in field.labels) {
      key += `${name}\u001f${field.labels[name]}\u001f`;
    }
    key += `\u001e${configKeys[i]}`;
  });
  return key;
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
  private sent = new Map<string, Sent>();
  private nextId = 0;
  /** Reused from update to update (the wasm copies what it is handed). */
  private numbers = new Numbers();
  /** The string and config tables the wasm keeps too, and how many label
   * sets it was sent since they started (it keeps those by their strings). */
  private strings = new Interned<string>();
  private configs = new Interned<FieldConfigs[number]>();
  private labelSets = 0;
  /** Strings, configs and fields the last update's frames name: the tables
   * start over when they outgrow twice that (frames that came and went). */
  private live = 0;
  private reset = true;
  /** The last update's `structureRev`, and per frame (in order) its key and
   * its `unversioned` part: while Grafana says the structure is the same and
   * that part is too, a frame's key is the one it had, without building it. */
  private structureRev: number | undefined;
  private keys: Array<string | undefined> = [];
  private unversioned: string[] = [];
  /** Every field's labels, frame after frame: compared too, so that a
   * structureRev that restarted (a new query subscription) cannot pass one
   * machine's frame for another's. */
  private labels: Array<Labels | undefined> = [];
  /** The data of the last update. Only while it is the same object may a
   * column be taken as unchanged because its array is: a streaming
   * datasource appends to its arrays in place, then hands a new PanelData. */
  private lastData: unknown;

  /** Hands `panel` the props' data, options, time range, size and theme. The
   * stages are timed as performance measures `statescope:marshal`,
   * `statescope:decode` (marked by the wasm) and `statescope:view`. */
  update(panel: Updatable, props: PanelProps<StatescopeOptions>, theme: GrafanaTheme2) {
    performance.mark('statescope:start');
    let [meta, describe, layout, numbers] = this.encode(props, theme);
    performance.mark('statescope:marshalled');
    if (!panel.update(meta, describe, layout, numbers)) {
      // The wasm holds none of our frames, strings or configs (it was reset): describe them all.
      this.sent.clear();
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

  private encode(
    props: PanelProps<StatescopeOptions>,
    theme: GrafanaTheme2
  ): [string, Uint32Array, Uint32Array, Float64Array] {
    const { data, options, timeRange, width, height, replaceVariables } = props;
    let size = 0;
    for (const frame of data.series) {
      for (const field of frame.fields) {
        size += numeric(field) ? field.values.length : 0;
      }
    }
    this.numbers.clear(size);
    const reset = this.reset || this.strings.ids.size + this.configs.ids.size + this.labelSets > 2 * this.live + 4096;
    if (reset) {
      this.strings = new Interned<string>();
      this.configs = new Interned<FieldConfigs[number]>();
      this.labelSets = 0;
      this.reset = false;
    }
    const out: Out = { numbers: this.numbers, layout: [], describe: [], cells: [], lastTimes: undefined };
    const sent = new Map<string, Sent>();
    const sameData = data === this.lastData;
    this.lastData = data;
    // Grafana counts up `structureRev` when the frames' names, fields, labels
    // or config change (PanelQueryRunner / VizPanel.applyFieldConfig).
    const sameStructure =
      data.structureRev !== undefined && data.structureRev === this.structureRev && data.series.length === this.keys.length;
    const keys: Array<string | undefined> = [];
    const unversionedParts: string[] = [];
    const labels: Array<Labels | undefined> = [];
    let live = 0;
    data.series.forEach((frame, f) => {
      const slot = labels.length;
      let sameFields = sameStructure;
      for (const field of frame.fields) {
        sameFields &&= sameLabels(field.labels, this.labels[labels.length]);
        labels.push(field.labels);
      }
      let configs: Configs | undefined;
      const config = () => {
        if (!configs) {
          const all = frame.fields.map((field) => fieldConfig(field, replaceVariables));
          configs = { all, keys: all.map(configKey) };
        }
        return configs;
      };
      const part = unversioned(frame, replaceVariables);
      unversionedParts.push(part);
      // A frame with text fields (tables) is described whole every time, under a new id.
      let key: string | undefined;
      if (frame.fields.every(numeric)) {
        const same = sameFields && part === this.unversioned[f] && slot + frame.fields.length <= this.labels.length;
        key = same ? this.keys[f] : frameKey(frame, config().keys);
      }
      keys.push(key);
      const before = key === undefined ? undefined : this.sent.get(key);
      let done = this.encodeFrame(frame, config, before, sameData, out);
      if (done.cells.length && before) {
        // Text in a number field this time: described anew, with those cells.
        done = this.encodeFrame(frame, config, undefined, false, out);
      }
      live += done.sent.refs;
      if (key !== undefined && !done.cells.length) {
        sent.set(key, done.sent);
      }
    });
    this.sent = sent;
    this.live = live;
    this.structureRev = data.structureRev;
    this.keys = keys;
    this.unversioned = unversionedParts;
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
    return [
      meta,
      Uint32Array.from(out.describe),
      Uint32Array.from(out.layout),
      out.numbers.buffer.subarray(0, out.numbers.length),
    ];
  }

  /** Adds one frame to the update: its id, its samples (or markers) and,
   * when the wasm has not seen it, its description. Undone when a number
   * field holds text (`cells`) and the frame was seen before. */
  private encodeFrame(
    frame: DataFrame,
    configs: () => Configs,
    before: Sent | undefined,
    sameData: boolean,
    out: Out
  ): { sent: Sent; cells: number[] } {
    const start = { layout: out.layout.length, numbers: out.numbers.length, lastTimes: out.lastTimes };
    const id = before?.id ?? ++this.nextId;
    const columns: Array<ArrayLike<unknown>> = [];
    const cells: number[] = [];
    // How far the range slid: where the frame's first instant is in the times sent before.
    let slide = 0;
    out.layout.push(id);
    frame.fields.forEach((field, i) => {
      if (!numeric(field)) {
        return;
      }
      const values = field.values as ArrayLike<unknown>;
      const isTime = field.type === 'time';
      const kept = before?.columns[columns.length];
      columns.push(values);
      if (isTime && kept && values.length) {
        slide = 0;
        while (slide < kept.length && kept[slide] !== values[0]) {
          slide++;
        }
      }
      let marker: number;
      let from = 0;
      if (sameData && kept === values) {
        marker = UNCHANGED;
      } else if (isTime && out.lastTimes && sameColumn(out.lastTimes, values)) {
        marker = SAME_TIMES;
      } else if (kept && kept !== values && slidBy(kept, values, slide)) {
        // An array Grafana handed before may have been changed in place since
        // (streaming): only another array is compared with it.
        marker = SLID;
        from = kept.length - slide;
      } else {
        marker = values.length;
      }
      if (marker === UNCHANGED || marker === SAME_TIMES || out.numbers.add(values, from)) {
        out.layout.push(marker);
        if (marker === SLID) {
          out.layout.push(slide, values.length - from);
        }
        if (isTime) {
          out.lastTimes = values;
        }
      } else {
        cells.push(i);
      }
    });
    if (cells.length && before) {
      out.layout.length = start.layout;
      out.numbers.length = start.numbers;
      out.lastTimes = start.lastTimes;
      return { sent: { id, columns, refs: 0 }, cells };
    }
    if (before) {
      return { sent: { id, columns, refs: before.refs }, cells };
    }
    const d = out.describe;
    const str = (s: string | undefined) => (s == null ? NONE : this.strings.id(s, s));
    d.push(id, str(frame.refId), str(frame.name), frame.fields.length);
    let refs = 2 + frame.fields.length;
    const { all, keys } = configs();
    frame.fields.forEach((field, i) => {
      d.push(str(field.name), TYPES[field.type] ?? OTHER, this.configs.id(keys[i], all[i]), 0);
      const count = d.length - 1;
      for (const name in field.labels) {
        d.push(str(name), str(String(field.labels[name])));
        d[count]++;
      }
      refs += 2 + 2 * d[count];
      if (!numeric(field) || cells.includes(i)) {
        out.cells.push([id, i, Array.from(field.values as ArrayLike<unknown>)]);
      }
    });
    this.labelSets += frame.fields.length;
    return { sent: { id, columns, refs }, cells };
  }
}

type FieldConfigs = Array<ReturnType<typeof fieldConfig>>;

/** A frame's field configs and their keys, built when needed. */
interface Configs {
  all: FieldConfigs;
  keys: string[];
}

/** The update being written. */
interface Out {
  numbers: Numbers;
  layout: number[];
  describe: number[];
  cells: Array<[number, number, unknown[]]>;
  /** The samples of the last time field, while the wasm's last time field is that one. */
  lastTimes: ArrayLike<unknown> | undefined;
}
