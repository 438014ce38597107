// Grafana's data, theme and options as the update the Rust side applies
// (store.rs): frame descriptions once, samples as typed arrays, every refresh
// naming the frames it holds. Kept thin: deciding what changed is Rust's.
import { DataFrame, Field, GrafanaTheme2, InterpolateFunction, Labels, PanelProps } from '@grafana/data';

import type { StatescopeOptions } from './options';

// Markers in the layout (store.rs's SAME_TIMES and UNCHANGED).
const SAME_TIMES = 0xffffffff;
const UNCHANGED = 0xfffffffe;

/** The wasm panel's update entry (wasm.rs): false when it no longer holds
 * the frames this update names, and wants them all described again. */
export interface Updatable {
  update(meta: string, layout: Uint32Array, numbers: Float64Array): boolean;
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

  /** Appends a field's values; false (nothing kept) if one is neither a number nor null. */
  add(values: ArrayLike<unknown>): boolean {
    const n = values.length;
    if (this.length + n > this.buffer.length) {
      const grown = new Float64Array(Math.max(this.buffer.length * 2, this.length + n));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    const out = this.buffer;
    const at = this.length;
    for (let i = 0; i < n; i++) {
      const v = values[i];
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

  equals(at: number, values: ArrayLike<unknown>): boolean {
    const b = this.buffer;
    for (let i = 0; i < values.length; i++) {
      if (b[at + i] !== values[i] && !(Number.isNaN(b[at + i]) && values[i] == null)) {
        return false;
      }
    }
    return true;
  }
}

/** What was sent of a frame: its id and the value arrays its numeric fields had. */
interface Sent {
  id: number;
  columns: unknown[];
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

/** A frame's identity: everything of its description but the samples. */
function frameKey(frame: DataFrame, configs: FieldConfigs): string {
  let key = `${frame.refId ?? ''}\u001d${frame.name ?? ''}`;
  frame.fields.forEach((field, i) => {
    key += `\u001d${field.name}\u001e${field.type}\u001e`;
    for (const name in field.labels) {
      key += `${name}\u001f${field.labels[name]}\u001f`;
    }
    const c = configs[i];
    key += `\u001e${c.displayName ?? ''}\u001e${c.displayNameFromDS ?? ''}\u001e${c.unit ?? ''}\u001e${c.interval ?? ''}`;
    key += `\u001e${objectKey(c.mappings)}\u001e${objectKey(c.color)}\u001e${c.links ? JSON.stringify(c.links) : ''}`;
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
    let [meta, layout, numbers] = this.encode(props, theme);
    performance.mark('statescope:marshalled');
    if (!panel.update(meta, layout, numbers)) {
      // The wasm holds none of our frames (it was reset): describe them all.
      this.sent.clear();
      this.lastData = undefined;
      [meta, layout, numbers] = this.encode(props, theme);
      performance.mark('statescope:marshalled');
      panel.update(meta, layout, numbers);
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

  private encode(props: PanelProps<StatescopeOptions>, theme: GrafanaTheme2): [string, Uint32Array, Float64Array] {
    const { data, options, timeRange, width, height, replaceVariables } = props;
    let size = 0;
    for (const frame of data.series) {
      for (const field of frame.fields) {
        size += numeric(field) ? field.values.length : 0;
      }
    }
    this.numbers.clear(size);
    const out: Out = { numbers: this.numbers, layout: [], newFrames: [], lastTimes: undefined };
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
    data.series.forEach((frame, f) => {
      const slot = labels.length;
      let sameFields = sameStructure;
      for (const field of frame.fields) {
        sameFields &&= sameLabels(field.labels, this.labels[labels.length]);
        labels.push(field.labels);
      }
      let configs: FieldConfigs | undefined;
      const config = () => (configs ??= frame.fields.map((field) => fieldConfig(field, replaceVariables)));
      const part = unversioned(frame, replaceVariables);
      unversionedParts.push(part);
      // A frame with text fields (tables) is described whole every time, under a new id.
      let key: string | undefined;
      if (frame.fields.every(numeric)) {
        const same = sameFields && part === this.unversioned[f] && slot + frame.fields.length <= this.labels.length;
        key = same ? this.keys[f] : frameKey(frame, config());
      }
      keys.push(key);
      const before = key === undefined ? undefined : this.sent.get(key);
      let done = this.encodeFrame(frame, config, before, sameData, out);
      if (done.cells.length && before) {
        // Text in a number field this time: described anew, with those cells.
        done = this.encodeFrame(frame, config, undefined, false, out);
      }
      if (key !== undefined && !done.cells.length) {
        sent.set(key, done.sent);
      }
    });
    this.sent = sent;
    this.structureRev = data.structureRev;
    this.keys = keys;
    this.unversioned = unversionedParts;
    this.labels = labels;
    const meta = JSON.stringify({
      newFrames: out.newFrames,
      options: { ...options, search: replaceVariables(options.search ?? '') },
      timeRange: { from: timeRange.from.valueOf(), to: timeRange.to.valueOf() },
      width,
      height,
      theme: { isDark: theme.isDark, palette: themePalette(theme) },
      now: Date.now(),
    });
    return [meta, Uint32Array.from(out.layout), out.numbers.buffer.subarray(0, out.numbers.length)];
  }

  /** Adds one frame to the update: its id, its samples (or markers) and,
   * when the wasm has not seen it, its description. Undone when a number
   * field holds text (`cells`) and the frame was seen before. */
  private encodeFrame(
    frame: DataFrame,
    configs: () => FieldConfigs,
    before: Sent | undefined,
    sameData: boolean,
    out: Out,
  ): { sent: Sent; cells: number[] } {
    const start = { layout: out.layout.length, numbers: out.numbers.length, lastTimes: out.lastTimes };
    const id = before?.id ?? ++this.nextId;
    const columns: unknown[] = [];
    const cells: number[] = [];
    out.layout.push(id);
    frame.fields.forEach((field, i) => {
      if (!numeric(field)) {
        return;
      }
      const values = field.values as ArrayLike<unknown>;
      const isTime = field.type === 'time';
      columns.push(values);
      if (sameData && before && before.columns[columns.length - 1] === values) {
        out.layout.push(UNCHANGED);
        if (isTime) {
          // The wasm's "previous times" are now ones not in `numbers`.
          out.lastTimes = undefined;
        }
      } else if (isTime && out.lastTimes && out.lastTimes[1] === values.length && out.numbers.equals(out.lastTimes[0], values)) {
        out.layout.push(SAME_TIMES);
      } else {
        const at = out.numbers.length;
        if (out.numbers.add(values)) {
          out.layout.push(values.length);
          if (isTime) {
            out.lastTimes = [at, values.length];
          }
        } else {
          cells.push(i);
        }
      }
    });
    if (cells.length && before) {
      out.layout.length = start.layout;
      out.numbers.length = start.numbers;
      out.lastTimes = start.lastTimes;
    } else if (!before) {
      out.newFrames.push({
        id,
        refId: frame.refId,
        name: frame.name,
        cells: cells.length ? cells : undefined,
        fields: frame.fields.map((field, i) => ({
          name: field.name,
          type: field.type,
          labels: field.labels,
          config: configs()[i],
          values: !numeric(field) || cells.includes(i) ? Array.from(field.values as ArrayLike<unknown>) : undefined,
        })),
      });
    }
    return { sent: { id, columns }, cells };
  }
}

type FieldConfigs = Array<ReturnType<typeof fieldConfig>>;

/** The update being written. */
interface Out {
  numbers: Numbers;
  layout: number[];
  newFrames: object[];
  /** Where the last time field's samples are in `numbers`, while the wasm's last time field is that one. */
  lastTimes: [number, number] | undefined;
}
