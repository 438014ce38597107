// The hosting page proven on its own, with a fake panel plugin
// (fixtures/fake-plugin/module.js, an AMD PanelPlugin that prints the frames it
// gets): if these fail, the panel tests' failures say nothing about the panel.
import { FAKE_PLUGIN_ID } from '../global-setup';
import { FIXTURE_BREAKERS, fixtureFinalStates, LIVE_BREAKERS, RESILIENCE4J_STATES } from '../support/fixtures';
import { env, expect, test } from '../support/test';

const ENUM = { closed: 0, open: 1, half_open: 2 } as Record<string, number>;

test.describe('host page with a fake AMD panel plugin', () => {
  test('loads module.js through SystemJS and renders Prometheus frames in Grafana shape @smoke', async ({ openPanel }) => {
    const p = await openPanel({ plugin: FAKE_PLUGIN_ID, expr: ['circuit_breaker_state{provider="e2e"}'] });
    const lines = p.page.getByTestId('fake-series');
    // One frame per series, as Grafana's Prometheus datasource returns them.
    await expect(lines).toHaveCount(Object.keys(FIXTURE_BREAKERS).length);
    // The option default declared by the plugin reached the panel.
    await expect(p.page.getByTestId('fake-heading')).toHaveText(`series (${Object.keys(FIXTURE_BREAKERS).length})`);
    // Each series' last value is the enum of the state the exporter was told.
    for (const [machine, state] of Object.entries(fixtureFinalStates())) {
      const keyId = machine.split('/')[1];
      // transformV2 names each series by the labels that differ between them ("__auto" legend).
      await expect(lines.filter({ hasText: `key_id="${keyId}"` })).toHaveAttribute('data-last', String(ENUM[state]));
    }
    await expect(lines.first()).toHaveAttribute('data-metric', 'circuit_breaker_state');
    const series = (await p.page.evaluate(() => (window as never as { statescopeHost: { lastSeries(): unknown[] } }).statescopeHost.lastSeries())) as Array<{
      refId: string;
      fields: Array<{ name: string; labels?: Record<string, string> }>;
    }>;
    // Grafana 13's "dataplane" frames: Time, then the value field named after the metric.
    expect(series.map((s) => s.fields.map((f) => f.name))).toEqual(series.map(() => ['Time', 'circuit_breaker_state']));
    expect(series.every((s) => s.refId === 'A' && s.fields[1].labels?.__name__ === 'circuit_breaker_state')).toBe(true);
    await p.shot('fake-plugin-enum');
  });

  test('renders the Resilience4j one-hot series', async ({ openPanel }) => {
    const p = await openPanel({ plugin: FAKE_PLUGIN_ID, expr: ['resilience4j_circuitbreaker_state'] });
    // 4 breakers x 6 Resilience4j states.
    await expect(p.page.getByTestId('fake-series')).toHaveCount(4 * 6);
    for (const [name, state] of Object.entries(RESILIENCE4J_STATES)) {
      await expect(
        p.page.getByTestId('fake-series').filter({ hasText: `name="${name}", state="${state}"` })
      ).toHaveAttribute('data-last', '1');
    }
    await p.shot('fake-plugin-resilience4j');
  });

  test('a refresh re-queries Prometheus and re-renders with the new data', async ({ openPanel, push, waitForProm }) => {
    const machine = LIVE_BREAKERS[0];
    const keyId = machine.split('/')[1];
    const p = await openPanel({ plugin: FAKE_PLUGIN_ID, expr: [`circuit_breaker_state{provider="live",key_id="${keyId}"}`] });
    const line = p.page.getByTestId('fake-series');
    await expect(line).toHaveAttribute('data-last', '0');
    await push([{ type: 'transition', kind: 'circuit_breaker', machine, to: 'open' }]);
    await waitForProm(`circuit_breaker_state{provider="live",key_id="${keyId}"}`, (r) => r[0]?.value[1] === '1');
    // A query at "now" is aligned down to the step (1 s): let one step pass.
    await p.page.waitForTimeout(1100);
    await p.refresh();
    await expect(line).toHaveAttribute('data-last', '1');
    await p.shot('fake-plugin-after-refresh');
    // Back to closed through half_open, so other tests see the fixture as pushed.
    await push([
      { type: 'transition', kind: 'circuit_breaker', machine, to: 'half_open' },
      { type: 'transition', kind: 'circuit_breaker', machine, to: 'closed' },
    ]);
  });

  test('a query with no series gives the plugin an empty frame, as Grafana does', async ({ openPanel }) => {
    const p = await openPanel({ plugin: FAKE_PLUGIN_ID, expr: ['statescope_no_such_metric'] });
    await expect(p.page.getByTestId('fake-message')).toHaveText('No data');
    await p.shot('fake-plugin-no-data');
  });

  test('light and dark themes reach the plugin through ThemeContext', async ({ openPanel }) => {
    const colours: Record<string, string> = {};
    for (const theme of ['dark', 'light'] as const) {
      const p = await openPanel({ plugin: FAKE_PLUGIN_ID, theme, expr: ['resilience4j_circuitbreaker_state == 1'] });
      const panel = p.page.getByTestId('fake-panel');
      await expect(panel).toHaveAttribute('data-theme', theme);
      colours[theme] = await panel.evaluate((el) => getComputedStyle(el).color);
      await p.shot(`fake-plugin-${theme}`);
    }
    expect(colours.dark).not.toEqual(colours.light);
  });

  test("the host page itself runs under CSP script-src 'self' (no eval, no wasm)", async ({ openPanel }) => {
    // So when the real panel fails under this policy, it is the panel's wasm that was blocked.
    const p = await openPanel({ plugin: FAKE_PLUGIN_ID, csp: 'no-wasm', expr: ['resilience4j_circuitbreaker_state == 1'] });
    await expect(p.page.getByTestId('fake-series')).toHaveCount(4);
    const blocked = await p.page.evaluate(() =>
      WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(
        () => '',
        (e: Error) => e.message
      )
    );
    expect(blocked).toMatch(/Content Security Policy/);
  });

  test('the host refuses a page without the plugin built and says so', async ({ page, expectConsoleErrors }) => {
    // Grafana's boot data lists only installed plugins; the host finds no module path to load.
    expectConsoleErrors([/host failed/]);
    await page.goto(`${env('STATESCOPE_E2E_HOST_URL')}/?plugin=statescope-missing-panel&expr=up`);
    await expect(page.locator('#host-status')).toHaveAttribute('data-state', 'error');
    await expect(page.locator('#host-status')).toContainText("boot data has no plugin statescope-missing-panel");
  });
});
