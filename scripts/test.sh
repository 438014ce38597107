#!/usr/bin/env bash
# The test suite, as CI runs it. Installs what is missing (scripts/setup.sh,
# a quick no-op once everything is there), then runs every check, or only
# the parts named:
#
#   bash scripts/test.sh                      # everything (what CI runs)
#   bash scripts/test.sh rust                 # fmt, clippy, cargo test
#   bash scripts/test.sh panel e2e            # the plugin build and checks, then the browser tests
#
# Parts: rust, miri, panel, provisioning, clients, bench, e2e. `e2e` needs the
# plugin built (`panel`, or `npm run build`) and `bench` the dev build
# (`rust`). One crate's fmt, clippy and tests, the quick loop while working
# on it: model, exporter, panel-core (the panel's Rust, natively),
# rust-client. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

all_parts=(rust miri panel provisioning clients bench e2e)
declare -A crate_of=([model]=statescope-model [exporter]=statescope-exporter [panel-core]=statescope-panel
  [rust-client]=statescope-client)
if (($#)); then
  parts=("$@")
  for p in "${parts[@]}"; do
    [[ " ${all_parts[*]} " == *" $p "* || -n "${crate_of[$p]:-}" ]] ||
      { echo "unknown part '$p'; parts: ${all_parts[*]}; crates: model exporter panel-core rust-client" >&2; exit 2; }
  done
else
  parts=("${all_parts[@]}")
fi
wants() { [[ " ${parts[*]} " == *" $1 "* ]]; }

# In CI the clone is fresh; keep Cargo's build output outside it so the next
# run reuses it.
if [ -n "${CI:-}" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/statescope/target"
fi

step() { printf '\n== test: %s\n' "$*"; }

bash scripts/setup.sh

if wants rust; then
  step "rust: cargo fmt --check"
  cargo fmt --all -- --check

  step "rust: cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings

  step "rust: cargo test"
  cargo test --workspace --locked
fi

if wants miri; then
  step "miri: the panel store's unsafe sample buffers (input.rs, store.rs) under Miri, with their tests"
  if cargo +nightly miri --version >/dev/null 2>&1; then
    # Isolation off: proptest looks up the working directory for its
    # regressions file. Few cases: Miri interprets, about 10,000 times slower.
    MIRIFLAGS=-Zmiri-disable-isolation PROPTEST_CASES=8 \
      cargo +nightly miri test -p statescope-panel --lib --locked -- store:: input::
  else
    echo "SKIPPED miri: no nightly toolchain with miri here (setup could not install it: see its output above)"
  fi
fi

for p in "${parts[@]}"; do
  crate=${crate_of[$p]:-}
  [ -n "$crate" ] || continue
  step "$p: cargo fmt, clippy and test of $crate"
  cargo fmt -p "$crate" -- --check
  cargo clippy -p "$crate" --all-targets --locked -- -D warnings
  cargo test -p "$crate" --locked
done

if wants panel; then
  step "panel: clippy for wasm32, npm run build (dist/), typecheck, frames.ts tests, check dist/, the installable zip"
  cargo clippy -p statescope-panel --target wasm32-unknown-unknown --locked -- -D warnings
  # One command a line: under `set -e` a failure inside an && chain (other
  # than its last command) does not stop the script.
  npm run build
  npm run typecheck
  npm run test:frames
  node panel-plugin/build/check-dist.mjs
  node panel-plugin/build/package.mjs
fi

if wants provisioning; then
  step "provisioning: Prometheus rules and rule tests, Alertmanager, compose file, dashboards against a live exporter"
  bash provisioning/test.sh
fi

if wants clients; then
  step "clients: the Python reporter (mypy), then pytest with pybreaker, aiobreaker and a Celery worker against the real exporter"
  venv="${STATESCOPE_VENV:-$HOME/.cache/statescope/venv}"
  (cd clients/python && "$venv/bin/mypy" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -rxs)
fi

if wants bench; then
  step "bench smoke: the benchmark harness end to end at tiny sizes (no timing asserted)"
  bash bench/run.sh --smoke
fi

if wants e2e; then
  step "e2e: the panel in a Grafana-like page on exporter + Prometheus data (Playwright)"
  npm run test:e2e
fi

# A fresh clone must stay clean after setup and the tests (nothing rewrites
# a tracked file, nothing writes outside .gitignore). Checked in CI only: a
# developer's tree has their own changes in it.
if [ -n "${CI:-}" ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ -n "$(git status --porcelain)" ]; then
  echo "the run left the tree changed:" >&2; git status --porcelain >&2; exit 1
fi

printf '\n== test: passed: %s\n' "${parts[*]}"
