// The real services the browser tests read from: the statescope exporter
// (--demo plus fixture machines pushed through its API), a static
// Resilience4j-style /metrics page, and a Debian Prometheus scraping both
// every second. All on 127.0.0.1, each on a free port.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { listenOnLoopback, type LoopbackServer } from './loopback';
import { Fatal, freePort, startProcess, tail, waitFor, type Started } from './processes';

/** Build the exporter (no-op when up to date) and return its binary's path. */
export function buildExporter(repoRoot: string): string {
  if (process.env.STATESCOPE_EXPORTER_BIN) {
    return process.env.STATESCOPE_EXPORTER_BIN;
  }
  execFileSync('cargo', ['build', '--quiet', '--locked', '-p', 'statescope-exporter'], { cwd: repoRoot, stdio: 'inherit' });
  const meta = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: repoRoot, encoding: 'utf8' })
  ) as { target_directory: string };
  const bin = path.join(meta.target_directory, 'debug', 'statescope-exporter');
  if (!existsSync(bin)) {
    throw new Error(`cargo built statescope-exporter but ${bin} does not exist`);
  }
  return bin;
}

export interface Exporter {
  url: string;
  proc: Started;
}

/**
 * Start `statescope-exporter` (with `--demo` unless `demo: false`) on a free
 * port, retrying if the port got taken meanwhile.
 */
export async function startExporter(bin: string, dataDir: string, logDir: string, { demo = true, name = 'exporter' } = {}): Promise<Exporter> {
  mkdirSync(dataDir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [...(demo ? ['--demo'] : []), '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
    const proc = startProcess(name, bin, args, path.join(logDir, `${name}.log`), {
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor('the exporter to answer /readyz', 20_000, async () => {
        if (proc.child.exitCode !== null) {
          throw new Fatal(`exporter exited with ${proc.child.exitCode}:\n${tail(proc)}`);
        }
        const res = await fetch(`${url}/readyz`);
        return res.ok ? true : undefined;
      });
      return { url, proc };
    } catch (e) {
      if (attempt >= 3 || proc.child.exitCode === null) {
        throw e;
      }
    }
  }
}

/** An event as the exporter's POST /api/v1/events takes it (see COMMON.md). */
export type ExporterEvent =
  | { type: 'transition'; kind: string; machine: string; to: string; labels?: Record<string, string> }
  | { type: 'call'; kind: string; machine: string; outcome: 'success' | 'failure' | 'timeout' | 'rejected' }
  | { type: 'heartbeat'; kind: string; machine: string; labels?: Record<string, string> };

export async function pushEvents(exporterUrl: string, events: ExporterEvent[]): Promise<void> {
  const res = await fetch(`${exporterUrl}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  if (!res.ok) {
    throw new Error(`exporter refused events (${res.status}): ${await res.text()}\n${JSON.stringify(events)}`);
  }
}

/** Serves one static metrics text at /metrics, like a Spring Boot app with Resilience4j + Micrometer. */
export async function startStaticMetrics(file: string): Promise<LoopbackServer> {
  const body = readFileSync(file);
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  return listenOnLoopback(server);
}

export interface Prometheus {
  url: string;
  proc: Started;
}

/**
 * Start Prometheus scraping `targets` (job name -> host:port) every second,
 * and the targets listed in each of `fileTargets` (job name -> file_sd JSON
 * file, watched: a test adds its own exporter there while Prometheus runs).
 */
export async function startPrometheus(workDir: string, targets: Record<string, string>, fileTargets: Record<string, string> = {}): Promise<Prometheus> {
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    ...Object.entries(targets).flatMap(([job, target]) => [
      `  - job_name: ${job}`,
      '    scrape_interval: 1s',
      '    scrape_timeout: 900ms',
      '    static_configs:',
      `      - targets: ['${target}']`,
    ]),
    ...Object.entries(fileTargets).flatMap(([job, file]) => [
      `  - job_name: ${job}`,
      '    scrape_interval: 1s',
      '    scrape_timeout: 900ms',
      '    file_sd_configs:',
      `      - files: ['${file}']`,
      '        refresh_interval: 1s',
    ]),
    '',
  ].join('\n');
  const configFile = path.join(workDir, 'prometheus.yml');
  writeFileSync(configFile, config);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = startProcess(
      'prometheus',
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(workDir, `prometheus-data-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      path.join(workDir, 'prometheus.log')
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor('Prometheus to be ready', 30_000, async () => {
        if (proc.child.exitCode !== null) {
          throw new Fatal(`prometheus exited with ${proc.child.exitCode}:\n${tail(proc)}`);
        }
        const res = await fetch(`${url}/-/ready`);
        return res.ok ? true : undefined;
      });
      return { url, proc };
    } catch (e) {
      if (attempt >= 3 || proc.child.exitCode === null) {
        throw e;
      }
    }
  }
}

/** Instant query; returns the result vector. */
export async function promQuery(promUrl: string, expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  if (body.status !== 'success') {
    throw new Error(`prometheus query ${expr}: ${body.error}`);
  }
  return body.data.result;
}

/** Wait until `expr` returns exactly `count` series (e.g. all fixture machines scraped). */
export async function waitForSeries(promUrl: string, expr: string, count: number, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${count} series for ${expr}`, timeoutMs, async () => {
    const r = await promQuery(promUrl, expr);
    if (r.length !== count) {
      throw new Error(`got ${r.length}`);
    }
    return true;
  });
}
