// Loading the WebAssembly module, once per page, from where Grafana serves
// this plugin's files.
import { config } from '@grafana/runtime';

import init, { setPanicReporter } from '../../pkg/statescope_panel.js';
// Written by the build: the .wasm's name carries its content hash, because
// Grafana serves plugin files with `Cache-Control: public, max-age=3600` and
// cache-busts only module.js; an upgraded module.js must never link against a
// cached old .wasm.
import { WASM_FILE } from '../../pkg/wasm_file.js';

export const PLUGIN_ID = 'statescope-statemachine-panel';
export { WASM_FILE };

export const CSP_HELP =
  "Grafana's Content-Security-Policy must allow WebAssembly: add 'wasm-unsafe-eval' to script-src " +
  '(grafana.ini [security] content_security_policy_template).';

/**
 * Where Grafana serves this plugin's files. Grafana gives every plugin its
 * `baseUrl` in the boot config (`public/plugins/<id>`, or a CDN's absolute
 * URL), relative to Grafana's root, which is `appSubUrl` (root_url's path) and
 * not the page's URL. Neither `import.meta.url` nor AMD's `module` is used:
 * Grafana's frontend sandbox provides no `module` to the factory.
 */
export function pluginBaseUrl(): string {
  const base = config.panels?.[PLUGIN_ID]?.baseUrl || `public/plugins/${PLUGIN_ID}`;
  const root = new URL(`${config.appSubUrl ?? ''}/`, window.location.origin);
  return new URL(base.endsWith('/') ? base : `${base}/`, root).href;
}

let loading: Promise<void> | undefined;
/** Set when Rust panicked: the instance has trapped and must not be called again. */
let crashed: string | undefined;
const crashListeners = new Set<(message: string) => void>();

export function crashedWith(): string | undefined {
  return crashed;
}

/** Calls `listener` when Rust panics; returns the unsubscribe. */
export function onCrash(listener: (message: string) => void): () => void {
  crashListeners.add(listener);
  return () => crashListeners.delete(listener);
}

export function loadWasm(): Promise<void> {
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

export function crashMessage(message: string): string {
  return `Statescope panel crashed: ${message}. Reload the page; please report this with the browser console output.`;
}
