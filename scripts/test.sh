#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then runs
# every check. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# In CI the clone is fresh; keep Cargo's build output outside it so the next
# run reuses it.
if [ -n "${CI:-}" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/statescope/target"
fi

step() { printf '\n== test: %s\n' "$*"; }

bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "python client: mypy, then pytest with pybreaker, aiobreaker and a Celery worker against the real exporter"
venv="${STATESCOPE_VENV:-$HOME/.cache/statescope/venv}"
(cd clients/python && "$venv/bin/mypy" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -rxs)

step "panel plugin: clippy for wasm32, npm run build (dist/), typecheck, check dist/, the installable zip"
cargo clippy -p statescope-panel --target wasm32-unknown-unknown --locked -- -D warnings
npm run build && npm run typecheck && node panel-plugin/build/check-dist.mjs && node panel-plugin/build/package.mjs

step "provisioning: Prometheus rules and rule tests, Alertmanager, compose file, dashboards against a live exporter"; bash provisioning/test.sh

step "bench smoke: the benchmark harness end to end at tiny sizes (no timing asserted)"; bash bench/run.sh --smoke

step "browser tests: the panel in a Grafana-like page on exporter + Prometheus data (Playwright)"; npm run test:e2e

printf '\n== test: all passed\n'
