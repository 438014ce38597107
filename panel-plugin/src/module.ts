// Statescope state machines panel: a thin shell around the Rust/WebAssembly
// app. This file only (1) registers the panel and its options editor,
// (2) loads the .wasm once per page, (3) turns Grafana's data frames, options,
// time range, size and theme into the JSON the Rust side decodes
// (`PanelInput`), and (4) shows a one-line message when WebAssembly cannot
// run or the Rust side panicked. Everything else happens in Rust.
import React, { useCallback, useEffect, useRef, useState } from 'react';
import {
  DataFrame,
  FieldConfigProperty,
  GrafanaTheme2,
  InterpolateFunction,
  LoadingState,
  PanelPlugin,
  PanelProps,
} from '@grafana/data';
import { useTheme2 } from '@grafana/ui';

import init, { Panel as WasmPanel, setPanicReporter } from '../pkg/statescope_panel.js';

const PLUGIN_ID = 'statescope-statemachine-panel';
const WASM_FILE = 'statescope_panel_bg.wasm';

/** The saved panel options; the Rust side (options.rs) reads the same camelCase keys. */
export interface StatescopeOptions {
  view: 'both' | 'diagram' | 'machines';
  shape: 'auto' | 'one_hot' | 'enum';
  stateLabel: string;
  identityLabels: string[];
  kind: string;
  flappingThreshold: number;
  flappingWindowMinutes: number;
  tiles: 'auto' | 'full' | 'dense';
  search: string;
  stateFilter: string;
  sort: 'worst_first' | 'name' | 'time_in_state' | 'transitions';
  maxTiles: number;
  stateColors?: Record<string, string>;
}

export const CSP_HELP =
  "Grafana's Content-Security-Policy must allow WebAssembly: add 'wasm-unsafe-eval' to script-src " +
  '(grafana.ini [security] content_security_policy_template).';

// ---------------------------------------------------------------------------
// Loading the WebAssembly module, once per page.

/** Where Grafana serves this plugin's files, from the AMD module's own URL. */
export function pluginBaseUrl(): string {
  try {
    // Rollup's AMD output turns this into `module.uri` (set by SystemJS's
    // AMD loader and by RequireJS), so a CDN or sub-path install works too.
    const here = import.meta.url;
    if (typeof here === 'string' && /\/module\.js(\?.*)?$/.test(here)) {
      return new URL('./', here).href;
    }
  } catch {
    // Fall through to the conventional path.
  }
  return new URL(`public/plugins/${PLUGIN_ID}/`, document.baseURI).href;
}

let loading: Promise<void> | undefined;
/** Set when Rust panicked: the instance has trapped and must not be called again. */
let crashed: string | undefined;
const crashListeners = new Set<(message: string) => void>();

function loadWasm(): Promise<void> {
  if (!loading) {
    loading = (async () => {
      if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
        throw new Error('no WebAssembly');
      }
      await init({ module_or_path: new URL(WASM_FILE, pluginBaseUrl()).href });
      setPanicReporter((message: string) => {
        crashed = message;
        crashListeners.forEach((listener) => listener(message));
      });
    })();
    // A failed load may be retried by the next panel (e.g. after a network blip).
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

/** One line saying why the panel cannot start. */
export function loadFailureMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (text === 'no WebAssembly') {
    return 'Statescope needs WebAssembly, which this browser does not support. Use a current Chrome, Firefox, Safari or Edge.';
  }
  if (/content security policy|unsafe-eval|wasm-eval|refused to compile/i.test(text)) {
    return `Statescope cannot run: the page's Content-Security-Policy blocks WebAssembly. ${CSP_HELP}`;
  }
  if (/fetch|network|404|load/i.test(text)) {
    return `Statescope could not download ${WASM_FILE} from ${pluginBaseUrl()}: ${text}`;
  }
  return `Statescope could not start its WebAssembly module (${text}). If a Content-Security-Policy is set: ${CSP_HELP}`;
}

function crashMessage(message: string): string {
  return `Statescope panel crashed: ${message}. Reload the page; please report this with the browser console output.`;
}

