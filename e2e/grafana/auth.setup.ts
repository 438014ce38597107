// Logs in to the Grafana at GRAFANA_URL once (GRAFANA_USER / GRAFANA_PASSWORD)
// and keeps the session for the dashboard tests. Runs only when GRAFANA_URL
// is set (playwright.config.ts adds this project then).
import { test as setup, expect } from '@grafana/plugin-e2e';

import { GRAFANA_AUTH_FILE } from '../support/grafana';

setup('log in to Grafana', async ({ request, user }) => {
  expect(user?.password, 'set GRAFANA_PASSWORD (the stack has no admin/admin)').toBeTruthy();
  const res = await request.post('/login', { data: user });
  expect(res.ok(), `login as ${user?.user}: ${res.status()} ${await res.text()}`).toBe(true);
  await request.storageState({ path: GRAFANA_AUTH_FILE });
});
