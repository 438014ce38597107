#!/usr/bin/env bash
# Soak: the release exporter under a fixed hostile storm, then kill -9 and a
# restart. Prints one table (and bench/results/soak.json):
#   RSS idle / peak / settled (5 s after the storm), /healthz p99 idle and
#   under the storm, answers to the posters by status, slowloris sockets the
#   server closed, and events acknowledged vs found after kill -9 + restart.
#
#   bash bench/soak.sh                      # defaults below, about a minute
#   bash bench/soak.sh --seconds 10 --fleet 1000 --readers 50 --slowloris 100 --posters 32
#   bash bench/soak.sh --bin path/to/statescope-exporter   # a binary already built
#   bash bench/soak.sh --disk-limit-mib 4   # the disk "fills" at 4 MiB a file (RLIMIT_FSIZE)
#
# With --disk-limit-mib, every file the exporter writes stops growing at that
# size, as on a full disk (writes past it fail; SIGXFSZ is ignored), so the
# posters meet 503s; the restart after kill -9 has no limit, and must hold
# exactly the events answered 200.
#
# Everything binds 127.0.0.1 on a free port, is bounded in time, and is
# stopped on exit. It measures whatever the binary does: no timeout, cap or
# shedding is assumed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=20 fleet=5000 readers=100 slowloris=200 posters=64 batch=10 settle=5 bin= disk_limit_mib=
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --fleet) fleet=$2; shift ;;
    --readers) readers=$2; shift ;;
    --slowloris) slowloris=$2; shift ;;
    --posters) posters=$2; shift ;;
    --batch) batch=$2; shift ;;
    --bin) bin=$2; shift ;;
    --disk-limit-mib) disk_limit_mib=$2; shift ;;
    *) echo "usage: bash bench/soak.sh [--seconds T] [--fleet N] [--readers N] [--slowloris M] [--posters K] [--batch B] [--bin FILE] [--disk-limit-mib N]" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '== soak: %s\n' "$*" >&2; }
if [ -z "$bin" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
  log "cargo build --release -p statescope-exporter"
  cargo build --release --locked -p statescope-exporter --bins >&2
  bin="$CARGO_TARGET_DIR/release/statescope-exporter"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/statescope-soak.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
# The storm holds hundreds of sockets on both sides.
ulimit -n 4096 2>/dev/null || true

# start [LIMIT_MIB]: the exporter in the background, its files limited to LIMIT_MIB if given.
start() {
  if [ -n "${1:-}" ]; then
    # bash counts `ulimit -f` in 1024-byte blocks.
    (trap '' XFSZ; ulimit -f $(($1 * 1024)); exec "$bin" --listen "127.0.0.1:$port" --data-dir "$work/data") \
      >>"$work/exporter.log" 2>&1 &
  else
    "$bin" --listen "127.0.0.1:$port" --data-dir "$work/data" >>"$work/exporter.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { cat "$work/exporter.log" >&2; echo "the exporter exited" >&2; exit 1; }
    curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the exporter did not answer /healthz in 30 s" >&2
  exit 1
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

start "$disk_limit_mib"
log "seeding $fleet machines"
python3 bench/soak.py seed --url "$url" --machines "$fleet"
log "storm: ${seconds}s of $readers non-reading /metrics clients, $slowloris slowloris sockets, $posters posting connections (batches of $batch)"
timeout $((${seconds%.*} + 120)) python3 bench/soak.py storm --url "$url" --pid "$pid" --seconds "$seconds" \
  --readers "$readers" --slowloris "$slowloris" --posters "$posters" --batch "$batch" >"$work/storm.json"
sleep "$settle"
settled=$(rss_kib "$pid")
healthz_after=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$url/healthz" || echo "failed")
log "kill -9 and restart"
{ kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true
restart_started=$(date +%s.%N)
start
restart_s=$(python3 -c "import time; print(round(time.time() - $restart_started, 2))")
found=$(python3 bench/soak.py count --url "$url")

mkdir -p bench/results
python3 - "$work/storm.json" "$settled" "$found" "$restart_s" "$healthz_after" \
  "$seconds" "$fleet" "$readers" "$slowloris" "$posters" "$batch" "${disk_limit_mib:-none}" <<'EOF' | tee bench/results/soak.txt
import json, sys
s = json.load(open(sys.argv[1]))
settled, found, restart_s, healthz_after = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
seconds, fleet, readers, slowloris, posters, batch, disk_limit = sys.argv[6:13]
s.update(rss_settled_kib=settled, events_found_after_restart=found, restart_seconds=restart_s,
         storm=dict(seconds=float(seconds), fleet=int(fleet), readers=int(readers), slowloris=int(slowloris),
                    posters=int(posters), batch=int(batch), disk_limit_mib=disk_limit))
json.dump(s, open("bench/results/soak.json", "w"), indent=1)
mib = lambda k: f"{k / 1024:.0f} MiB"
ack, amb = s["events_acknowledged"], s["events_ambiguous"]
lost = max(0, ack - found)
extra = max(0, found - ack - amb)
rows = [
    ("storm", f"{seconds} s: {readers} non-reading /metrics clients, {slowloris} slowloris, {posters} posters x {batch} events; fleet {fleet}; file size limit {disk_limit + ' MiB' if disk_limit != 'none' else 'none'}"),
    ("RSS idle / peak / settled", f"{mib(s['rss_idle_kib'])} / {mib(s['rss_peak_kib'])} / {mib(settled)}  (peak {s['rss_peak_kib'] / s['rss_idle_kib']:.1f}x idle, settled {settled / s['rss_idle_kib']:.1f}x)"),
    ("/healthz p99 idle / storm", f"{s['healthz_idle_p99_ms']} ms / {s['healthz_p99_ms']} ms  ({s['healthz_p99_ms'] / max(s['healthz_idle_p99_ms'], 0.1):.0f}x; max {s['healthz_max_ms']} ms, {s['healthz_failed']} of {s['healthz_probes']} probes failed)"),
    ("/healthz after the storm", healthz_after),
    ("answers to posters", ", ".join(f"{k}: {v}" for k, v in s["answers"].items())),
    ("slowloris closed by the server", f"{s['slowloris_closed_by_server']} of {slowloris}"),
    ("events acknowledged / found after kill -9", f"{ack} / {found}  (lost {lost}; unanswered {amb}; found beyond acknowledged+unanswered {extra})"),
    ("restart", f"{restart_s} s"),
]
w = max(len(k) for k, _ in rows)
for k, v in rows:
    print(f"{k:<{w}}  {v}")
sys.exit(1 if lost or extra else 0)
EOF
