// Where the real panel's DOM says what it shows. Every selector the panel
// tests rely on is here, so a change in panel-plugin/src/ui/ is fixed in one
// place. Accessible names first (they are what a user of a screen reader
// gets), classes of the panel's own stylesheet (the `ss-` prefix) otherwise:
//  - svg[role=img] "State diagram of <kind>"          (ui/diagram.rs)
//  - g.ss-node[role=button] "<state>: <n> machine(s) now (...)", with
//    .ss-node-name and .ss-node-count texts           (ui/diagram.rs)
//  - .ss-tile with .ss-id and .ss-state, and "↻ N" whose title is "N
//    transitions in the time range (<source>)"          (ui/machines.rs)
//  - an edge: g with a <title> "from → to: taken N times in the time
//    range" and, when N > 0, a .ss-edge-label "N×"     (ui/diagram.rs)
//  - [role=status].ss-message, the one-line problem   (ui/app.rs)
//  - .ss-root, carrying the theme's colours           (ui/app.rs, ui/style.rs)
//  - [data-testid=statescope-error][role=alert], module.ts's message when
//    the wasm cannot load or crashed                    (src/module.ts)
import type { Locator, Page } from '@playwright/test';

export function panelDom(page: Page) {
  const root = page.locator('.ss-root');
  return {
    root,
    message: root.locator('.ss-message[role="status"]'),
    loadFailure: page.locator('[data-testid="statescope-error"][role="alert"]'),
    diagram: (kind: string): Locator => root.getByRole('img', { name: `State diagram of ${kind}`, exact: true }),
    anyDiagram: root.locator('svg[role="img"]'),
    nodes: (kind: string): Locator => root.locator('.ss-diagram', { has: page.getByRole('img', { name: `State diagram of ${kind}`, exact: true }) }).locator('.ss-node'),
    /** The count drawn on the diagram's edge `from` -> `to` (absent when none was taken). */
    edgeLabel: (kind: string, from: string, to: string): Locator =>
      root
        .getByRole('img', { name: `State diagram of ${kind}`, exact: true })
        .locator('g', { has: page.locator('title', { hasText: new RegExp(`^${escapeRegExp(`${from} → ${to}:`)}`) }) })
        .locator('.ss-edge-label'),
    tiles: root.locator('.ss-tile'),
    tile: (id: string): Locator => root.locator('.ss-tile', { has: page.locator('.ss-id', { hasText: new RegExp(`^${escapeRegExp(id)}$`) }) }),
  };
}

/** State name -> machine count, read from the diagram of `kind`. */
export async function nodeCounts(page: Page, kind: string): Promise<Record<string, number>> {
  const nodes = panelDom(page).nodes(kind);
  const out: Record<string, number> = {};
  for (const node of await nodes.all()) {
    const name = (await node.locator('.ss-node-name').textContent())?.trim() ?? '';
    const count = Number(((await node.locator('.ss-node-count').textContent()) ?? '').replace(/[^\d]/g, ''));
    out[name] = count;
  }
  return out;
}

/** Machine id -> state, read from the tiles in the DOM (the grid is virtualised: visible tiles only). */
export async function tileStates(page: Page): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const tile of await panelDom(page).tiles.all()) {
    const id = (await tile.locator('.ss-id').textContent())?.trim() ?? '';
    out[id] = (await tile.locator('.ss-state').textContent())?.trim() ?? '';
  }
  return out;
}

/** A transition count as the panel states it exactly (its hover text), and as it draws it. */
export interface ShownCount {
  exact: number;
  drawn: string;
}

/**
 * Per edge of the diagram of `kind` ("from → to"): the count in its hover
 * text ("closed → open: taken 1234 times in the time range"), the note after
 * it ("not an allowed transition"; "" for none) and its drawn label ("1234×";
 * "" when none was taken).
 */
export async function edgeCounts(page: Page, kind: string): Promise<Record<string, ShownCount & { note: string }>> {
  return panelDom(page)
    .diagram(kind)
    .evaluate((svg) => {
      const out: Record<string, { exact: number; drawn: string; note: string }> = {};
      for (const g of Array.from(svg.querySelectorAll('g'))) {
        const title = Array.from(g.children).find((c) => c.tagName.toLowerCase() === 'title')?.textContent ?? '';
        const m = /^(.+) → (.+): taken (\d+) times? in the time range(?: \((.+)\))?$/.exec(title);
        if (m) {
          const drawn = g.querySelector('.ss-edge-label')?.textContent?.trim() ?? '';
          out[`${m[1]} → ${m[2]}`] = { exact: Number(m[3]), drawn, note: m[4] ?? '' };
        }
      }
      return out;
    });
}

/**
 * Machine id -> its tile's state and transition count: exact from the count's
 * hover text ("N transitions in the time range (counted by the exporter)"),
 * drawn as "↻ N" (visible tiles only: the grid is virtualised).
 */
export async function tileDetails(page: Page): Promise<Record<string, { state: string; transitions: ShownCount; source: string }>> {
  return panelDom(page).root.evaluate((root) => {
    const out: Record<string, { state: string; transitions: { exact: number; drawn: string }; source: string }> = {};
    for (const tile of Array.from(root.querySelectorAll('.ss-tile'))) {
      const id = tile.querySelector('.ss-id')?.textContent?.trim() ?? '';
      const count = Array.from(tile.querySelectorAll('[title]')).find((e) => / in the time range \(/.test(e.getAttribute('title') ?? ''));
      const m = /^(\d+) transitions? in the time range \((.+)\)$/.exec(count?.getAttribute('title') ?? '');
      out[id] = {
        state: tile.querySelector('.ss-state')?.textContent?.trim() ?? '',
        transitions: { exact: m ? Number(m[1]) : NaN, drawn: count?.textContent?.trim() ?? '' },
        source: m?.[2] ?? '',
      };
    }
    return out;
  });
}

/** Drop zero counts: the diagram draws every state of the kind, occupied or not. */
export function nonZero(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
