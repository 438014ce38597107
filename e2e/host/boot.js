// What Grafana's index.html puts on window before its app bundle runs;
// @grafana/runtime's config reads it at import time.
window.grafanaBootData = {
  assets: { dark: '', light: '' },
  settings: { buildInfo: { version: '13.1.1', commit: 'e2e', env: 'production' }, featureToggles: {} },
  user: { theme: 'dark', timezone: 'browser', locale: 'en-US', language: 'en-US' },
  navTree: [],
};
