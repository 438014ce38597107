// The small web server that plays Grafana's part for the panel: the host page
// and its bundle (one per Grafana version tested), the boot data Grafana's
// index.html carries, SystemJS, the plugins under public/plugins/<id>/ (as
// Grafana serves them: pkg/api/plugins.go getPluginAssets, `Cache-Control:
// public, max-age=3600` and Last-Modified/If-Modified-Since), and
// /api/prom/* proxied to Prometheus (as Grafana's datasource proxy does).
// Optionally under a sub-path, as Grafana with root_url http://host/grafana/.
// Binds 127.0.0.1 on a free port.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { build, type Plugin } from 'esbuild';

import { listenOnLoopback, type LoopbackServer } from './loopback';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.mjs': 'application/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Content-Security-Policy headers a page can ask for with `?csp=<name>`.
 * "no-wasm" is a hardened site's script policy: scripts from its own origin
 * only, no 'unsafe-eval' and no 'wasm-unsafe-eval'. (Chromium lets
 * 'unsafe-eval' compile WebAssembly too, so a policy WITH 'unsafe-eval' does
 * not block the wasm; see e2e/README.md.)
 */
const SYSTEM_FONTS = '/usr/share/fonts/truetype/dejavu';

export const CSP_POLICIES: Record<string, string> = {
  'no-wasm': "script-src 'self'",
  'eval-only': "script-src 'self' 'unsafe-eval'",
};

/** The README's CSP example (panel-plugin/README.md): Grafana's default
 * content_security_policy_template with 'wasm-unsafe-eval' added. Served as
 * Grafana serves its template: $NONCE a fresh nonce per page, $ROOT_PATH the
 * root URL without the protocol. */
export const README_CSP = 'readme';
export function readmeCspTemplate(repoRoot: string): string {
  const readme = readFileSync(path.join(repoRoot, 'panel-plugin/README.md'), 'utf8');
  const m = /^\s*content_security_policy_template = """(.+)"""\s*$/m.exec(readme);
  if (!m) {
    throw new Error('panel-plugin/README.md has no content_security_policy_template = """...""" line');
  }
  return m[1];
}

/** The Grafana versions the host is bundled against: the newest (root
 * node_modules) and the oldest the plugin claims (e2e/grafana-12/). */
export const GRAFANA_VERSIONS = {
  '13': { packages: '', version: '13.2.3' },
  '12': { packages: 'e2e/grafana-12', version: '12.0.2' },
} as const;
export type GrafanaVersion = keyof typeof GRAFANA_VERSIONS;

export interface HostServerOptions {
  repoRoot: string;
  /** Where the bundled host-<version>.js files are. */
  buildDir: string;
  /** Plugin id -> directory served as public/plugins/<id>/. */
  plugins: Record<string, string | undefined>;
  prometheusUrl: string;
  /** Grafana's root_url path ("/grafana"), or "" for the root. */
  subPath?: string;
}

export interface HostServer extends LoopbackServer {
  /** Serve another build of a plugin from now on (an upgrade). */
  setPluginDir(id: string, dir: string): void;
}

/** Bare imports of the host's own files resolve from `packagesDir`'s
 * node_modules (a Grafana version's packages); what those packages import
 * resolves inside that tree as usual. @grafana/* resolve to their CommonJS
 * builds everywhere in such a bundle: the ESM build of @grafana/ui 12.0.x
 * lacks exports its own index re-exports (PanelContextProvider...), and one
 * format for all keeps a single copy of each package. */
function resolveFrom(packagesDir: string, hostDir: string): Plugin {
  return {
    name: 'grafana-version',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, async (args) => {
        const fromHost = args.importer.startsWith(hostDir);
        const grafana = args.path.startsWith('@grafana/');
        if (args.pluginData === 'grafana-version' || !(fromHost || grafana)) {
          return undefined;
        }
        const r = await b.resolve(args.path, {
          kind: grafana ? 'require-call' : args.kind,
          resolveDir: fromHost ? packagesDir : args.resolveDir,
          pluginData: 'grafana-version',
        });
        return r.errors.length ? { errors: r.errors } : r;
      });
    },
  };
}

