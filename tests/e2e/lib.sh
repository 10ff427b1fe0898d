# Helpers for end-to-end tests: start `leadflow serve` on a free port in a temp dir, stop it at
# exit, and assertions that print what they compared. Sourced; expects LEADFLOW and LEADCTL.
set -euo pipefail

E2E_TMP=$(mktemp -d -t leadflow-e2e-XXXXXX)
SERVER_PID=""
LAUNCHED_PIDS=()
cleanup() {
  for pid in "${LAUNCHED_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

# Authentication and encryption are on (as for any `leadflow serve`): every leadflow process of a
# test shares one token key and one key-encryption key (through the environment, like a deployment's config) and every leadctl call carries
# an admin token for it. tests/e2e/security_test.sh covers the defaults and the refusals.
E2E_LEADFLOW=${LEADFLOW:-${REAL_LEADFLOW:-}}
if [ -n "$E2E_LEADFLOW" ]; then
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$E2E_TMP/token.key"
  export LEADFLOW_AUTH_TOKEN_KEY_FILE="$E2E_TMP/token.key"
  # One key-encryption key for every process of a test (required with Kafka, where the writer
  # and the view processes must share it; docs/security.md).
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$E2E_TMP/kek"
  chmod 600 "$E2E_TMP/kek"
  export LEADFLOW_PRIVACY_KEK_FILE="$E2E_TMP/kek"
  LEADFLOW_TOKEN=$("$E2E_LEADFLOW" token issue --role admin --subject e2e --ttl 6h \
    --data-dir "$E2E_TMP/no-data") || { echo "FAIL: leadflow token issue"; exit 1; }
  export LEADFLOW_TOKEN
fi

# launch LOG [leadflow serve flags...]: starts `leadflow serve` on a free port, logging to LOG, and
# waits until it listens; sets LAUNCHED_PID and LAUNCHED_ADDR (host:port). Stopped at exit.
launch() {
  local log=$1
  shift
  "$LEADFLOW" serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  LAUNCHED_PID=$!
  LAUNCHED_PIDS+=("$LAUNCHED_PID")
  for _ in $(seq 1 100); do
    if grep -q "serving gRPC on" "$log"; then break; fi
    if ! kill -0 "$LAUNCHED_PID" 2>/dev/null; then
      echo "leadflow exited during start-up:"; cat "$log"; exit 1
    fi
    sleep 0.1
  done
  LAUNCHED_ADDR=$(sed -n 's/.*serving gRPC on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$LAUNCHED_ADDR" ] || { echo "no 'serving gRPC on' line:"; cat "$log"; exit 1; }
}

# start_server [leadflow serve flags...]: the test's main server on $E2E_TMP/data; sets SERVER
# (host:port), SERVER_PID and SERVE_LOG.
start_server() {
  SERVE_LOG="$E2E_TMP/serve.log"
  launch "$SERVE_LOG" --data-dir "$E2E_TMP/data" "$@"
  SERVER_PID=$LAUNCHED_PID
  SERVER=$LAUNCHED_ADDR
}

# mock_bootstrap LOG: the address a `--kafka-mock` server printed for its mock cluster.
mock_bootstrap() {
  local addr
  addr=$(sed -n 's/.*kafka mock cluster on \([^ ]*\) .*/\1/p' "$1" | head -1)
  [ -n "$addr" ] || { echo "FAIL: no mock cluster address in $1"; cat "$1"; exit 1; }
  echo "$addr"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID"
  local rc=$?
  SERVER_PID=""
  return $rc
}

ctl() { "$LEADCTL" --server "$SERVER" --actor e2e "$@"; }

# json FIELD < json: prints a top-level (or dotted) field of a JSON document.
json() {
  python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1"
}

expect_contains() {  # expect_contains WHAT FILE TEXT: FILE must contain TEXT (fixed string)
  if ! grep -qF -- "$3" "$2"; then
    echo "FAIL: $1: [$3] not in $2:"; cat "$2"; exit 1
  fi
  echo "ok: $1"
}

expect_eq() {  # expect_eq WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1: expected [$2], got [$3]"; exit 1
  fi
  echo "ok: $1 = $3"
}

# expect_refusal EXIT_CODE MESSAGE_SUBSTRING command...: the command must fail with that leadctl
# exit code and print the message on stderr.
expect_refusal() {
  local want_rc=$1 want_msg=$2
  shift 2
  local out rc=0
  out=$("$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" != "$want_rc" ]; then
    echo "FAIL: expected exit $want_rc, got $rc from: $*"; echo "$out"; exit 1
  fi
  if [[ "$out" != *"$want_msg"* ]]; then
    echo "FAIL: expected message containing [$want_msg] from: $*"; echo "got: $out"; exit 1
  fi
  echo "ok: refused ($want_rc): $want_msg"
}
