// What a first-time viewer must be able to read at a glance (issue 17): a
// fleet of 1,000 breakers pushed into the real exporter, scraped by the real
// Prometheus, drawn by the built panel at 1200x800 and 600x400 in Grafana's
// dark and light themes. Each case asserts what a person must see: every
// state's exact count labelled in its colour, nothing clipped at the panel's
// edges (chips, names, tooltips), no overlapping nodes or names, and text at
// WCAG AA contrast (4.5:1) measured from the computed styles.
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import type { Page } from '@playwright/test';

import { waitFor } from '../support/processes';
import { promQuery, pushEvents, type ExporterEvent } from '../support/services';
import { ARTIFACTS, env, expect, test, type OpenOptions } from '../support/test';

const CB = 'circuit_breaker';
const PROVIDERS = [
  'azure-openai-eastus',
  'bedrock-us-west-2',
  'vertex-europe-west4',
  'mistral-la-plateforme',
  'cohere-command',
  'groq-lpu',
  'together-ai',
  'fireworks-ai',
];
const FLEET = 1000;
const BATCH = 500;

/** The fleet: machine -> path of states it is pushed through (from closed). */
function fleet(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < FLEET; i++) {
    const machine = `${PROVIDERS[i % PROVIDERS.length]}/key-${String(Math.floor(i / PROVIDERS.length)).padStart(3, '0')}`;
    let path: string[] = [];
    if (i < 24) path = ['open'];
    else if (i < 36) path = ['open', 'half_open'];
    else if (i < 49) path = ['forced_open'];
    else if (i < 56) path = ['disabled'];
    // Keeps closing and reopening: three trips in a few seconds, flapping.
    else if (i < 62) path = ['open', 'half_open', 'closed', 'open', 'half_open', 'closed', 'open', 'half_open', 'closed'];
    out.set(machine, path);
  }
  return out;
}

function expectedCounts(f: Map<string, string[]>): Record<string, number> {
  const counts: Record<string, number> = { closed: 0, open: 0, half_open: 0, forced_open: 0, disabled: 0 };
  for (const p of f.values()) counts[p.at(-1) ?? 'closed'] += 1;
  return counts;
}

const MATCHER = `provider=~"${PROVIDERS.join('|')}"`;
const QUERIES: Pick<OpenOptions, 'expr' | 'legend'> = {
  expr: [
    `statescope_state{kind="${CB}", ${MATCHER}}`,
    `statescope_transitions_total{kind="${CB}", ${MATCHER}}`,
    `statescope_transition_allowed{kind="${CB}"}`,
  ],
  legend: ['{{machine}} {{state}}', '{{machine}} {{from}}->{{to}}', '{{from}}->{{to}}'],
};

// Each case opens a 1,000-machine panel and measures hundreds of boxes and
// colours: more than the suite's 60 s default on this 2-CPU machine.
test.describe.configure({ mode: 'serial', timeout: 180_000 });

test.beforeAll(async () => {
  // Every breaker first, then (once Prometheus has seen them) their moves, so
  // each transition counter starts after its machine, as in a real fleet.
  const created: ExporterEvent[] = [];
  const moves: ExporterEvent[] = [];
  for (const [machine, path] of fleet()) {
    const [provider, key_id] = machine.split('/');
    const labels = { provider, key_id };
    created.push({ type: 'transition', kind: CB, machine, to: 'closed', labels });
    for (const to of path) moves.push({ type: 'transition', kind: CB, machine, to, labels });
  }
  const push = async (events: ExporterEvent[]) => {
    for (let i = 0; i < events.length; i += BATCH) {
      await pushEvents(env('STATESCOPE_E2E_EXPORTER_URL'), events.slice(i, i + BATCH));
    }
  };
  await push(created);
  await waitFor('Prometheus to hold the 1,000 new breakers', 30_000, async () => {
    const r = await promQuery(env('STATESCOPE_E2E_PROMETHEUS_URL'), `count(statescope_state{kind="${CB}", state="closed", ${MATCHER}} == 1)`);
    return Number(r[0]?.value[1]) === FLEET ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 3500));
  await push(moves);
  const want = expectedCounts(fleet());
  await waitFor('Prometheus to hold the 1,000-breaker fleet in its final states', 30_000, async () => {
    const r = await promQuery(env('STATESCOPE_E2E_PROMETHEUS_URL'), `sum by (state) (statescope_state{kind="${CB}", ${MATCHER}})`);
    const got = Object.fromEntries(r.map((s) => [s.metric.state, Number(s.value[1])]));
    return Object.entries(want).every(([s, n]) => got[s] === n) ? true : undefined;
  });
  // Queries end at "now" aligned down to the 1 s step: let a step pass.
  await new Promise((r) => setTimeout(r, 1100));
});

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
const inside = (outer: Box, b: Box) =>
  b.x >= outer.x - 0.5 && b.y >= outer.y - 0.5 && b.x + b.w <= outer.x + outer.w + 0.5 && b.y + b.h <= outer.y + outer.h + 0.5;
