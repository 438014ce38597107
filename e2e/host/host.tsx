// A page that hosts a panel plugin the way a Grafana dashboard does:
// - the plugin's module.js is loaded from the `module` path Grafana's boot
//   data gives (public/plugins/<id>/module.js, under appSubUrl through
//   <base href>), with `?_cache=<plugin version>` as Grafana's SystemJS
//   resolve hook adds (loader/cache.ts resolveWithCache), either
//   - by SystemJS (with its AMD extra), its imports of react, @grafana/* etc.
//     resolving to the host's own copies, registered under "package:<name>"
//     plus an import map, as Grafana's sharedDependencies.ts/buildImportMap do;
//   - or (loader=sandbox) as Grafana's frontend sandbox does
//     (sandbox/sandbox_plugin_loader.ts): the code fetched as text and run
//     with a `define` that resolves only the shared modules and takes the
//     factory's return value as the plugin's exports (without near-membrane's
//     DOM isolation);
// - the data is a Prometheus range query, answered by a real Prometheus and
//   turned into frames by Grafana's code (backend half ported in
//   promBackend.ts; frontend half: toDataQueryResponse + transformV2 unchanged),
//   then applyFieldOverrides with the plugin's field config registry;
// - the panel is rendered in Grafana's PanelChrome inside ThemeContext with
//   PanelProps as PanelStateWrapper passes them.
// - replaceVariables is Grafana's template service for field templates
//   (templateSrv.ts).
// Page parameters (query string): plugin, theme (dark|light), expr (repeatable,
// refIds A, B...), legend (repeatable, the legend of the expr at the same
// position; default "__auto"), range (seconds back from now) or from (the
// start in epoch ms, to now: Grafana's ?from=<ms>&to=now), width, height,
// options (JSON merged over the plugin's defaults), fieldConfig (JSON merged
// over the plugin's field config defaults), loader (systemjs|sandbox).
import * as emotionCss from '@emotion/css';
import * as emotionReact from '@emotion/react';
import * as grafanaData from '@grafana/data';
import {
  applyFieldOverrides,
  compareArrayValues,
  compareDataFrameStructures,
  CoreApp,
  createTheme,
  dateTime,
  EventBusSrv,
  getDefaultTimeRange,
  LoadingState,
  PanelPlugin,
  ThemeContext,
  type DataFrame,
  type DataQueryRequest,
  type GrafanaTheme2,
  type PanelData,
  type TimeRange,
} from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import { config, toDataQueryResponse } from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import { GlobalStyles, PanelChrome, PanelContextProvider } from '@grafana/ui';
import * as lodash from 'lodash';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import * as ReactDOMClient from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as rxjs from 'rxjs';
import * as rxjsOperators from 'rxjs/operators';

// Deep import: the package's index drags in Monaco and the query editors;
// the result transformer module itself only needs lodash, @grafana/data and
// @grafana/runtime. Same code the datasource runs.
// eslint-disable-next-line
// @ts-ignore -- untyped deep path
import { transformV2 } from '../../node_modules/@grafana/prometheus/dist/esm/result_transformer.mjs';

import { framesFromQueryRange, type HostQuery } from './promBackend';
import { registerStandardOptions } from './standardOptions';
import { replaceVariables } from './templateSrv';

declare global {
  interface Window {
    System: {
      set(id: string, module: object): void;
      import(id: string): Promise<Record<string, unknown>>;
      addImportMap(map: { imports: Record<string, string> }): void;
    };
    statescopeHost: HostApi;
  }
}

/** What tests drive through page.evaluate. */
export interface HostApi {
  /** Re-run the queries and re-render the panel (a dashboard refresh). Resolves with the render count. */
  refresh(): Promise<number>;
  /** Colours of the Grafana theme the panel was given (createTheme of @grafana/data). */
  themeColors(): { mode: string; textPrimary: string; backgroundPrimary: string; backgroundCanvas: string };
  /** The frames the panel got last time (after transformV2 and field overrides). */
  lastSeries(): Array<{ name?: string; refId?: string; fields: Array<{ name: string; labels?: Record<string, string>; values: unknown[] }> }>;
}

const params = new URLSearchParams(window.location.search);
const pluginId = params.get('plugin') ?? 'statescope-statemachine-panel';
const themeMode = params.get('theme') === 'light' ? 'light' : 'dark';
const rangeSeconds = Number(params.get('range') ?? '300');
const fromMs = params.has('from') ? Number(params.get('from')) : undefined;
const width = Number(params.get('width') ?? '960');
const height = Number(params.get('height') ?? '560');
const legends = params.getAll('legend');
const userOptions = JSON.parse(params.get('options') ?? '{}') as Record<string, unknown>;
const userFieldConfig = JSON.parse(params.get('fieldConfig') ?? '{}') as Record<string, unknown>;
const loader = params.get('loader') ?? 'systemjs';
const queries: HostQuery[] = params.getAll('expr').map((expr, i) => ({
  refId: String.fromCharCode(65 + i),
  expr,
  legendFormat: legends[i] || '__auto',
}));
/** The Prometheus datasource's "scrape interval" setting (jsonData.timeInterval), the step's lower bound. */
const MIN_STEP_MS = 1000;

