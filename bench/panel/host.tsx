// The benchmark's page: the panel plugin loaded from public/plugins/<id>/module.js
// by SystemJS with the host's shared react/@grafana/* modules (as Grafana and
// e2e/host/host.tsx do), fed frames the benchmark generated (bench/src/frames.rs,
// the shape Grafana's Prometheus datasource produces), and timed.
//
// It is served by e2e's host server (e2e/support/hostServer.ts) in place of
// e2e's own host.js: same index.html, boot.js and SystemJS.
import * as emotionCss from '@emotion/css';
import * as emotionReact from '@emotion/react';
import * as grafanaData from '@grafana/data';
import { CoreApp, createTheme, EventBusSrv, PanelPlugin, ThemeContext, type PanelData } from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import { PanelContextProvider } from '@grafana/ui';
import * as lodash from 'lodash';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import * as ReactDOMClient from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as rxjs from 'rxjs';
import * as rxjsOperators from 'rxjs/operators';

// Grafana's standard option editors and field config properties, registered as e2e's host does.
import { registerStandardOptions } from '../../e2e/host/standardOptions';
import { panelData, structureRevisions } from './data';

/** One timed render, milliseconds from the call to React's render. */
export interface Timing {
  /** Until the render's last DOM mutation: React, the panel's decode, view building and DOM patching. */
  script: number;
  /** Plus the style recalculation and layout the new DOM needs (forced synchronously). */
  layout: number;
  /** Until the frame after the last mutation has been painted (requestAnimationFrame, then a task). */
  frame: number;
  /** Elements under the panel afterwards: a check that it drew something. */
  elements: number;
  /** The update's stages as the panel measured them (frames.ts's performance
   * measures; NaN when it did not run one): building the update in JS, the
   * wasm applying it, then the view model built and handed to Leptos. */
  stages: { marshal: number; decode: number; view: number };
}

/** The last performance measure called `name`, in ms. */
const measured = (name: string) => {
  const entries = performance.getEntriesByName(name, 'measure');
  return entries.length ? entries[entries.length - 1].duration : NaN;
};

export interface BenchApi {
  /** Fetches a generated frames file (under the bench-data plugin path) and converts it to DataFrames. */
  load(name: string, fromMs: number, toMs: number): Promise<number>;
  /** Mounts a new panel with loaded data `name`: a first render. */
  first(name: string): Promise<Timing>;
  /** Re-renders the mounted panel with loaded data `name`: a dashboard refresh. */
  update(name: string): Promise<Timing>;
  unmount(): void;
  /** Text of the panel, to report what it showed when something looks wrong. */
  text(): string;
}

declare global {
  interface Window {
    System: {
      set(id: string, module: object): void;
      import(id: string): Promise<Record<string, unknown>>;
      addImportMap(map: { imports: Record<string, string> }): void;
    };
    statescopeBench: BenchApi;
    statescopeBenchError?: string;
  }
}

const params = new URLSearchParams(window.location.search);
const pluginId = params.get('plugin') ?? 'statescope-statemachine-panel';
const dataPlugin = params.get('data') ?? 'statescope-bench-data';
const width = Number(params.get('width') ?? '1000');
const height = Number(params.get('height') ?? '600');

// Shared dependencies under "package:<name>" plus an import map, as Grafana's
// sharedDependencies.ts/buildImportMap register them.
const shared: Record<string, object> = {
  '@emotion/css': emotionCss,
  '@emotion/react': emotionReact,
  '@grafana/data': grafanaData,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/ui': { ...grafanaUi, PanelPlugin: grafanaData.PanelPlugin },
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
  window.System.set(`package:${name}`, mod);
  importMap[name] = `package:${name}`;
}
window.System.addImportMap({ imports: importMap });
registerStandardOptions();

/** A render is over when the panel's DOM has not changed for this long. */
const QUIET_MS = 200;
const TIMEOUT_MS = 120_000;
/** A first render has drawn the data when the panel holds at least this many elements. */
const MIN_ELEMENTS = 10;

