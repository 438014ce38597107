// The small web server that plays Grafana's part for the panel: the host page
// and its bundle, SystemJS, the plugins under public/plugins/<id>/ (as Grafana
// serves them), and /api/prom/* proxied to Prometheus (as Grafana's datasource
// proxy does). Binds 127.0.0.1 on a free port.
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { build } from 'esbuild';

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

export interface HostServerOptions {
  repoRoot: string;
  /** Where the bundled host.js goes. */
  buildDir: string;
  /** Plugin id -> directory served as public/plugins/<id>/. */
  plugins: Record<string, string | undefined>;
  prometheusUrl: string;
}

export async function bundleHost(repoRoot: string, buildDir: string): Promise<void> {
  await build({
    entryPoints: [path.join(repoRoot, 'e2e/host/host.tsx')],
    bundle: true,
    format: 'iife',
    target: 'chrome120',
    outfile: path.join(buildDir, 'host.js'),
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

export async function startHostServer(opts: HostServerOptions): Promise<LoopbackServer> {
  const hostDir = path.join(opts.repoRoot, 'e2e/host');
  const systemjsDir = path.join(opts.repoRoot, 'node_modules/systemjs/dist');
  const uiPublicDir = path.join(opts.repoRoot, 'node_modules/@grafana/ui/dist/public');

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

  /** Resolve `rel` inside `root`, refusing `..` escapes. */
  const inside = (root: string, rel: string): string | undefined => {
    const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
    return full.startsWith(path.resolve(root) + path.sep) ? full : undefined;
  };

  const proxyToPrometheus = (req: http.IncomingMessage, res: http.ServerResponse, rest: string) => {
    const target = new URL(rest, opts.prometheusUrl);
    const upstream = http.request(target, { method: req.method, headers: { accept: 'application/json' } }, (up) => {
      res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'application/json' });
      up.pipe(res);
    });
    upstream.on('error', (e) => res.writeHead(502, { 'content-type': 'text/plain' }).end(`prometheus: ${e.message}`));
    req.pipe(upstream);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const p = decodeURIComponent(url.pathname);
    if (p === '/' || p === '/index.html') {
      const csp = url.searchParams.get('csp');
      const headers: Record<string, string> = {};
      if (csp) {
        if (!CSP_POLICIES[csp]) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`unknown csp policy ${csp}`);
          return;
        }
        headers['content-security-policy'] = CSP_POLICIES[csp];
      }
      sendFile(res, path.join(hostDir, 'index.html'), headers);
      return;
    }
    if (p === '/boot.js') {
      sendFile(res, path.join(hostDir, 'boot.js'));
      return;
    }
    if (p === '/host.js') {
      sendFile(res, path.join(opts.buildDir, 'host.js'));
      return;
    }
    if (p === '/favicon.ico') {
      res.writeHead(204).end();
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
      const dir = opts.plugins[plugin[1]];
      if (!dir) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no plugin ${plugin[1]} (not built?)`);
        return;
      }
      const f = inside(dir, plugin[2]);
      return f ? sendFile(res, f) : res.writeHead(400).end();
    }
    if (p.startsWith('/api/prom/')) {
      proxyToPrometheus(req, res, p.slice('/api/prom'.length) + url.search);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  return listenOnLoopback(server);
}