registerStandardOptions();

// ---- shared dependencies, as Grafana registers them -------------------------
const grafanaUiShared: Record<string, unknown> = {
  ...grafanaUi,
  // sharedDependencies.ts: "Help the 6.4 to 6.5 migration"
  PanelPlugin: grafanaData.PanelPlugin,
  DataSourcePlugin: grafanaData.DataSourcePlugin,
  AppPlugin: grafanaData.AppPlugin,
  DataSourceApi: grafanaData.DataSourceApi,
};
const shared: Record<string, object> = {
  '@emotion/css': emotionCss,
  '@emotion/react': emotionReact,
  '@grafana/data': grafanaData,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/ui': grafanaUiShared,
  lodash: { ...lodash, __useDefault: true },
  react: React,
  'react/jsx-runtime': jsxRuntime,
  'react-dom': ReactDOM,
  'react-dom/client': ReactDOMClient,
  rxjs,
  'rxjs/operators': rxjsOperators,
};
const importMap: Record<string, string> = {};
for (const [name, mod] of Object.entries(shared)) {
  // "Use the 'package:' prefix to act as a URL instead of a bare specifier"
  window.System.set(`package:${name}`, mod);
  importMap[name] = `package:${name}`;
}
window.System.addImportMap({ imports: importMap });

// ---- status line the tests wait on ------------------------------------------
const status = document.getElementById('host-status')!;
let renders = 0;
function setStatus(state: 'loading' | 'done' | 'error', text: string) {
  status.dataset.state = state;
  status.dataset.renders = String(renders);
  status.textContent = text;
}

class PanelErrorBoundary extends React.Component<{ children: React.ReactNode }, { error?: Error }> {
  state: { error?: Error } = {};
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  componentDidCatch(error: Error) {
    // Grafana shows "An unexpected error happened" in the panel; a test must
    // notice, so it is also a console error.
    console.error('panel crashed:', error);
  }
  render() {
    return this.state.error ? (
      <div data-testid="host-panel-crash">Panel crashed: {String(this.state.error.message)}</div>
    ) : (
      this.props.children
    );
  }
}

function timeRangeNow(): TimeRange {
  const to = dateTime();
  if (fromMs !== undefined) {
    const from = dateTime(fromMs);
    return { from, to, raw: { from, to: 'now' } };
  }
  const from = dateTime(to.valueOf() - rangeSeconds * 1000);
  return { from, to, raw: { from: `now-${rangeSeconds}s`, to: 'now' } };
}

/** Grafana's step: interval from max data points (the panel width), at least the datasource's scrape interval. */
function stepFor(range: TimeRange): number {
  const intervalMs = (range.to.valueOf() - range.from.valueOf()) / width;
  return Math.max(MIN_STEP_MS, Math.ceil(intervalMs / 1000) * 1000);
}

async function runQueries(range: TimeRange, theme: GrafanaTheme2, plugin: PanelPlugin, fieldConfig: PanelPlugin['fieldConfigDefaults']): Promise<PanelData> {
  const stepMs = stepFor(range);
  // Grafana aligns start and end to the step (promlib models.AlignTimeRange).
  const start = Math.floor(range.from.valueOf() / stepMs) * stepMs;
  const end = Math.floor(range.to.valueOf() / stepMs) * stepMs;
  const results: Record<string, { status: number; frames: unknown[] }> = {};
  for (const q of queries) {
    // Relative: under appSubUrl, as Grafana's datasource proxy.
    const url =
      `api/prom/api/v1/query_range?query=${encodeURIComponent(q.expr)}` +
      `&start=${start / 1000}&end=${end / 1000}&step=${stepMs / 1000}`;
    const res = await fetch(url);
    if (!(res.headers.get('content-type') ?? '').includes('json')) {
      throw new Error(`Prometheus answered ${res.status}: ${await res.text()}`);
    }
    const body = await res.json();
    results[q.refId] = { status: 200, frames: framesFromQueryRange(q, stepMs, body) };
  }
  const request = {
    app: CoreApp.Dashboard,
    requestId: 'statescope-e2e',
    targets: queries.map((q) => ({ ...q, range: true })),
    range,
    interval: `${stepMs / 1000}s`,
    intervalMs: stepMs,
    maxDataPoints: width,
    scopedVars: {},
    timezone: 'browser',
    startTime: Date.now(),
  } as unknown as DataQueryRequest;
  const response = toDataQueryResponse({ data: { results } } as never, request.targets);
  const transformed = transformV2(response, request, {}) as { data: DataFrame[] };
  const series = applyFieldOverrides({
    data: transformed.data,
    fieldConfig,
    fieldConfigRegistry: plugin.fieldConfigRegistry,
    replaceVariables,
    theme,
    timeZone: 'browser',
  });
  return { state: LoadingState.Done, series, timeRange: range, request };
}

/** Grafana's frontend sandbox loader, minus near-membrane: run module.js with
 * a `define` that knows only the shared modules; the factory's return value
 * is what Grafana gets. */