// ---------------------------------------------------------------------------
// Grafana's data, theme and options as the JSON `PanelInput`.

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
          displayName: c.displayName,
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

function panelInput(props: PanelProps<StatescopeOptions>, theme: GrafanaTheme2): [string, Float64Array] {
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

// ---------------------------------------------------------------------------
// The React component: a host element the Rust app mounts into.

function StatescopePanel(props: PanelProps<StatescopeOptions>) {
  const theme = useTheme2();
  const host = useRef<HTMLDivElement>(null);
  const panel = useRef<WasmPanel | null>(null);
  const [ready, setReady] = useState(false);
  const [failure, setFailure] = useState<string | null>(crashed ? crashMessage(crashed) : null);

  /** Calls into WebAssembly; any exception ends this panel with a message. */
  const call = useCallback((f: (p: WasmPanel) => void) => {
    const p = panel.current;
    if (!p || crashed) {
      return;
    }
    try {
      f(p);
    } catch (e) {
      panel.current = null;
      setFailure(crashed ? crashMessage(crashed) : crashMessage(e instanceof Error ? e.message : String(e)));
    }
  }, []);

  useEffect(() => {
    let cancelled = false;
    const onCrash = (message: string) => setFailure(crashMessage(message));
    crashListeners.add(onCrash);
    loadWasm().then(
      () => {
        if (cancelled || !host.current || crashed) {
          return;
        }
        try {
          panel.current = new WasmPanel(host.current);
          setReady(true);
        } catch (e) {
          setFailure(crashMessage(crashed ?? (e instanceof Error ? e.message : String(e))));
        }
      },
      (e) => {
        if (!cancelled) {
          console.error('Statescope: WebAssembly failed to load', e);
          setFailure(loadFailureMessage(e));
        }
      },
    );
    return () => {
      cancelled = true;
      crashListeners.delete(onCrash);
      const p = panel.current;
      panel.current = null;
      if (p && !crashed) {
        try {
          p.free();
        } catch {
          // The instance is gone with the page; nothing to release.
        }
      }
    };
  }, []);

  const { data, options, timeRange, replaceVariables, width, height } = props;
  useEffect(() => {
    // While the first query runs there is nothing to show but "Loading…".
    if (!ready || (data.state === LoadingState.Loading && data.series.length === 0)) {
      return;
    }
    const [json, numbers] = panelInput(props, theme);
    call((p) => p.update(json, numbers));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready, data, options, timeRange, replaceVariables, theme, call]);

  useEffect(() => {
    if (ready) {
      call((p) => p.resize(width, height));
    }
  }, [ready, width, height, call]);

  useEffect(() => {
    if (!ready) {
      return;
    }
    const timer = window.setInterval(() => call((p) => p.tick(Date.now())), 1000);
    return () => window.clearInterval(timer);
  }, [ready, call]);

  if (failure) {
    return React.createElement(
      'div',
      {
        role: 'alert',
        'data-testid': 'statescope-error',
        style: { width, height, display: 'flex', alignItems: 'center', justifyContent: 'center', textAlign: 'center', padding: 8, color: theme.colors.error.text },
      },
      failure,
    );
  }
  return React.createElement('div', { ref: host, 'data-testid': 'statescope-panel', style: { width, height } });
}

// ---------------------------------------------------------------------------
// Registration and the options editor.

export const plugin = new PanelPlugin<StatescopeOptions>(StatescopePanel)
  .useFieldConfig({
    // Value mappings, colours, display names, units and data links apply;
    // number formatting options do not (the panel shows states, not values).
    disableStandardOptions: [
      FieldConfigProperty.Min,
      FieldConfigProperty.Max,
      FieldConfigProperty.Decimals,
      FieldConfigProperty.Thresholds,
      FieldConfigProperty.NoValue,
      FieldConfigProperty.FieldMinMax,
      FieldConfigProperty.Actions,
    ],
  })
  .setPanelOptions((builder) =>
    builder
      .addRadio({
        path: 'view',
        name: 'View',
        defaultValue: 'both',
        settings: {
          options: [
            { value: 'both', label: 'Both' },
            { value: 'diagram', label: 'Diagram' },
            { value: 'machines', label: 'Machines' },
          ],
        },
      })
      .addSelect({
        path: 'shape',
        name: 'Data shape',
        description: 'How a state is read: one 1/0 series per state with the state in a label, or one series whose value is the state.',
        category: ['Data'],
        defaultValue: 'auto',
        settings: {
          options: [
            { value: 'auto', label: 'Auto', description: 'One-hot when the series carry the state label, else enum' },
            { value: 'one_hot', label: 'One-hot (state in a label)', description: 'statescope_state, resilience4j_circuitbreaker_state' },
            { value: 'enum', label: 'Enum (state in the value)', description: 'circuit_breaker_state 0/1/2, or value mappings' },
          ],
        },
      })
      .addTextInput({
        path: 'stateLabel',
        name: 'State label',
        description: 'Label holding the state name on one-hot series.',
        category: ['Data'],
        defaultValue: 'state',
      })
      .addStringArray({
        path: 'identityLabels',
        name: 'Identity labels',
        description: 'Labels that identify a machine (e.g. provider, key_id). Empty: detect them.',
        category: ['Data'],
        defaultValue: [],
      })
      .addSelect({
        path: 'kind',
        name: 'Kind',
        description: 'Which states and transitions the machines have. Type the name of a custom kind to use it.',
        category: ['Data'],
        defaultValue: 'auto',
        settings: {
          allowCustomValue: true,
          options: [
            { value: 'auto', label: 'Auto', description: 'From the kind label, else circuit_breaker when the states fit, else from the data' },
            { value: 'circuit_breaker', label: 'circuit_breaker' },
            { value: 'worker', label: 'worker' },
            { value: 'from_data', label: 'From the data', description: 'States and transitions seen in the data' },
          ],
        },
      })
      .addNumberInput({
        path: 'flappingThreshold',
        name: 'Flapping threshold',
        description: 'A machine that trips (ok -> trouble, e.g. closed -> open) at least this many times within the flapping window is marked flapping.',
        category: ['Machines'],
        defaultValue: 3,
        settings: { min: 1, integer: true },
      })
      .addNumberInput({
        path: 'flappingWindowMinutes',
        name: 'Flapping window (minutes)',
        category: ['Machines'],
        defaultValue: 15,
        settings: { min: 1, integer: true },
      })
      .addRadio({
        path: 'tiles',
        name: 'Tiles',
        description: 'Auto: small cells when full tiles would take more than 3 screens.',
        category: ['Machines'],
        defaultValue: 'auto',
        settings: {
          options: [
            { value: 'auto', label: 'Auto' },
            { value: 'full', label: 'Full' },
            { value: 'dense', label: 'Dense' },
          ],
        },
      })
      .addSelect({
        path: 'sort',
        name: 'Sort machines',
        category: ['Machines'],
        defaultValue: 'worst_first',
        settings: {
          options: [
            { value: 'worst_first', label: 'Worst first' },
            { value: 'name', label: 'Name' },
            { value: 'time_in_state', label: 'Longest in state' },
            { value: 'transitions', label: 'Most transitions' },
          ],
        },
      })
      .addTextInput({
        path: 'search',
        name: 'Search',
        description: 'Show only machines whose name, kind or labels contain this text. Dashboard variables work.',
        category: ['Machines'],
        defaultValue: '',
      })
      .addTextInput({
        path: 'stateFilter',
        name: 'State filter',
        description: 'Show only machines in this state (clicking a state in the diagram does the same).',
        category: ['Machines'],
        defaultValue: '',
      })
      .addNumberInput({
        path: 'maxTiles',
        name: 'Max tiles',
        description: 'Most machine tiles to show; 0 shows all (the grid is virtualised, so all is fine).',
        category: ['Machines'],
        defaultValue: 0,
        settings: { min: 0, integer: true },
      }),
  );