export async function bundleHost(repoRoot: string, buildDir: string, grafana: GrafanaVersion): Promise<void> {
  const { packages } = GRAFANA_VERSIONS[grafana];
  const packagesDir = path.join(repoRoot, packages);
  if (packages && !existsSync(path.join(packagesDir, 'node_modules/@grafana/ui/package.json'))) {
    throw new Error(
      `${packages}/node_modules is not installed: the host is also tested against Grafana ${GRAFANA_VERSIONS[grafana].version}; ` +
        `run \`npm install --prefix ${packages}\` (scripts/setup.sh does)`,
    );
  }
  await build({
    entryPoints: [path.join(repoRoot, 'e2e/host/host.tsx')],
    bundle: true,
    format: 'iife',
    target: 'chrome120',
    outfile: path.join(buildDir, `host-${grafana}.js`),
    plugins: packages ? [resolveFrom(packagesDir, path.join(repoRoot, 'e2e/host') + path.sep)] : [],
    define: {
      'process.env.NODE_ENV': '"production"',
      // The page has SystemJS's AMD `define` global (for plugins). UMD
      // libraries in the bundle (lodash...) would register with it instead of
      // filling their CommonJS exports; webpack, which builds Grafana, hides
      // `define` from them the same way.
      define: 'undefined',
    },
    // Keep names readable in console errors; whitespace/syntax minification halves the size.
    minifyWhitespace: true,
    minifySyntax: true,
    jsx: 'automatic',
    loader: { '.svg': 'text', '.css': 'empty', '.woff': 'empty', '.woff2': 'empty' },
    logLevel: 'error',
  });
}