async function importInSandbox(url: string): Promise<Record<string, unknown>> {
  const code = await (await fetch(url)).text();
  return new Promise((resolve, reject) => {
    const define = (idOrDeps: string | string[], depsOrFactory: unknown, maybeFactory?: unknown) => {
      const deps = (Array.isArray(idOrDeps) ? idOrDeps : depsOrFactory) as string[];
      const factory = (Array.isArray(idOrDeps) ? depsOrFactory : maybeFactory) as (...args: unknown[]) => unknown;
      try {
        const resolved = deps.map((dep) => {
          const mod = shared[dep] as { __useDefault?: boolean; default?: unknown } | undefined;
          if (!mod) {
            throw new Error(`[sandbox] Could not resolve dependency ${dep}`);
          }
          return mod.__useDefault ? mod.default : mod;
        });
        resolve(factory.apply(null, resolved) as Record<string, unknown>);
      } catch (e) {
        reject(new Error(`Could not execute plugin's define ${pluginId}: ${e}`));
      }
    };
    // eslint-disable-next-line no-new-func
    new Function('define', code)(define);
  });
}

async function main() {
  const theme = createTheme({ colors: { mode: themeMode } });
  const meta = config.panels[pluginId];
  if (!meta) {
    throw new Error(`Grafana's boot data has no plugin ${pluginId} (not built?)`);
  }
  // Grafana's importer resolves the meta's relative module path under
  // appSubUrl, and loader/cache.ts resolveWithCache adds `?_cache=<version>`
  // (to module.js only).
  const modulePath = /^(https?:)?\//.test(meta.module) ? meta.module : `${config.appSubUrl ?? ''}/${meta.module}`;
  const moduleUrl = `${modulePath}?_cache=${encodeURI(meta.info.version)}`;
  const mod = loader === 'sandbox' ? await importInSandbox(moduleUrl) : await window.System.import(moduleUrl);
  const plugin = mod?.plugin as PanelPlugin;
  if (!(plugin instanceof PanelPlugin) || !plugin.panel) {
    throw new Error(`module.js of ${pluginId} does not export a PanelPlugin with a panel`);
  }
  const Panel = plugin.panel;
  const options = lodash.merge({}, plugin.defaults, userOptions);
  const fieldConfig = lodash.merge({}, plugin.fieldConfigDefaults, userFieldConfig);
  const eventBus = new EventBusSrv();
  const root = ReactDOMClient.createRoot(document.getElementById('panel-root')!);
  let last: PanelData = { state: LoadingState.Loading, series: [], timeRange: getDefaultTimeRange() };
  // As scenes' VizPanel.applyFieldConfig: a revision counted up when the
  // frames' names, fields, labels or config differ from the last query's.
  let structureRev = 0;

  const render = (data: PanelData) => {
    root.render(
      <ThemeContext.Provider value={theme}>
        <GlobalStyles />
        <PanelContextProvider value={{ eventsScope: 'global', eventBus, app: CoreApp.Dashboard }}>
          <div data-testid="host-panel" style={{ width, height, margin: 16 }}>
            <PanelChrome title="Statescope" width={width} height={height} padding={plugin.noPadding ? 'none' : 'md'} hoverHeader={false}>
              {(innerWidth: number, innerHeight: number) => (
                <PanelErrorBoundary>
                  <Panel
                    id={1}
                    data={data}
                    title="Statescope"
                    timeRange={data.timeRange}
                    timeZone="browser"
                    options={options}
                    fieldConfig={fieldConfig}
                    transparent={false}
                    width={innerWidth}
                    height={innerHeight}
                    renderCounter={renders}
                    replaceVariables={replaceVariables}
                    onOptionsChange={() => {}}
                    onFieldConfigChange={() => {}}
                    onChangeTimeRange={() => {}}
                    eventBus={eventBus}
                  />
                </PanelErrorBoundary>
              )}
            </PanelChrome>
          </div>
        </PanelContextProvider>
      </ThemeContext.Provider>
    );
  };

  const refresh = async (): Promise<number> => {
    setStatus('loading', 'querying');
    const range = timeRangeNow();
    const data = await runQueries(range, theme, plugin, fieldConfig);
    if (!compareArrayValues(data.series, last.series, compareDataFrameStructures)) {
      structureRev += 1;
    }
    last = { ...data, structureRev };
    renders += 1;
    render(last);
    // Let React commit (and the plugin's own effects run) before saying done.
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    setStatus('done', `render ${renders}: ${last.series.length} frame(s)`);
    return renders;
  };

  window.statescopeHost = {
    refresh,
    themeColors: () => ({
      mode: theme.colors.mode,
      textPrimary: theme.colors.text.primary,
      backgroundPrimary: theme.colors.background.primary,
      backgroundCanvas: theme.colors.background.canvas,
    }),
    lastSeries: () =>
      last.series.map((f) => ({
        name: f.name,
        refId: f.refId,
        fields: f.fields.map((fl) => ({ name: fl.name, labels: fl.labels, values: Array.from(fl.values) })),
      })),
  };
  await refresh();
}

main().catch((e: unknown) => {
  console.error('host failed:', e);
  setStatus('error', String(e instanceof Error ? e.message : e));
});
