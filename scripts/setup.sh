#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian machine
# with rustup, cargo, node and npm. Safe to run again: each step is skipped
# when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== setup: %s\n' "$*"; }

# Debian packages: Prometheus and promtool, Alertmanager and amtool, Chromium
# for the browser tests (Playwright drives Debian's build; never `playwright
# install`), docker-compose v1 to validate the compose file offline, zip and
# unzip to make and check the plugin archive, curl and Python (the
# provisioning checks), Python's venv for the benchmark baseline, and
# VictoriaMetrics (single node) to test remote_write past one machine, and
# openssl (the Python client's TLS test makes its certificate with it).
apt_packages=(prometheus prometheus-alertmanager chromium docker-compose zip unzip curl python3 python3-venv
  victoria-metrics openssl)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: the WebAssembly target for the panel, rustfmt and clippy for the checks.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

# Miri, for the panel's unsafe sample buffers (the `miri` part of the tests):
# a nightly toolchain's miri and rust-src components. The stable toolchain
# builds everything else. When nightly cannot be had (no network to
# rust-lang.org), setup goes on and the `miri` part says it was skipped, and why.
if ! rustup toolchain list | grep -q '^nightly-'; then
  log "rustup toolchain install nightly (minimal, with miri) for the miri part"
  rustup toolchain install nightly --profile minimal --component miri,rust-src ||
    echo "setup: no nightly toolchain could be installed; the miri part will be skipped" >&2
fi
if rustup toolchain list | grep -q '^nightly-'; then
  for c in miri rust-src; do
    rustup component list --toolchain nightly --installed | grep -q "^$c" ||
      rustup component add --toolchain nightly "$c" ||
      echo "setup: nightly's $c could not be installed; the miri part will be skipped" >&2
  done
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
# Not --locked: its own lock file pins a crate version the registry no longer has.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -n "$want" ] && [ "$want" != "$have" ]; then
  log "cargo install wasm-bindgen-cli $want (was: ${have:-none}); takes a few minutes, cached in ~/.cargo/bin"
  cargo install wasm-bindgen-cli --version "$want" --force
fi

# Python venv for the client library's tests (pytest, jsonschema, mypy, and the
# libraries its adapters are tested with: pybreaker, aiobreaker, Celery), from
# PyPI; the bench adds prometheus_client to the same venv. Reinstalled when
# the requirements change (their hash, not their mtime: a checkout touches
# every file).
venv="${STATESCOPE_VENV:-$HOME/.cache/statescope/venv}"
req_hash=$(sha256sum clients/python/requirements-test.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.statescope-client-tests" 2>/dev/null)" != "$req_hash" ]; then
  log "python venv for the client tests at $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r clients/python/requirements-test.txt
  echo "$req_hash" >"$venv/.statescope-client-tests"
fi

# npm packages, exactly as each package-lock.json has them (`npm ci` never
# writes the lock): the build and the browser tests (newest Grafana packages,
# React 19), and the oldest Grafana's packages the browser tests also run the
# panel in (e2e/grafana-12/, React 18). Installed again when the lock changes
# (its hash is kept in node_modules).
for dir in . e2e/grafana-12; do
  lock_hash=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.statescope-lock" 2>/dev/null)" != "$lock_hash" ]; then
    log "npm ci in $dir (versions from its package-lock.json)"
    npm ci --no-audit --no-fund --prefix "$dir"
    echo "$lock_hash" >"$dir/node_modules/.statescope-lock"
  fi
done
log "done"
