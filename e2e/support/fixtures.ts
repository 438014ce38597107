// The machines the run pushes into the exporter, and what the tests expect to
// see because of them. Tests import these instead of repeating numbers.
import type { ExporterEvent } from './services';

const KIND = 'circuit_breaker';

/** Fixture breakers (provider "e2e") and the path each one is pushed through. */
export const FIXTURE_BREAKERS: Record<string, string[]> = {
  'e2e/k1': [],
  'e2e/k2': [],
  'e2e/k3': [],
  'e2e/k4': ['open'],
  'e2e/k5': ['open'],
  'e2e/k6': ['open', 'half_open'],
};
export const FIXTURE_PROVIDER = 'e2e';

/** The state each fixture breaker ends in (the kind's initial state is closed). */
export function fixtureFinalStates(): Record<string, string> {
  return Object.fromEntries(Object.entries(FIXTURE_BREAKERS).map(([m, path]) => [m, path.at(-1) ?? 'closed']));
}

/** How many fixture breakers are in each state. */
export function fixtureCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of Object.values(fixtureFinalStates())) {
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return counts;
}

/** Breakers that live-refresh tests move while the page is open (provider "live"). */
export const LIVE_BREAKERS = ['live/k1', 'live/k2', 'live/k3'];
export const LIVE_PROVIDER = 'live';

/** Register a breaker in its initial state, then walk it along `path`. */
export function breakerEvents(machine: string, path: string[]): ExporterEvent[] {
  const [provider, keyId] = machine.split('/');
  const labels = { provider, key_id: keyId };
  return [
    { type: 'transition', kind: KIND, machine, to: 'closed', labels },
    ...path.map((to): ExporterEvent => ({ type: 'transition', kind: KIND, machine, to, labels })),
  ];
}

export function fixtureEvents(): ExporterEvent[] {
  return [
    ...Object.entries(FIXTURE_BREAKERS).flatMap(([m, path]) => breakerEvents(m, path)),
    ...LIVE_BREAKERS.flatMap((m) => breakerEvents(m, [])),
  ];
}

/** The Resilience4j fixture (fixtures/resilience4j.metrics): breaker name -> state. */
export const RESILIENCE4J_STATES: Record<string, string> = {
  inventory: 'closed',
  payments: 'open',
  search: 'half_open',
  mail: 'closed',
};

/** Prometheus' job for the exporters tests start themselves (file_sd file: STATESCOPE_E2E_TRUTH_TARGETS). */
export const TRUTH_JOB = 'truth';
