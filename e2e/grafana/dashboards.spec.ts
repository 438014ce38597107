// The provisioned dashboards in a real Grafana (the compose stack), opened
// as a user opens them. Needs GRAFANA_URL (+ GRAFANA_USER, GRAFANA_PASSWORD);
// without it the whole suite is reported as skipped with the reason: the one
// documented exception to "no skipped tests" (no Grafana can run here).
import { expect, test } from '@grafana/plugin-e2e';

import path from 'node:path';

import { GRAFANA_SKIP_REASON } from '../support/grafana';
import { ARTIFACTS } from '../support/test';

const DASHBOARDS = [
  { file: 'circuit-breakers.json', title: 'Circuit breakers', statescopePanel: 'Circuit breakers', kind: 'circuit_breaker' },
  { file: 'workers.json', title: 'Workers', statescopePanel: 'Workers', kind: 'worker' },
  { file: 'exporter-health.json', title: 'Exporter health' },
] as const;

test.describe('provisioned dashboards in Grafana', () => {
  test.skip(!!GRAFANA_SKIP_REASON, GRAFANA_SKIP_REASON);

  for (const d of DASHBOARDS) {
    test(`"${d.title}" opens from the Statescope folder with no panel errors`, async ({
      readProvisionedDashboard,
      gotoDashboardPage,
      page,
      request,
    }, testInfo) => {
      const dashboard = await readProvisionedDashboard({ fileName: d.file });
      const meta = await request.get(`/api/dashboards/uid/${dashboard.uid}`);
      expect(meta.ok(), `dashboard ${dashboard.uid} is provisioned`).toBe(true);
      const body = (await meta.json()) as { dashboard: { title: string }; meta: { folderTitle: string } };
      expect(body.dashboard.title).toBe(d.title);
      expect(body.meta.folderTitle).toBe('Statescope');

      const dashboardPage = await gotoDashboardPage({ uid: dashboard.uid });
      if ('statescopePanel' in d) {
        const panel = dashboardPage.getPanelByTitle(d.statescopePanel);
        await panel.scrollIntoView();
        // The Statescope panel drew its diagram from the stack's live data.
        await expect(panel.locator.getByRole('img', { name: `State diagram of ${d.kind}` })).toBeVisible({ timeout: 30_000 });
        await expect(panel.locator.locator('.ss-tile').first()).toBeVisible();
      }
      await expect(dashboardPage).toHavePanelErrors(0);
      const shot = path.join(ARTIFACTS, `grafana-${d.file.replace(/\.json$/, '')}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      await testInfo.attach(d.title, { path: shot, contentType: 'image/png' });
    });
  }
});
