// The real panel (npm run build -> dist/) in the Grafana-like host, fed by a
// real Prometheus scraping the real exporter (demo fleet + fixture machines)
// and a Resilience4j-style /metrics fixture.
import { existsSync } from 'node:fs';
import path from 'node:path';

import {
  FIXTURE_BREAKERS,
  fixtureCounts,
  fixtureFinalStates,
  LIVE_BREAKERS,
  RESILIENCE4J_STATES,
} from '../support/fixtures';
import { nodeCounts, nonZero, panelDom, tileStates } from '../support/panelDom';
import { env, expect, test, type OpenOptions } from '../support/test';

const CB = 'circuit_breaker';

/** The Circuit breakers dashboard's five queries (provisioning/), narrowed by a label matcher. */
function breakerQueries(matcher: string): Pick<OpenOptions, 'expr' | 'legend'> {
  return {
    expr: [
      `statescope_state{kind="${CB}", ${matcher}}`,
      `statescope_transitions_total{kind="${CB}", ${matcher}}`,
      `statescope_transition_allowed{kind="${CB}"}`,
      `statescope_transitions_created{kind="${CB}", ${matcher}}`,
      `statescope_state_since_timestamp_seconds{kind="${CB}", ${matcher}}`,
    ],
    legend: [
      '{{machine}} {{state}}',
      '{{machine}} {{from}}->{{to}}',
      '{{from}}->{{to}}',
      '{{machine}} {{from}}->{{to}} created',
      '{{machine}} since',
    ],
  };
}

