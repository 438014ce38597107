// Grafana's data, theme and options as the JSON `PanelInput` the Rust side
// decodes (input.rs), plus the number cells beside it.
import { DataFrame, GrafanaTheme2, InterpolateFunction, PanelProps } from '@grafana/data';

import type { StatescopeOptions } from './options';

/** Number cells of every time and number field, sent beside the JSON as one
 * Float64Array (NaN for null): parsing millions of samples out of JSON text
 * took most of a render. A field holds `numbers: [offset, len]` into it.
 * Written into one growing buffer (no array per field), and a time field
 * equal to the one before it (every frame of a range query has its own copy
 * of the same instants) points at the same run instead of adding its own. */
class Numbers {
  private buffer = new Float64Array(1 << 16);
  private length = 0;
  private lastTime: [number, number] | undefined;

  /** Adds a field's values, or returns undefined if any is not a number or null. */
  add(values: ArrayLike<unknown>, isTime: boolean): [number, number] | undefined {
    const n = values.length;
    if (isTime && this.lastTime && this.lastTime[1] === n && this.equals(this.lastTime[0], values)) {
      return this.lastTime;
    }
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
        return undefined;
      }
    }
    this.length += n;
    if (isTime) {
      this.lastTime = [at, n];
    }
    return [at, n];
  }

  private equals(at: number, values: ArrayLike<unknown>): boolean {
    const b = this.buffer;
    for (let i = 0; i < values.length; i++) {
      if (b[at + i] !== values[i]) {
        return false;
      }
    }
    return true;
  }

  array(): Float64Array {
    return this.buffer.subarray(0, this.length);
  }
}

function frameJson(frame: DataFrame, replaceVariables: InterpolateFunction, numbers: Numbers) {
  // Empty and unset members are left out (the Rust side defaults them): a
  // refresh of 1k machines is 5k frames, and every byte is written here and
  // parsed again in the wasm.
  return {
    refId: frame.refId,
    name: frame.name,
    fields: frame.fields.map((field) => {
      const c = field.config ?? {};
      const links = c.links?.length
        ? // Dashboard variables are filled in here; per-machine placeholders
          // (${__field.labels.x}) are left for the Rust side.
          c.links.map((link) => ({
            title: replaceVariables(link.title ?? ''),
            url: replaceVariables(link.url ?? ''),
            targetBlank: Boolean(link.targetBlank),
          }))
        : undefined;
      return {
        name: field.name,
        type: field.type,
        labels: field.labels,
        config: {
          // A display name may be a template (`${__field.labels.key_id}`):
          // resolved as Grafana's own panels do, through the panel's
          // replaceVariables with the field's scoped variables (its data
          // context), so the wasm gets the text a user sees elsewhere.
          displayName: c.displayName ? replaceVariables(c.displayName, field.state?.scopedVars) : undefined,
          displayNameFromDS: c.displayNameFromDS || undefined,
          unit: c.unit,
          mappings: c.mappings?.length ? c.mappings : undefined,
          color: c.color,
          links,
          interval: c.interval ?? undefined,
        },
        ...numericValues(field.type, field.values as ArrayLike<unknown>, numbers),
      };
    }),
  };
}

function numericValues(type: string, values: ArrayLike<unknown>, numbers: Numbers) {
  const at = type === 'time' || type === 'number' ? numbers.add(values, type === 'time') : undefined;
  return at ? { numbers: at } : { values: Array.isArray(values) ? values : Array.from(values) };
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

export function panelInput(props: PanelProps<StatescopeOptions>, theme: GrafanaTheme2): [string, Float64Array] {
  const { data, options, timeRange, width, height, replaceVariables } = props;
  const numbers = new Numbers();
  const json = JSON.stringify({
    frames: data.series.map((frame) => frameJson(frame, replaceVariables, numbers)),
    options: { ...options, search: replaceVariables(options.search ?? '') },
    timeRange: { from: timeRange.from.valueOf(), to: timeRange.to.valueOf() },
    width,
    height,
    theme: { isDark: theme.isDark, palette: themePalette(theme) },
    now: Date.now(),
  });
  return [json, numbers.array()];
}
