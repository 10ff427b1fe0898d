#!/usr/bin/env bash
# Smoke test of the compose deployment, for a machine with Docker (not run in this repository's
# CI, which has no container engine; tests/deploy/validate_deploy.sh checks the files offline).
#   deploy/compose/smoke.sh            # builds the image, starts everything, checks, stops
# Needs leadflow and leadctl on PATH (build/bin/) and openssl.
set -euo pipefail
cd "$(dirname "$0")"
COMPOSE="docker-compose -f docker-compose.yml"
[ -e ../secrets/token.key ] || ../make-secrets.sh
trap '$COMPOSE down -v' EXIT
$COMPOSE up --build -d
GW=localhost:50051
export LEADFLOW_TOKEN
LEADFLOW_TOKEN=$(leadflow token issue --auth-token-key-file ../secrets/token.key --role admin \
                 --subject smoke --ttl 1h)
leadctl() { command leadctl --ca ../secrets/ca.pem "$@"; }
echo "waiting for every service to be SERVING through the gateway..."
for _ in $(seq 1 120); do
  if leadctl --server "$GW" health >/dev/null 2>&1; then break; fi
  sleep 2
done
leadctl --server "$GW" health
ID=$(leadctl --server "$GW" --json capture --name "Ada Lovelace" --email ada@example.com \
       --source referral --id smoke-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["lead_id"])')
leadctl --server "$GW" --json capture --name "Ada Lovelace" --email ada@example.com \
  --source referral --id smoke-1 | grep -q '"replayed": true'
echo "ok: capture $ID, and its retry recognised"
leadctl --server "$GW" get "$ID"
leadctl --server "$GW" funnel cohort --from "$(date -u +%F)" --to "$(date -u -d tomorrow +%F)"
# Metrics are not published: scrape them inside the compose network.
$COMPOSE exec -T writer sh -c 'exec 3<>/dev/tcp/127.0.0.1/9464; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' \
  | grep 'leadflow_commands_total{result="ok",type="capture_lead"} 1'
echo "ok: metrics scraped inside the writer container"
if LEADFLOW_TOKEN= leadctl --server "$GW" --data-dir /nonexistent get "$ID" 2>/dev/null; then
  echo "FAIL: the gateway answered without a token"; exit 1
fi
echo "ok: no token, no answer"
# Transactional fencing needs a broker reachable from this host (deploy/kafka/fencing-check.sh);
# the compose Kafka advertises kafka:9092 inside its network only.
echo "compose smoke test: passed"