function counted(states: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of Object.values(states)) {
    out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

test.describe('Statescope panel (built dist/) on exporter + Prometheus data', () => {
  test.beforeAll(() => {
    const dist = env('STATESCOPE_E2E_PLUGIN_DIST');
    expect(dist, 'the panel is not built: run `npm run build` first (dist/module.js missing)').not.toBe('none');
    expect(existsSync(path.join(dist, 'plugin.json')), `${dist}/plugin.json`).toBe(true);
  });

  test('both views: diagram node counts and tile states are what the exporter was told @smoke', async ({ openPanel }) => {
    const p = await openPanel({ ...breakerQueries('provider="e2e"'), options: { view: 'both' } });
    const dom = panelDom(p.page);
    await expect(dom.diagram(CB)).toBeVisible();
    await expect(dom.tiles).toHaveCount(Object.keys(FIXTURE_BREAKERS).length);
    expect(nonZero(await nodeCounts(p.page, CB))).toEqual(fixtureCounts());
    expect(await tileStates(p.page)).toEqual(fixtureFinalStates());
    // Worst first: the open breakers lead the grid.
    await expect(dom.tiles.first().locator('.ss-state')).toHaveText('open');
    await p.shot('both-views-fixture-breakers');
  });

  test('diagram view alone and machines view alone', async ({ openPanel }) => {
    const d = await openPanel({ ...breakerQueries('provider="e2e"'), options: { view: 'diagram' } });
    const dom = panelDom(d.page);
    await expect(dom.diagram(CB)).toBeVisible();
    await expect(dom.tiles).toHaveCount(0);
    expect(nonZero(await nodeCounts(d.page, CB))).toEqual(fixtureCounts());
    await d.shot('diagram-view');

    const m = await openPanel({ ...breakerQueries('provider="e2e"'), options: { view: 'machines' } });
    await expect(dom.anyDiagram).toHaveCount(0);
    await expect(dom.tiles).toHaveCount(Object.keys(FIXTURE_BREAKERS).length);
    expect(await tileStates(m.page)).toEqual(fixtureFinalStates());
    await m.shot('machines-view');
  });

  test('the demo fleet: every breaker and worker is counted once', async ({ openPanel }) => {
    const breakers = await openPanel({ ...breakerQueries('provider=~"openai|anthropic|stripe"'), options: { view: 'both' } });
    // 3 providers x 3 keys, whatever states the demo moved them to.
    await expect(panelDom(breakers.page).diagram(CB)).toBeVisible();
    const cb = await nodeCounts(breakers.page, CB);
    expect(Object.values(cb).reduce((a, b) => a + b, 0)).toBe(9);
    await breakers.shot('demo-breakers');

    const workers = await openPanel({
      expr: ['statescope_state{kind="worker"}', 'statescope_transitions_total{kind="worker"}', 'statescope_transition_allowed{kind="worker"}'],
      legend: ['{{machine}} {{state}}', '{{machine}} {{from}}->{{to}}', '{{from}}->{{to}}'],
      options: { view: 'both' },
    });
    await expect(panelDom(workers.page).diagram('worker')).toBeVisible();
    const w = await nodeCounts(workers.page, 'worker');
    expect(Object.keys(w).sort()).toEqual(['busy', 'draining', 'idle', 'offline', 'starting']);
    expect(Object.values(w).reduce((a, b) => a + b, 0)).toBe(12);
    await workers.shot('demo-workers');
  });

  test('a transition pushed during the test shows after the next refresh @smoke', async ({ openPanel, push, waitForProm }) => {
    const machine = LIVE_BREAKERS[1];
    const p = await openPanel({ ...breakerQueries('provider="live"'), options: { view: 'both' } });
    const dom = panelDom(p.page);
    await expect(dom.tile(machine).locator('.ss-state')).toHaveText('closed');
    const before = nonZero(await nodeCounts(p.page, CB));
    expect(before).toEqual({ closed: LIVE_BREAKERS.length });
    // Other tests may have tripped other live breakers in this time range.
    const edge = dom.edgeLabel(CB, 'closed', 'open');
    // Edge labels count transitions: "3×".
    const tripsBefore = (await edge.count()) ? Number((await edge.textContent())?.replace(/×$/, '')) : 0;
    // The same test on another Grafana version moved this breaker earlier in the range.
    const moves = dom.tile(machine).getByText(/^↻ \d+$/);
    const movesBefore = (await moves.count()) ? Number((await moves.first().textContent())?.slice(2)) : 0;

    await push([{ type: 'transition', kind: CB, machine, to: 'open' }]);
    await waitForProm(`statescope_state{machine="${machine}", state="open"}`, (r) => r[0]?.value[1] === '1');
    // Queries end at "now" aligned down to the 1 s step: let one step pass.
    await p.page.waitForTimeout(1100);
    // Nothing changes until the dashboard refreshes...
    await expect(dom.tile(machine).locator('.ss-state')).toHaveText('closed');
    await p.refresh();
    // ...then the new state is there, in the tile and in the diagram.
    await expect(dom.tile(machine).locator('.ss-state')).toHaveText('open');
    expect(nonZero(await nodeCounts(p.page, CB))).toEqual({ closed: LIVE_BREAKERS.length - 1, open: 1 });
    // The exporter's counter for closed -> open counts this transition: on
    // the tile and on the diagram's edge.
    await expect(dom.tile(machine).getByText(`↻ ${movesBefore + 1}`, { exact: true })).toBeVisible();
    await expect(edge).toHaveText(`${tripsBefore + 1}×`);
    await p.shot('after-refresh-live-transition');

    await push([
      { type: 'transition', kind: CB, machine, to: 'half_open' },
      { type: 'transition', kind: CB, machine, to: 'closed' },
    ]);
  });

  test('dense cells: a refresh rewrites the cell of the machine that moved, keeping the cells', async ({ openPanel, push, waitForProm }) => {
    const machine = LIVE_BREAKERS[2];
    const p = await openPanel({ ...breakerQueries('provider="live"'), options: { view: 'machines', tiles: 'dense' } });
    const cells = panelDom(p.page).root.locator('.ss-cell');
    const cell = panelDom(p.page).root.locator(`.ss-cell[aria-label^="${machine}: "]`);
    await expect(cell).toHaveAttribute('aria-label', `${machine}: closed`);
    await expect(cells).toHaveCount(LIVE_BREAKERS.length);
    // Tag the elements drawn now: a refresh must update them, not build new ones
    // (a cell under the pointer keeps its outline and tooltip through a refresh).
    await cells.evaluateAll((els) => els.forEach((e) => e.setAttribute('data-drawn-before', '')));

    await push([{ type: 'transition', kind: CB, machine, to: 'open' }]);
    await waitForProm(`statescope_state{machine="${machine}", state="open"}`, (r) => r[0]?.value[1] === '1');
    await p.page.waitForTimeout(1100);
    await p.refresh();
    await expect(cell).toHaveAttribute('aria-label', `${machine}: open`);
    // Worst first: the open breaker's cell leads.
    await expect(cells.first()).toHaveAttribute('aria-label', `${machine}: open`);
    await expect(cells).toHaveCount(LIVE_BREAKERS.length);
    expect(await cells.evaluateAll((els) => els.filter((e) => !e.hasAttribute('data-drawn-before')).length)).toBe(0);

    await push([
      { type: 'transition', kind: CB, machine, to: 'half_open' },
      { type: 'transition', kind: CB, machine, to: 'closed' },
    ]);
  });

  test('enum gauge 0/1/2 (circuit_breaker_state) renders the same breakers', async ({ openPanel }) => {
    const p = await openPanel({ expr: ['circuit_breaker_state{provider="e2e"}'], options: { view: 'both' } });
    const dom = panelDom(p.page);
    await expect(dom.diagram(CB)).toBeVisible();
    expect(nonZero(await nodeCounts(p.page, CB))).toEqual(fixtureCounts());
    await expect(dom.tiles).toHaveCount(Object.keys(FIXTURE_BREAKERS).length);
    expect(counted(await tileStates(p.page))).toEqual(fixtureCounts());
    await p.shot('enum-gauge');
  });

  test('Resilience4j one-hot series render', async ({ openPanel }) => {
    const p = await openPanel({ expr: ['resilience4j_circuitbreaker_state'], options: { view: 'both' } });
    const dom = panelDom(p.page);
    await expect(dom.anyDiagram).toHaveCount(1);
    await expect(dom.tiles).toHaveCount(Object.keys(RESILIENCE4J_STATES).length);
    const tiles = await tileStates(p.page);
    for (const [name, state] of Object.entries(RESILIENCE4J_STATES)) {
      const id = Object.keys(tiles).find((t) => t.includes(name));
      expect(id, `a tile for breaker ${name} among ${Object.keys(tiles).join(', ')}`).toBeDefined();
      expect(tiles[id!]).toBe(state);
    }
    const counts = nonZero(await nodeCounts(p.page, await diagramKind(p.page)));
    expect(counts).toEqual(counted(RESILIENCE4J_STATES));
    await p.shot('resilience4j-one-hot');
  });

  test('dark and light themes: colours are Grafana theme colours @smoke', async ({ openPanel }) => {
    const seen: Record<string, { text: string; background: string }> = {};
    for (const mode of ['dark', 'light'] as const) {
      const p = await openPanel({ ...breakerQueries('provider="e2e"'), theme: mode });
      // Grafana's createTheme({colors: {mode}}), as the host page made it.
      const theme = await p.page.evaluate(() =>
        (window as never as { statescopeHost: { themeColors(): { mode: string; textPrimary: string; backgroundPrimary: string } } }).statescopeHost.themeColors()
      );
      expect(theme.mode).toBe(mode);
      const dom = panelDom(p.page);
      await expect(dom.diagram(CB)).toBeVisible();
      const text = await dom.root.evaluate((el) => getComputedStyle(el).color);
      // The panel draws on the panel chrome's background (it sets none itself).
      const background = await p.page.evaluate(() => {
        let el: Element | null = document.querySelector('.ss-root');
        while (el) {
          const bg = getComputedStyle(el).backgroundColor;
          if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') {
            return bg;
          }
          el = el.parentElement;
        }
        return '';
      });
      expect(text).toBe(await cssColor(p.page, theme.textPrimary));
      expect(background).toBe(await cssColor(p.page, theme.backgroundPrimary));
      seen[mode] = { text, background };
      await p.shot(`theme-${mode}`);
    }
    expect(seen.dark.text).not.toBe(seen.light.text);
    expect(seen.dark.background).not.toBe(seen.light.background);
  });

  test('no data gives its one-line message', async ({ openPanel }) => {
    const p = await openPanel({ expr: ['statescope_no_such_metric'] });
    const msg = panelDom(p.page).message;
    await expect(msg).toHaveText(/^No data: the query returned no series\./);
    expect(await msg.innerText()).not.toContain('\n');
    await expect(panelDom(p.page).anyDiagram).toHaveCount(0);
    await p.shot('no-data');
  });

  test('wrong data gives its one-line message', async ({ openPanel }) => {
    // A Statescope series that holds no state (the exporter's machine count).
    const a = await openPanel({ expr: ['statescope_exporter_machines'] });
    const msg = panelDom(a.page).message;
    await expect(msg).toHaveText(/^No state series: the query returned only statescope_exporter_machines/);
    expect(await msg.innerText()).not.toContain('\n');
    await a.shot('wrong-data-no-state-series');

    // Prometheus's scrape durations (fractions of a second) picked instead of a state.
    const b = await openPanel({ expr: ['scrape_duration_seconds'] });
    await expect(msg).toHaveText(/^Series .* has values .* that are not states/);
    expect(await msg.innerText()).not.toContain('\n');
    await b.shot('wrong-data-values-not-states');
  });

  test("WebAssembly blocked by the page's CSP gives its message", async ({ openPanel, expectConsoleErrors }) => {
    // module.ts logs the load failure once, with the browser's reason.
    expectConsoleErrors([/Statescope: WebAssembly failed to load/]);
    const p = await openPanel({ ...breakerQueries('provider="e2e"'), csp: 'no-wasm' });
    const msg = panelDom(p.page).loadFailure;
    await expect(msg).toHaveText(/^Statescope cannot run: the page's Content-Security-Policy blocks WebAssembly\. .*'wasm-unsafe-eval'/);
    expect(await msg.innerText()).not.toContain('\n');
    await expect(panelDom(p.page).anyDiagram).toHaveCount(0);
    await p.shot('csp-wasm-blocked');
  });

  test("a CSP with 'unsafe-eval' but no 'wasm-unsafe-eval' still runs the panel in Chromium", async ({ openPanel }) => {
    const p = await openPanel({ ...breakerQueries('provider="e2e"'), csp: 'eval-only' });
    await expect(panelDom(p.page).diagram(CB)).toBeVisible();
    expect(nonZero(await nodeCounts(p.page, CB))).toEqual(fixtureCounts());
  });
});

/** The kind name of the only diagram on the page. */
async function diagramKind(page: import('@playwright/test').Page): Promise<string> {
  const label = (await panelDom(page).anyDiagram.getAttribute('aria-label')) ?? '';
  return label.replace(/^State diagram of /, '');
}

/** How the browser writes a theme colour once computed (rgb()/rgba()). */
function cssColor(page: import('@playwright/test').Page, color: string): Promise<string> {
  return page.evaluate((c) => {
    const el = document.createElement('span');
    el.style.color = c;
    document.body.appendChild(el);
    const out = getComputedStyle(el).color;
    el.remove();
    return out;
  }, color);
}