const overlap = (a: Box, b: Box) => a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;

async function box(page: Page, selector: string): Promise<Box[]> {
  return page.locator(selector).evaluateAll((els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { x: r.x, y: r.y, w: r.width, h: r.height };
    }),
  );
}

/** Every visible text element's contrast against what is painted behind it. */
async function contrasts(page: Page): Promise<Array<{ what: string; text: string; ratio: number }>> {
  return page.locator('.ss-root').evaluate((root) => {
    const parse = (c: string): number[] | undefined => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return undefined;
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (fg: number[], bg: number[]) => [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3]));
    const lum = (c: number[]) => {
      const l = c.map((v) => {
        const s = v / 255;
        return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    };
    const ratio = (a: number[], b: number[]) => {
      const [x, y] = [lum(a), lum(b)];
      return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
    };
    // The opaque colour behind an element: backgrounds of it and its ancestors, composited.
    const behind = (el: Element): number[] => {
      const layers: number[][] = [];
      for (let e: Element | null = el; e; e = e.parentElement) {
        const bg = parse(getComputedStyle(e).backgroundColor);
        if (bg && bg[3] > 0) {
          layers.push(bg);
          if (bg[3] >= 1) break;
        }
      }
      let out = [255, 255, 255];
      for (const l of layers.reverse()) out = over(l, out);
      return out;
    };
    const rootBox = root.getBoundingClientRect();
    const out: Array<{ what: string; text: string; ratio: number }> = [];
    const selectors = '.ss-chip-name, .ss-chip-count, .ss-kind-name, .ss-node-name, .ss-edge-label, .ss-band-label, .ss-id, .ss-state, .ss-weak, .ss-flap, .ss-tooltip td, .ss-title, .ss-empty';
    for (const el of Array.from(root.querySelectorAll(selectors))) {
      const r = el.getBoundingClientRect();
      const text = (el.textContent ?? '').trim();
      if (!text || r.width === 0 || r.bottom < rootBox.top || r.top > rootBox.bottom) continue;
      const cs = getComputedStyle(el);
      const isSvg = el instanceof SVGElement;
      const fg = parse(isSvg ? cs.fill : cs.color);
      if (!fg) continue;
      // SVG text sits on the panel background (names are haloed with it).
      const bg = isSvg ? behind(root) : behind(el);
      out.push({ what: el.className instanceof SVGAnimatedString ? el.className.baseVal : el.className, text, ratio: ratio(over(fg, bg), bg) });
    }
    return out;
  });
}

const SIZES: Array<[number, number]> = [
  [1200, 800],
  [600, 400],
];

