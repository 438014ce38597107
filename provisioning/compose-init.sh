#!/bin/sh
# The compose stack's one-shot `init` service (docker-compose.yaml): writes the
# Grafana admin password and the exporter's write token into the `stack-secrets`
# volume the first time the stack comes up, so `docker compose up` alone is
# safe: no default password, no open write API. Later runs keep what is there.
#
# Your own secrets win, so provisioning/init.sh keeps working:
#   GRAFANA_ADMIN_PASSWORD (from .env)      -> the Grafana admin password
#   $OWN_DIR/statescope_token (provisioning/secrets/, bind-mounted read-only)
#                                           -> the exporter token
# A generated password is printed to this service's log:
#   docker compose logs init
# Runs under busybox sh (the image) and under bash/dash (provisioning/test.sh).
set -eu

SECRETS_DIR=${SECRETS_DIR:-/run/statescope}
OWN_DIR=${OWN_DIR:-/own}
# The users that read each file: Grafana's image runs as 472, the exporter's as 10001.
GRAFANA_UID=${GRAFANA_UID:-472}
EXPORTER_UID=${EXPORTER_UID:-10001}

password_file=$SECRETS_DIR/grafana_admin_password
# Present while the password is one this script made (so it may be shown).
generated=$SECRETS_DIR/.password_generated
token_file=$SECRETS_DIR/statescope_token

random() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# write FILE OWNER VALUE: a file only OWNER can read.
write() {
  tmp="$1.tmp"
  (umask 077 && printf '%s' "$3" >"$tmp")
  chown "$2" "$tmp"
  chmod 0400 "$tmp"
  mv -f "$tmp" "$1"
}

mkdir -p "$SECRETS_DIR"
chmod 0755 "$SECRETS_DIR"

if [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ]; then
  write "$password_file" "$GRAFANA_UID" "$GRAFANA_ADMIN_PASSWORD"
  rm -f "$generated"
  echo "init: Grafana admin password: the one GRAFANA_ADMIN_PASSWORD sets (.env)"
elif [ -s "$password_file" ] && [ -e "$generated" ]; then
  echo "init: Grafana admin password (kept from the first start): user admin, password $(cat "$password_file")"
elif [ -s "$password_file" ]; then
  echo "init: Grafana admin password: kept (the one you set before)"
else
  write "$password_file" "$GRAFANA_UID" "$(random)"
  : >"$generated"
  echo "init: Grafana admin password (new, random): user admin, password $(cat "$password_file")"
fi
echo "init: Grafana reads it on its first start only; later change it in Grafana"

if [ -s "$OWN_DIR/statescope_token" ]; then
  write "$token_file" "$EXPORTER_UID" "$(cat "$OWN_DIR/statescope_token")"
  echo "init: exporter write token: provisioning/secrets/statescope_token"
elif [ -s "$token_file" ]; then
  echo "init: exporter write token kept (docker compose exec exporter cat $token_file)"
else
  write "$token_file" "$EXPORTER_UID" "$(random)"
  echo "init: exporter write token: new, random (docker compose exec exporter cat $token_file)"
fi
