#!/usr/bin/env bash
# Offline validation of deploy/ (no container engine or cluster here):
#  1. docker-compose config: the compose file is valid and its anchors/overrides resolve;
#  2. every leadflow service in it: its command + environment pass `leadflow config check`;
#  3. deploy/k8s: each manifest against the Kubernetes OpenAPI schemas (kubernetes-models, npm)
#     plus selector/port/ConfigMap cross-checks and `leadflow config check` per container
#     (tools/deploy-check/check.js);
#  4. the Dockerfile is multi-stage on Debian bookworm and builds with the project's own script.
# Usage: validate_deploy.sh LEADFLOW SOURCE_DIR
set -euo pipefail
LEADFLOW=$1 SRC=$2
cd "$SRC"

docker-compose -f deploy/compose/docker-compose.yml config -q
echo "ok: docker-compose config accepts deploy/compose/docker-compose.yml"

docker-compose -f deploy/compose/docker-compose.yml config | python3 -c '
import subprocess, sys, yaml
doc = yaml.safe_load(sys.stdin)
checked = 0
for name, svc in doc["services"].items():
    if svc.get("image") != "leadflow:dev":
        continue
    cmd = list(svc.get("command") or [])
    assert cmd[:1] == ["serve"], (name, cmd)
    env = {"PATH": "/usr/bin:/bin"}
    env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    r = subprocess.run([sys.argv[1], "config", "check", *cmd[1:]], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: compose service {name}: {r.stderr.strip()}")
    print(f"ok: compose service {name}: {r.stdout.strip()}")
    checked += 1
if checked != 6:
    sys.exit(f"FAIL: expected 6 leadflow services (writer, 4 views, gateway), found {checked}")
' "$LEADFLOW"

if [ ! -d tools/deploy-check/node_modules ]; then
  echo "FAIL: tools/deploy-check/node_modules missing: run tools/install_deps.sh" >&2
  exit 1
fi
node tools/deploy-check/check.js "$LEADFLOW" deploy/k8s/*.yaml

grep -q '^FROM debian:bookworm AS build' deploy/docker/Dockerfile
grep -q '^FROM debian:bookworm-slim' deploy/docker/Dockerfile
grep -q 'tools/install_deps.sh' deploy/docker/Dockerfile
echo "ok: Dockerfile is multi-stage on bookworm and uses tools/install_deps.sh"
echo "deploy validation: all checks passed"