for (const [width, height] of SIZES) {
  for (const theme of ['dark', 'light'] as const) {
    test(`${width}x${height} ${theme}: counts, colours, nothing clipped or overlapping, contrast`, async ({ openPanel }) => {
      const p = await openPanel({ ...QUERIES, options: { view: 'both' }, theme, width, height, range: 900 });
      const page = p.page;
      const root = page.locator('.ss-root');
      await expect(root.locator('.ss-chip').first()).toBeVisible();
      const rootBox = (await box(page, '.ss-root'))[0];

      // Every state's exact count, labelled, in its colour, and the all chip.
      const want = expectedCounts(fleet());
      const all = root.locator('.ss-chip').first();
      await expect(all.locator('.ss-chip-name')).toHaveText('all');
      await expect(all.locator('.ss-chip-count')).toHaveText(String(FLEET));
      for (const [state, n] of Object.entries(want)) {
        const chip = root.locator(`.ss-chip[data-state="${state}"]`);
        await expect(chip.locator('.ss-chip-name')).toHaveText(state);
        await expect(chip.locator('.ss-chip-count')).toHaveText(String(n));
        // The dot is the state's colour: the same as the machines in that state.
        const dot = await chip.locator('.ss-dot').evaluate((e) => getComputedStyle(e).backgroundColor);
        const cell = root.locator(`.ss-cell[aria-label$=": ${state}"], .ss-tile:has(.ss-state:text-is("${state}"))`).first();
        if (await cell.count()) {
          const machine = await cell.evaluate((e) =>
            e.classList.contains('ss-cell') ? getComputedStyle(e).backgroundColor : getComputedStyle(e, '::before').backgroundColor,
          );
          expect(dot, `${state} chip colour = its machines' colour`).toBe(machine);
        }
      }
      await expect(root.locator('.ss-chip', { hasText: 'flapping' }).locator('.ss-chip-count')).toHaveText('6');

      // Nothing at the panel's edge is cut: chips and the search box inside the panel.
      for (const b of await box(page, '.ss-chip, .ss-search')) expect(inside(rootBox, b), `chip ${JSON.stringify(b)} inside the panel`).toBe(true);
      const chipText = await root.locator('.ss-chip-name, .ss-chip-count').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
      expect(chipText, 'chip labels cut').toEqual([]);

      // The diagram, where drawn: nodes and names apart, inside the panel.
      const diagram = root.getByRole('img', { name: `State diagram of ${CB}` });
      if (width >= 1200) await expect(diagram).toBeVisible();
      else await expect(diagram, '600x400 shows chips instead of a diagram').toHaveCount(0);
      if (await diagram.count()) {
        const circles = await box(page, '.ss-node-body');
        const names = await box(page, '.ss-node-name');
        // The breaker's six states: closed, open, half_open, and the manual band forced_open, disabled, metrics_only.
        expect(circles).toHaveLength(6);
        for (const b of [...circles, ...names]) expect(inside(rootBox, b)).toBe(true);
        for (let i = 0; i < circles.length; i++) {
          for (let j = i + 1; j < circles.length; j++) {
            const [a, b] = [circles[i], circles[j]];
            const d = Math.hypot(a.x + a.w / 2 - (b.x + b.w / 2), a.y + a.h / 2 - (b.y + b.h / 2));
            expect(d, `nodes ${i} and ${j} overlap`).toBeGreaterThanOrEqual((a.w + b.w) / 2);
            expect(overlap(names[i], names[j]), `names ${i} and ${j} overlap`).toBe(false);
          }
          for (let j = 0; j < circles.length; j++) {
            if (i !== j) expect(overlap(names[i], circles[j]), `name ${i} over node ${j}`).toBe(false);
          }
        }
        // Transitions are labelled as transitions.
        await expect(root.locator('.ss-edge-label').first()).toHaveText(/^\d+×$/);
      }

      // 1,000 machines: dense cells, the whole fleet on one screen at 1200x800
      // (at 600x400 the grid scrolls and renders only its window).
      const cells = root.locator('.ss-cell');
      if (width >= 1200) await expect(cells).toHaveCount(FLEET);
      else await expect(cells.first()).toBeVisible();
      const machinesBox = (await box(page, '.ss-machines'))[0];
      const scroll = await root.locator('.ss-machines').evaluate((e) => e.scrollHeight - e.clientHeight);
      if (width >= 1200) expect(scroll, 'all 1,000 cells fit the 1200x800 panel').toBeLessThanOrEqual(0);
      // Worst first: organic open breakers lead, ahead of those forced open.
      await expect(cells.first()).toHaveAttribute('aria-label', /: open$/);
      const order = await cells.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')!.split(': ')[1]));
      expect(order.indexOf('forced_open')).toBeGreaterThan(order.lastIndexOf('half_open'));

      await p.shot(`glance-${width}x${height}-${theme}`);
      mkdirSync(ARTIFACTS, { recursive: true });
      await root.screenshot({ path: path.join(ARTIFACTS, `panel-${width}x${height}-${theme}.png`) });

      // Tooltips stay inside the panel, at each corner of the machines pane.
      const corners: Array<[number, number]> = [
        [machinesBox.x + 4, machinesBox.y + 4],
        [machinesBox.x + machinesBox.w - 20, machinesBox.y + 4],
        [machinesBox.x + 4, Math.min(machinesBox.y + machinesBox.h, rootBox.y + rootBox.h) - 40],
      ];
      for (const [x, y] of corners) {
        const target = await page.evaluate(([px, py]) => {
          const el = document.elementFromPoint(px, py);
          return el?.classList.contains('ss-cell') ?? false;
        }, [x + 3, y + 3] as [number, number]);
        if (!target) continue;
        await page.mouse.move(x + 3, y + 3);
        const tip = root.locator('.ss-tooltip');
        await expect(tip).toBeVisible();
        const t = (await box(page, '.ss-tooltip'))[0];
        expect(inside(rootBox, t), `tooltip ${JSON.stringify(t)} inside the panel ${JSON.stringify(rootBox)}`).toBe(true);
        const clipped = await tip.evaluate((e) => e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1);
        expect(clipped, 'tooltip content cut').toBe(false);
        const cutDates = await tip.locator('.ss-date').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
        expect(cutDates, 'dates beside the times cut').toEqual([]);
        // Times read as "… ago", the date beside them; no instance/job rows.
        await expect(tip).toContainText(/ago/);
        await expect(tip.locator('td', { hasText: /^(instance|job)$/ })).toHaveCount(0);
        await page.mouse.move(rootBox.x + rootBox.w - 2, rootBox.y + 2);
      }

      // Text contrast, with a tooltip open too.
      await page.mouse.move(machinesBox.x + 6, machinesBox.y + 6);
      const low = (await contrasts(page)).filter((c) => c.ratio < 4.5);
      expect(low, 'text below 4.5:1').toEqual([]);
    });
  }
}

