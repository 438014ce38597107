// Browser tests of the Statescope panel. `npm run test:e2e` from the repo root.
// Projects:
//  - harness: the hosting page itself, proven with a fake plugin (fixtures/fake-plugin)
//  - panel:   the real built plugin (dist/) against real exporter + Prometheus data
//  - loading: how Grafana loads it: upgrades under its cache headers, the
//             frontend sandbox, a sub-path, its default CSP, field templates
//  - grafana-12: the cases tagged @smoke again, in a host built from the
//             oldest Grafana packages the plugin claims (12.0, React 18);
//             the others run on the newest (13.2, React 19)
//  - truth:   real pybreaker and Celery through exporter, Prometheus and the panel: every layer equal
//  - grafana: the provisioned dashboards in a real Grafana; runs only when GRAFANA_URL is set
import path from 'node:path';

import type { PluginOptions } from '@grafana/plugin-e2e';
import { defineConfig, type Project } from '@playwright/test';

import { GRAFANA_AUTH_FILE, GRAFANA_USER } from './support/grafana';
import type { HostOptions } from './support/test';

const chromium = {
  browserName: 'chromium' as const,
  launchOptions: {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  },
};

const grafanaUrl = process.env.GRAFANA_URL;
const grafanaUser = GRAFANA_USER;

const grafanaProjects: Array<Project<PluginOptions>> = [
  ...(grafanaUrl
    ? [
        {
          // plugin-e2e's own auth project writes to <cwd>/playwright/.auth; ours keeps it in e2e/.auth.
          name: 'grafana-auth',
          testDir: path.join(__dirname, 'grafana'),
          testMatch: /auth\.setup\.ts/,
          use: { ...chromium, baseURL: grafanaUrl, user: grafanaUser, grafanaAPICredentials: grafanaUser },
        },
      ]
    : []),
  {
    name: 'grafana',
    testDir: path.join(__dirname, 'grafana'),
    testMatch: /.*\.spec\.ts/,
    dependencies: grafanaUrl ? ['grafana-auth'] : [],
    use: {
      ...chromium,
      baseURL: grafanaUrl,
      user: grafanaUser,
      grafanaAPICredentials: grafanaUser,
      storageState: grafanaUrl ? GRAFANA_AUTH_FILE : undefined,
      // readProvisionedDashboard reads <root>/dashboards/<file>.
      provisioningRootDir: path.join(__dirname, '..', 'provisioning', 'grafana'),
      viewport: { width: 1600, height: 1000 },
    },
  },
];

export default defineConfig<PluginOptions & HostOptions>({
  globalSetup: require.resolve('./global-setup'),
  outputDir: path.join(__dirname, 'test-results'),
  // The whole run, stack start-up included, is bounded.
  globalTimeout: 20 * 60_000,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  retries: 0,
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], [path.join(__dirname, 'support', 'summaryReporter.ts')]],
  use: {
    ...chromium,
    viewport: { width: 1100, height: 700 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    { name: 'harness', testDir: path.join(__dirname, 'tests'), testMatch: /harness\.spec\.ts/ },
    { name: 'panel', testDir: path.join(__dirname, 'tests'), testMatch: /panel\.spec\.ts/ },
    { name: 'glance', testDir: path.join(__dirname, 'tests'), testMatch: /glance\.spec\.ts/ },
    { name: 'loading', testDir: path.join(__dirname, 'tests'), testMatch: /loading\.spec\.ts/ },
    {
      name: 'grafana-12',
      testDir: path.join(__dirname, 'tests'),
      testMatch: /(harness|panel|loading)\.spec\.ts/,
      grep: /@smoke/,
      use: { grafanaVersion: '12' },
    },
    { name: 'truth', testDir: path.join(__dirname, 'tests'), testMatch: /truth\.spec\.ts/ },
    ...grafanaProjects,
  ],
});
