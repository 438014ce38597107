#!/usr/bin/env bash
# Checks every config of the docker compose stack without a Docker engine:
#   1. Prometheus: promtool check config / check rules / test rules, that
#      each alert rule has a firing and a not-firing test that depend on it,
#      and that each links a runbook section and a filtered dashboard that exist;
#   2. Alertmanager: amtool check-config (also with the Slack example
#      uncommented) and the routing of each severity;
#   3. docker-compose.yaml: validated offline, plus the stack's house rules
#      (pinned images, 127.0.0.1 ports, health checks, no default password);
#   4. Grafana dashboards: JSON, panel types, and every metric name in every
#      query against what a running `statescope-exporter --demo` serves;
#   5. a real Prometheus scraping that exporter every second answers every
#      dashboard query with data, evaluates every alert rule without error,
#      and fires the all-keys-open alert on a provider the test takes down;
#   6. that Prometheus remote-writes to a local VictoriaMetrics, which gives
#      the dashboards' queries, the panel's and the alert expressions the same
#      answers (checks/remote_write.py; where MetricsQL differs, by definition).
# Everything it starts binds 127.0.0.1 on a free port and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
prov=provisioning

say() { printf '  %s\n' "$*"; }
fail() {
  printf 'provisioning test FAILED: %s\n' "$*" >&2
  exit 1
}
# Every tool call is bounded in time.
t() { timeout --kill-after=5 "$@"; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

for tool in promtool amtool python3 curl victoria-metrics; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (bash scripts/setup.sh installs it)"
done

# --- 1. Prometheus config, rules, rule unit tests ------------------------------------
t 60 promtool check config "$prov/prometheus/prometheus.yml" >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "promtool check config"
}
t 60 promtool check rules "$prov"/prometheus/rules/*.yml >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "promtool check rules"
}
rules=$(grep -c 'SUCCESS: .* rules found' "$tmp/out" || true)
t 120 promtool test rules "$prov"/prometheus/tests/*.yml >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "promtool test rules"
}
say "promtool: config valid, $rules rule file(s) valid, $(grep -c SUCCESS "$tmp/out") rule test file(s) pass"
t 300 python3 "$prov/checks/rule_coverage.py" "$prov/prometheus" | sed 's/^/  /' || fail "alert rule test coverage"
t 60 python3 "$prov/checks/alert_links.py" . | sed 's/^/  /' || fail "alert runbook and dashboard links"

# --- 2. Alertmanager -------------------------------------------------------------------
am="$prov/alertmanager/alertmanager.yml"
t 60 amtool check-config "$am" >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "amtool check-config"
}
# The commented Slack example must be valid too once a user uncomments it.
sed -E 's/^(\s*)# ?(slack_configs:|  - api_url_file|    channel|    send_resolved|    title|    text)/\1\2/' "$am" \
  >"$tmp/alertmanager-slack.yml"
grep -q '^\s*slack_configs:' "$tmp/alertmanager-slack.yml" || fail "the Slack example is no longer in $am"
t 60 amtool check-config "$tmp/alertmanager-slack.yml" >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  fail "amtool check-config with the Slack example uncommented"
}
route() { t 30 amtool config routes test --config.file="$am" --verify.receivers="$1" "${@:2}" >/dev/null 2>&1; }
route chat-critical alertname=StatescopeProviderAllKeysOpen severity=critical provider=openai ||
  fail "critical alerts do not reach chat-critical"
route chat-warning alertname=StatescopeBreakerFlapping severity=warning provider=openai ||
  fail "warning alerts do not reach chat-warning"
say "amtool: config valid (also with the Slack example), critical -> chat-critical, warning -> chat-warning"

# --- 3. docker-compose.yaml, Dockerfile, init.sh ---------------------------------------
command -v docker-compose >/dev/null || fail "docker-compose is not installed (bash scripts/setup.sh installs it)"
# The checker needs PyYAML: the Python that runs docker-compose has it.
compose_py=$(sed -n '1s/^#! *//p' "$(command -v docker-compose)")
[ -x "${compose_py%% *}" ] || compose_py=python3
: >"$tmp/empty.env"
compose() { t 60 env -u GRAFANA_ADMIN_PASSWORD docker-compose --env-file "$1" -f docker-compose.yaml "${@:2}"; }
# `docker compose up` alone (no .env) must work: the init service makes the secrets.
compose "$tmp/empty.env" config -q || fail "docker-compose.yaml needs a .env; \`docker compose up\` alone must work"
# compose-init.sh (the init service): random secrets readable by their user only,
# printed password, kept on a second run, yours (init.sh's) when you set them.
ci() { t 30 env SECRETS_DIR="$tmp/ci/run" OWN_DIR="$tmp/ci/own" GRAFANA_UID="$(id -u)" EXPORTER_UID="$(id -u)" "$@" sh "$prov/compose-init.sh"; }
mkdir -p "$tmp/ci/own"
ci env -u GRAFANA_ADMIN_PASSWORD >"$tmp/ci/log1"
ci_pw=$(cat "$tmp/ci/run/grafana_admin_password")
[ "${#ci_pw}" -ge 20 ] && [ "$(wc -c <"$tmp/ci/run/statescope_token")" -ge 20 ] || fail "compose-init.sh wrote weak secrets"
[ "$(stat -c %a "$tmp/ci/run/grafana_admin_password")" = 400 ] && [ "$(stat -c %a "$tmp/ci/run/statescope_token")" = 400 ] ||
  fail "compose-init.sh left the secrets readable by others"