test('full tiles: names are not cut, the strip shows a cursor and the stretch under it', async ({ openPanel }) => {
  const p = await openPanel({ ...QUERIES, options: { view: 'both', tiles: 'full' }, theme: 'dark', width: 1200, height: 800, range: 900 });
  const root = p.page.locator('.ss-root');
  const tiles = root.locator('.ss-tile');
  await expect(tiles.first()).toBeVisible();
  const cut = await root.locator('.ss-id').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent));
  expect(cut, 'tile names cut').toEqual([]);
  // No empty band under the strip: the strip ends at the tile's padding.
  const gap = await tiles.first().evaluate((t) => t.getBoundingClientRect().bottom - t.querySelector('.ss-strip')!.getBoundingClientRect().bottom);
  expect(gap).toBeLessThanOrEqual(8);
  const strip = tiles.first().locator('.ss-strip');
  const b = (await strip.boundingBox())!;
  // At the strip's end: the fleet was pushed (beforeAll) only seconds before, fewer
  // on a faster machine, so most of a 15 min strip is "no data"; its end is the state
  // the machine is in now (at 98%, 18 s back, one run found no data yet).
  await p.page.mouse.move(b.x + b.width - 1, b.y + b.height / 2);
  await expect(strip.locator('.ss-strip-cursor')).toHaveCount(1);
  await expect(root.locator('.ss-tooltip .ss-at')).toContainText(/(open|half_open|closed|forced_open|disabled) from .* ago for /);
  await p.shot('glance-full-tiles');
});
