#!/usr/bin/env bash
# Optional: `docker compose up` alone makes random secrets (the init service,
# provisioning/compose-init.sh). Run this first when you want to hold them
# yourself: it writes, each random, never a default:
#   .env                               GRAFANA_ADMIN_PASSWORD (and the compose project name)
#   provisioning/secrets/statescope_token   the exporter's write-API token
# and the init service copies them into the stack's secrets volume. Edit either
# to choose your own. Keeps what already exists, so running it again changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

random() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

if [ -f .env ] && grep -q '^GRAFANA_ADMIN_PASSWORD=.' .env; then
  echo "init: .env already sets GRAFANA_ADMIN_PASSWORD; kept"
else
  (
    umask 077
    {
      echo "# Written by provisioning/init.sh. Grafana reads the password on its first start only;"
      echo "# later, change it in Grafana (or: docker compose exec grafana grafana cli admin reset-admin-password NEW)."
      echo "COMPOSE_PROJECT_NAME=statescope"
      echo "GRAFANA_ADMIN_PASSWORD=$(random)"
    } >>.env
  )
  echo "init: wrote a random GRAFANA_ADMIN_PASSWORD to .env (Grafana user: admin)"
fi

token=provisioning/secrets/statescope_token
if [ -s "$token" ]; then
  echo "init: $token exists; kept"
else
  # The folder is private to you; the file itself must be readable by the
  # container's non-root user, which a bind-mounted compose secret keeps.
  install -d -m 0700 provisioning/secrets
  (umask 022 && printf '%s' "$(random)" >"$token")
  echo "init: wrote a random exporter token to $token (send it as: Authorization: Bearer <token>)"
fi
