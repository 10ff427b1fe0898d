# Helpers for end-to-end tests: start `leadflow serve` on a free port in a temp dir, stop it at
# exit, and assertions that print what they compared. Sourced; expects LEADFLOW and LEADCTL.
set -euo pipefail

E2E_TMP=$(mktemp -d -t leadflow-e2e-XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$E2E_TMP"
}
trap cleanup EXIT

# start_server [leadflow serve flags...]: sets SERVER (host:port) and SERVE_LOG.
start_server() {
  SERVE_LOG="$E2E_TMP/serve.log"
  "$LEADFLOW" serve --data-dir "$E2E_TMP/data" --listen 127.0.0.1:0 "$@" >"$SERVE_LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if grep -q "serving gRPC on" "$SERVE_LOG"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "leadflow exited during start-up:"; cat "$SERVE_LOG"; exit 1
    fi
    sleep 0.1
  done
  SERVER=$(sed -n 's/.*serving gRPC on \([0-9.]*:[0-9]*\).*/\1/p' "$SERVE_LOG" | head -1)
  [ -n "$SERVER" ] || { echo "no 'serving gRPC on' line:"; cat "$SERVE_LOG"; exit 1; }
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