async function main() {
  const theme = createTheme({ colors: { mode: 'dark' } });
  const mod = await window.System.import(`/public/plugins/${pluginId}/module.js`);
  const plugin = mod.plugin as PanelPlugin;
  if (!(plugin instanceof PanelPlugin) || !plugin.panel) {
    throw new Error(`module.js of ${pluginId} does not export a PanelPlugin with a panel`);
  }
  const Panel = plugin.panel;
  // The options a new panel gets: the plugin's defaults.
  const options = { ...(plugin.defaults ?? {}) };
  const eventBus = new EventBusSrv();
  const container = document.getElementById('panel-root')!;
  const loaded = new Map<string, PanelData>();
  let root: ReactDOMClient.Root | undefined;
  let renders = 0;
  const withStructureRev = structureRevisions();

  const element = (data: PanelData) => (
    <ThemeContext.Provider value={theme}>
      <PanelContextProvider value={{ eventsScope: 'global', eventBus, app: CoreApp.Dashboard }}>
        <div data-testid="bench-panel" style={{ width, height }}>
          <Panel
            id={1}
            data={data}
            title="Statescope"
            timeRange={data.timeRange}
            timeZone="browser"
            options={options}
            fieldConfig={plugin.fieldConfigDefaults}
            transparent={false}
            width={width}
            height={height}
            renderCounter={renders}
            replaceVariables={(s: string) => s}
            onOptionsChange={() => {}}
            onFieldConfigChange={() => {}}
            onChangeTimeRange={() => {}}
            eventBus={eventBus}
          />
        </div>
      </PanelContextProvider>
    </ThemeContext.Provider>
  );

  // The panel renders asynchronously (module.ts hands the data to WebAssembly
  // in an effect, once the module is loaded; Leptos then patches the DOM), so
  // a render ends with the last DOM mutation it causes. A MutationObserver
  // notes when each batch of mutations happened, forces the layout they need
  // right then, and asks for the frame after; the render is over when the DOM
  // has been quiet for QUIET_MS (with something drawn, for a first render).
  const timed = async (loaded: PanelData, first: boolean): Promise<Timing> => {
    renders += 1;
    // Before the clock starts: Grafana does it before it renders the panel.
    const data = withStructureRev(loaded);
    let batches = 0;
    let lastScript = 0;
    let lastLayout = 0;
    let lastFrame = 0;
    performance.clearMeasures();
    const t0 = performance.now();
    const observer = new MutationObserver(() => {
      const seq = ++batches;
      lastScript = performance.now();
      void container.getBoundingClientRect().height;
      void document.body.offsetHeight;
      lastLayout = performance.now();
      requestAnimationFrame(() =>
        setTimeout(() => {
          if (seq === batches) {
            lastFrame = performance.now();
          }
        }, 0)
      );
    });
    observer.observe(container, { subtree: true, childList: true, attributes: true, characterData: true });
    ReactDOM.flushSync(() => root!.render(element(data)));
    const drawn = () => container.getElementsByTagName('*').length >= MIN_ELEMENTS;
    const deadline = t0 + TIMEOUT_MS;
    for (;;) {
      await new Promise((r) => setTimeout(r, QUIET_MS / 4));
      const now = performance.now();
      const quiet = batches > 0 && lastFrame > 0 && now - lastScript >= QUIET_MS;
      if ((quiet && (!first || drawn())) || now > deadline) {
        break;
      }
    }
    observer.disconnect();
    if (batches === 0 || (first && !drawn())) {
      throw new Error(`the panel did not draw within ${TIMEOUT_MS} ms: ${container.innerText.slice(0, 200)}`);
    }
    return {
      script: lastScript - t0,
      layout: lastLayout - t0,
      frame: lastFrame - t0,
      elements: container.getElementsByTagName('*').length,
      stages: {
        marshal: measured('statescope:marshal'),
        decode: measured('statescope:decode'),
        view: measured('statescope:view'),
      },
    };
  };

  const data = (name: string) => {
    const d = loaded.get(name);
    if (!d) {
      throw new Error(`data ${name} not loaded`);
    }
    return d;
  };

  window.statescopeBench = {
    async load(name, fromMs, toMs) {
      const res = await fetch(`/public/plugins/${dataPlugin}/${name}`);
      if (!res.ok) {
        throw new Error(`fetching ${name}: ${res.status}`);
      }
      const frames = panelData((await res.json()) as object[], fromMs, toMs, plugin, theme);
      loaded.set(name, frames);
      return frames.series.length;
    },
    async first(name) {
      window.statescopeBench.unmount();
      root = ReactDOMClient.createRoot(container);
      return timed(data(name), true);
    },
    async update(name) {
      if (!root) {
        throw new Error('update before first render');
      }
      return timed(data(name), false);
    },
    unmount() {
      root?.unmount();
      root = undefined;
    },
    text: () => container.innerText.slice(0, 500),
  };
  document.getElementById('host-status')!.dataset.state = 'done';
}

main().catch((e: unknown) => {
  console.error('bench host failed:', e);
  window.statescopeBenchError = String(e instanceof Error ? e.message : e);
  document.getElementById('host-status')!.dataset.state = 'error';
});