grep -qF "password $ci_pw" "$tmp/ci/log1" || fail "compose-init.sh does not show the password it made in its log"
ci env -u GRAFANA_ADMIN_PASSWORD >/dev/null
[ "$(cat "$tmp/ci/run/grafana_admin_password")" = "$ci_pw" ] || fail "compose-init.sh replaced the password on a second run"
printf own-token >"$tmp/ci/own/statescope_token"
ci env GRAFANA_ADMIN_PASSWORD=own-password-from-env >"$tmp/ci/log2"
[ "$(cat "$tmp/ci/run/grafana_admin_password")" = own-password-from-env ] && [ "$(cat "$tmp/ci/run/statescope_token")" = own-token ] ||
  fail "compose-init.sh ignores the secrets you set (.env, provisioning/secrets/)"
! grep -q own-password-from-env "$tmp/ci/log2" || fail "compose-init.sh printed a password you chose"
# init.sh on a fresh "clone": random secrets, private files, kept on a second run.
mkdir -p "$tmp/clone/provisioning"
cp "$prov/init.sh" "$tmp/clone/provisioning/"
t 30 bash "$tmp/clone/provisioning/init.sh" >/dev/null
password=$(sed -n 's/^GRAFANA_ADMIN_PASSWORD=//p' "$tmp/clone/.env")
token=$(cat "$tmp/clone/provisioning/secrets/statescope_token")
[ "${#password}" -ge 20 ] && [ "$password" != admin ] || fail "init.sh wrote a weak Grafana password"
[ "${#token}" -ge 20 ] || fail "init.sh wrote a short exporter token"
[ "$(stat -c %a "$tmp/clone/.env")" = 600 ] || fail "init.sh left .env readable by others"
[ "$(stat -c %a "$tmp/clone/provisioning/secrets")" = 700 ] || fail "init.sh left the secrets folder open"
t 30 bash "$tmp/clone/provisioning/init.sh" >/dev/null
[ "$(sed -n 's/^GRAFANA_ADMIN_PASSWORD=//p' "$tmp/clone/.env")" = "$password" ] &&
  [ "$(cat "$tmp/clone/provisioning/secrets/statescope_token")" = "$token" ] || fail "init.sh replaced existing secrets"
# Debian's docker-compose 1.29 validates the file against its Compose schema
# and resolves it; the house rules are checked on what it resolved.
compose "$tmp/clone/.env" config -q || fail "docker-compose config rejects docker-compose.yaml"
compose "$tmp/clone/.env" config >"$tmp/compose.yml"
t 60 "$compose_py" "$prov/checks/compose.py" "$tmp/compose.yml" | sed 's/^/  /' ||
  fail "the compose stack's house rules"

# --- 4. Grafana provisioning and dashboards (static) -----------------------------------
t 60 python3 "$prov/grafana/generate.py" --check || fail "dashboards are not what generate.py writes"
t 60 python3 "$prov/checks/dashboards.py" static "$prov/grafana/dashboards" panel-plugin/src/plugin.json |
  sed 's/^/  /' || fail "dashboard JSON"

# --- 5. live: statescope-exporter --demo, and a real Prometheus scraping it --------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_http URL SECONDS PID: until URL answers 2xx, while PID lives.
wait_http() {
  local end=$((SECONDS + $2))
  while ((SECONDS < end)); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.3
  done
  return 1
}
# start NAME READY_PATH COMMAND...: starts a server on a free port ($port in
# the command is replaced), retrying on another port if it does not come up.
start() {
  local name=$1 path=$2 attempt pid
  shift 2
  for attempt in 1 2 3; do
    port=$(free_port)
    "${@//\$port/$port}" >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    if wait_http "http://127.0.0.1:$port$path" 60 "$pid"; then
      return 0
    fi
    kill "$pid" 2>/dev/null || true
  done
  tail -n 20 "$tmp/$name.log" >&2
  fail "$name did not start on 127.0.0.1 (log above)"
}

t 1200 cargo build --quiet --locked -p statescope-exporter || fail "cargo build -p statescope-exporter"
exporter_bin="${CARGO_TARGET_DIR:-target}/debug/statescope-exporter"
[ -x "$exporter_bin" ] || fail "no exporter binary at $exporter_bin"
start exporter /readyz timeout 600 "$exporter_bin" --demo --listen '127.0.0.1:$port' --data-dir "$tmp/exporter-data"
exporter="http://127.0.0.1:$port"

