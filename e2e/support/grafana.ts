// Settings of the Grafana suite (e2e/grafana/), shared by the config and the specs.
import path from 'node:path';

/** Where the grafana-auth setup keeps the logged-in session. */
export const GRAFANA_AUTH_FILE = path.join(__dirname, '..', '.auth', 'grafana-user.json');

/** Why the Grafana suite is skipped, or undefined when it runs. */
export const GRAFANA_SKIP_REASON = process.env.GRAFANA_URL ? undefined : 'GRAFANA_URL not set: no Grafana server reachable';

export const GRAFANA_USER = {
  user: process.env.GRAFANA_USER ?? 'admin',
  password: process.env.GRAFANA_PASSWORD ?? '',
};
