// Starts everything the browser tests read from, publishes the URLs to the
// test workers through environment variables, and returns the teardown that
// stops it all. If setup fails half-way, what it started is stopped before the
// error propagates.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { FIXTURE_PROVIDER, FIXTURE_BREAKERS, fixtureEvents, LIVE_BREAKERS, LIVE_PROVIDER, TRUTH_JOB } from './support/fixtures';
import { bundleHost, GRAFANA_VERSIONS, startHostServer, type GrafanaVersion } from './support/hostServer';
import { stopAll } from './support/processes';
import {
  buildExporter,
  pushEvents,
  startExporter,
  startPrometheus,
  startStaticMetrics,
  waitForSeries,
} from './support/services';

export const REPO_ROOT = path.resolve(__dirname, '..');
export const PLUGIN_ID = 'statescope-statemachine-panel';
export const FAKE_PLUGIN_ID = 'statescope-fake-panel';

/** The built plugin (module.js, plugin.json, the .wasm): `npm run build` output. */
export function findPluginDist(): string | undefined {
  const candidates = [process.env.STATESCOPE_PLUGIN_DIST, path.join(REPO_ROOT, 'dist'), path.join(REPO_ROOT, 'panel-plugin/dist')];
  return candidates.find((d): d is string => !!d && existsSync(path.join(d, 'module.js')));
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const started = Date.now();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'statescope-e2e-'));
  const closers: Array<() => Promise<void>> = [];
  const teardown = async () => {
    for (const close of closers.reverse()) {
      await close().catch(() => undefined);
    }
    await stopAll();
    if (!process.env.STATESCOPE_E2E_KEEP_TMP) {
      rmSync(workDir, { recursive: true, force: true });
    }
  };
  try {
    const buildDir = path.join(workDir, 'build');
    mkdirSync(buildDir);
    const bin = buildExporter(REPO_ROOT);
    const [exporter, r4j] = await Promise.all([
      startExporter(bin, path.join(workDir, 'exporter-data'), workDir),
      startStaticMetrics(path.join(REPO_ROOT, 'e2e/fixtures/resilience4j.metrics')),
      ...(Object.keys(GRAFANA_VERSIONS) as GrafanaVersion[]).map((g) => bundleHost(REPO_ROOT, buildDir, g)),
    ]);
    closers.push(r4j.close);
    await pushEvents(exporter.url, fixtureEvents());

    // tests/truth.spec.ts starts an exporter of its own and lists it here.
    const truthTargets = path.join(workDir, 'truth-targets.json');
    writeFileSync(truthTargets, '[]');
    const prom = await startPrometheus(
      workDir,
      { statescope: new URL(exporter.url).host, resilience4j: new URL(r4j.url).host },
      { [TRUTH_JOB]: truthTargets }
    );
    // Everything the tests query is in Prometheus before the first test runs.
    const fixtureCount = Object.keys(FIXTURE_BREAKERS).length;
    await waitForSeries(prom.url, `circuit_breaker_state{provider="${FIXTURE_PROVIDER}"}`, fixtureCount);
    await waitForSeries(prom.url, `circuit_breaker_state{provider="${LIVE_PROVIDER}"}`, LIVE_BREAKERS.length);
    await waitForSeries(prom.url, 'resilience4j_circuitbreaker_state == 1', 4);

    const pluginDist = findPluginDist();
    const host = await startHostServer({
      repoRoot: REPO_ROOT,
      buildDir,
      plugins: { [PLUGIN_ID]: pluginDist, [FAKE_PLUGIN_ID]: path.join(REPO_ROOT, 'e2e/fixtures/fake-plugin') },
      prometheusUrl: prom.url,
    });
    closers.push(host.close);

    process.env.STATESCOPE_E2E_HOST_URL = host.url;
    // For tests that start their own host (a sub-path, a plugin upgrade).
    process.env.STATESCOPE_E2E_HOST_BUILD_DIR = buildDir;
    process.env.STATESCOPE_E2E_EXPORTER_URL = exporter.url;
    process.env.STATESCOPE_E2E_EXPORTER_BIN = bin;
    process.env.STATESCOPE_E2E_TRUTH_TARGETS = truthTargets;
    process.env.STATESCOPE_E2E_PROMETHEUS_URL = prom.url;
    process.env.STATESCOPE_E2E_PLUGIN_DIST = pluginDist ?? 'none';
    console.log(
      `e2e stack up in ${((Date.now() - started) / 1000).toFixed(1)} s: host ${host.url}, exporter ${exporter.url}, ` +
        `prometheus ${prom.url}, plugin ${pluginDist ?? '(not built)'}, logs in ${workDir}`
    );
    return teardown;
  } catch (e) {
    await teardown();
    throw e;
  }
}