# Through the push API: a breaker of a provider with a single key trips (so
# StatescopeProviderAllKeysOpen must go pending below); an operator's manual
# close of another breaker (open -> closed, as pybreaker's close() does) is a
# fact the exporter applies; a malformed body is refused with a 4xx and
# counted as rejected.
post() { curl -sS -o "$tmp/post.out" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' --data "$1" "$exporter/api/v1/events"; }
code=$(post '{"type":"transition","kind":"circuit_breaker","machine":"provisioning-test/key-1","to":"open","labels":{"provider":"provisioning-test","key_id":"key-1"}}')
[[ $code == 2* ]] || fail "POST of a legal transition answered $code: $(cat "$tmp/post.out")"
post '{"type":"transition","kind":"circuit_breaker","machine":"provisioning-test-manual/key-1","to":"open"}' >/dev/null
code=$(post '{"type":"transition","kind":"circuit_breaker","machine":"provisioning-test-manual/key-1","to":"closed"}')
[[ $code == 2* ]] || fail "POST of a manual close (open -> closed) answered $code: $(cat "$tmp/post.out")"
code=$(post '{"type":"transition",')
[[ $code == 4* ]] || fail "POST of malformed JSON answered $code, expected 4xx"

# The long-term store Prometheus remote-writes to (step 6). Latency offset 0
# and no response cache: it answers from every sample it holds.
start victoriametrics /health timeout 600 victoria-metrics -httpListenAddr='127.0.0.1:$port' \
  -storageDataPath="$tmp/victoriametrics" -retentionPeriod=1d -search.latencyOffset=0s -search.disableCache \
  -loggerLevel=ERROR
vm="http://127.0.0.1:$port"

prom_dir="$tmp/prometheus"
mkdir -p "$prom_dir"
cat >"$prom_dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/$prov/prometheus/rules/*.yml
scrape_configs:
  - job_name: statescope
    static_configs:
      - targets: ["${exporter#http://}"]
remote_write:
  - url: $vm/api/v1/write
    queue_config:
      batch_send_deadline: 1s
YAML
start prometheus /-/ready timeout 600 prometheus --config.file="$prom_dir/prometheus.yml" \
  --storage.tsdb.path="$prom_dir/data" --web.listen-address='127.0.0.1:$port' --log.level=warn
prom="http://127.0.0.1:$port"

# Give the demo fleet time to move (its first jobs finish some seconds in),
# then read what the exporter serves.
end=$((SECONDS + 60))
while :; do
  curl -fsS --max-time 10 "$exporter/metrics" >"$tmp/metrics.txt" || fail "GET /metrics"
  # The OpenMetrics body adds the counters' _created series the rules use.
  curl -fsS --max-time 10 -H 'Accept: application/openmetrics-text; version=1.0.0' "$exporter/metrics" \
    >>"$tmp/metrics.txt" || fail "GET /metrics as OpenMetrics"
  grep -q '^statescope_worker_queue_wait_seconds_bucket' "$tmp/metrics.txt" &&
    grep -q '^statescope_worker_jobs_total' "$tmp/metrics.txt" && break
  ((SECONDS < end)) || fail "the demo fleet finished no job in 60 s"
  sleep 1
done
t 60 python3 "$prov/checks/dashboards.py" names "$prov/grafana/dashboards" "$tmp/metrics.txt" \
  "$prov"/prometheus/rules/*.yml | sed 's/^/  /' || fail "metric names the exporter does not serve"
t 150 python3 "$prov/checks/dashboards.py" live "$prov/grafana/dashboards" "$prom" 120 | sed 's/^/  /' ||
  fail "dashboard queries without data on a live Prometheus"
t 60 python3 "$prov/checks/live_rules.py" "$prom" StatescopeProviderAllKeysOpen provider=provisioning-test 30 |
  sed 's/^/  /' || fail "alert rules on live data"
t 180 python3 "$prov/checks/remote_write.py" "$prov/grafana/dashboards" "$prov/prometheus/rules" "$prom" "$vm" 90 |
  sed 's/^/  /' || fail "the same answers from VictoriaMetrics (remote_write) as from Prometheus"

# The breaker above was created by its trip: its transitions series was 1 when
# first scraped, which increase() alone never counts. The recording rule must
# count it from its _created series (scraped as OpenMetrics).
q='statescope:transitions:increase15m{machine="provisioning-test/key-1",to="open"}'
end=$((SECONDS + 30))
until [ "$(curl -fsS --max-time 5 -G "$prom/api/v1/query" --data-urlencode "query=$q" |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')" = 1 ]; do
  ((SECONDS < end)) || fail "live Prometheus does not count the trip that created a breaker ($q is not 1)"
  sleep 1
done
say "live Prometheus counts the trip that created a breaker: $q = 1"

printf '\n== provisioning: all checks passed\n'