export async function startHostServer(opts: HostServerOptions): Promise<HostServer> {
  const hostDir = path.join(opts.repoRoot, 'e2e/host');
  const systemjsDir = path.join(opts.repoRoot, 'node_modules/systemjs/dist');
  const uiPublicDir = path.join(opts.repoRoot, 'node_modules/@grafana/ui/dist/public');
  const plugins = { ...opts.plugins };
  const subPath = opts.subPath ?? '';

  const sendFile = (res: http.ServerResponse, file: string, extraHeaders: Record<string, string> = {}) => {
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${file}`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
      ...extraHeaders,
    });
    res.end(readFileSync(file));
  };

  /** A plugin file as Grafana serves it (production mode): cacheable for an
   * hour by anyone, revalidated by modification time (http.ServeContent). */
  const sendPluginFile = (req: http.IncomingMessage, res: http.ServerResponse, file: string) => {
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Plugin file not found"}');
      return;
    }
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const headers = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'public, max-age=3600',
      'last-modified': lastModified.toUTCString(),
    };
    const since = Date.parse(req.headers['if-modified-since'] ?? '');
    if (!Number.isNaN(since) && lastModified.getTime() <= since) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, headers).end(readFileSync(file));
  };

  /** Resolve `rel` inside `root`, refusing `..` escapes. */
  const inside = (root: string, rel: string): string | undefined => {
    const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
    return full.startsWith(path.resolve(root) + path.sep) ? full : undefined;
  };

  /** What Grafana's index.html puts in window.grafanaBootData.settings for plugins. */
  const panelsMeta = () =>
    Object.fromEntries(
      Object.entries(plugins).flatMap(([id, dir]) => {
        const file = dir && path.join(dir, 'plugin.json');
        if (!file || !existsSync(file)) {
          return [];
        }
        const meta = JSON.parse(readFileSync(file, 'utf8'));
        const base = `public/plugins/${id}`;
        return [[id, { id, name: meta.name, type: meta.type, baseUrl: base, module: `${base}/module.js`, info: meta.info }]];
      }),
    );

  const proxyToPrometheus = (req: http.IncomingMessage, res: http.ServerResponse, rest: string) => {
    const target = new URL(rest, opts.prometheusUrl);
    const upstream = http.request(target, { method: req.method, headers: { accept: 'application/json' } }, (up) => {
      res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'application/json' });
      up.pipe(res);
    });
    upstream.on('error', (e) => res.writeHead(502, { 'content-type': 'text/plain' }).end(`prometheus: ${e.message}`));
    req.pipe(upstream);
  };

  const grafanaOf = (url: URL): GrafanaVersion | undefined => {
    const g = url.searchParams.get('grafana') ?? '13';
    return g in GRAFANA_VERSIONS ? (g as GrafanaVersion) : undefined;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const full = decodeURIComponent(url.pathname);
    if (full === '/favicon.ico') {
      // The browser asks the origin's root, whatever Grafana's sub-path.
      res.writeHead(204).end();
      return;
    }
    if (!(full === subPath || full.startsWith(`${subPath}/`))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: this Grafana is served under ${subPath}/`);
      return;
    }
    const p = full.slice(subPath.length) || '/';
    if (p === '/' || p === '/index.html') {
      const grafana = grafanaOf(url);
      if (!grafana) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(`unknown grafana version ${url.searchParams.get('grafana')}`);
        return;
      }
      const nonce = randomBytes(16).toString('base64');
      const csp = url.searchParams.get('csp');
      const headers: Record<string, string> = { 'content-type': TYPES['.html'], 'cache-control': 'no-store' };
      if (csp === README_CSP) {
        headers['content-security-policy'] = readmeCspTemplate(opts.repoRoot)
          .replaceAll('$NONCE', `'nonce-${nonce}'`)
          .replaceAll('$ROOT_PATH', `${req.headers.host}${subPath}`);
      } else if (csp) {
        if (!CSP_POLICIES[csp]) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`unknown csp policy ${csp}`);
          return;
        }
        headers['content-security-policy'] = CSP_POLICIES[csp];
      }
      // Grafana's index.html: <base href="[[.AppSubUrl]]/">, nonce on its scripts.
      const html = readFileSync(path.join(hostDir, 'index.html'), 'utf8')
        .replaceAll('%BASE%', `${subPath}/`)
        .replaceAll('%NONCE%', nonce)
        .replaceAll('%GRAFANA%', grafana);
      res.writeHead(200, headers).end(html);
      return;
    }
    if (p === '/boot.js') {
      const grafana = grafanaOf(url) ?? '13';
      const boot = {
        assets: { dark: '', light: '' },
        settings: {
          appSubUrl: subPath,
          buildInfo: { version: GRAFANA_VERSIONS[grafana].version, commit: 'e2e', env: 'production' },
          featureToggles: {},
          panels: panelsMeta(),
        },
        user: { theme: 'dark', timezone: 'browser', locale: 'en-US', language: 'en-US' },
        navTree: [],
      };
      res.writeHead(200, { 'content-type': TYPES['.js'], 'cache-control': 'no-store' });
      res.end(`window.grafanaBootData = ${JSON.stringify(boot)};\n`);
      return;
    }
    const bundle = /^\/host-(\d+)\.js$/.exec(p);
    if (bundle) {
      sendFile(res, path.join(opts.buildDir, `host-${bundle[1]}.js`));
      return;
    }
    if (p.startsWith('/public/img/')) {
      // Icons @grafana/ui fetches at runtime, shipped inside the package.
      const f = inside(uiPublicDir, p.slice('/public/'.length));
      return f ? sendFile(res, f) : res.writeHead(400).end();
    }
    if (p.startsWith('/public/fonts/')) {
      // Grafana serves Inter and Roboto Mono here; no npm package ships them,
      // so the host answers with the system's DejaVu faces (looks differ a
      // little from Grafana; no test measures text width).
      const italic = /Italic/.test(p);
      const face = p.includes('/roboto/') ? 'DejaVuSansMono.ttf' : italic ? 'DejaVuSans-Oblique.ttf' : 'DejaVuSans.ttf';
      sendFile(res, path.join(SYSTEM_FONTS, face), { 'content-type': 'font/ttf' });
      return;
    }
    if (p.startsWith('/vendor/systemjs/')) {
      const f = inside(systemjsDir, p.slice('/vendor/systemjs/'.length));
      return f ? sendFile(res, f) : res.writeHead(400).end();
    }
    const plugin = /^\/public\/plugins\/([^/]+)\/(.+)$/.exec(p);
    if (plugin) {
      const dir = plugins[plugin[1]];
      if (!dir) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no plugin ${plugin[1]} (not built?)`);
        return;
      }
      const f = inside(dir, plugin[2]);
      return f ? sendPluginFile(req, res, f) : res.writeHead(400).end();
    }
    if (p.startsWith('/api/prom/')) {
      proxyToPrometheus(req, res, p.slice('/api/prom'.length) + url.search);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  const listening = await listenOnLoopback(server);
  return {
    // Where the tests open pages: the sub-path is part of Grafana's URL.
    url: `${listening.url}${subPath}`,
    close: listening.close,
    setPluginDir: (id, dir) => {
      plugins[id] = dir;
    },
  };
}
