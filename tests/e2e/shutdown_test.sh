#!/usr/bin/env bash
# Graceful shutdown: SIGTERM lets in-flight calls finish (bounded), then stores everything and
# exits 0; a second SIGTERM forces an immediate exit. Usage: shutdown_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

# PARTITION:OFFSET of a command reply (JSON leaves out zeros).
position() {
  python3 -c 'import json,sys; p=json.load(sys.stdin).get("last_position", {})
print("%d:%d" % (p.get("partition", 0), int(p.get("offset", 0))))'
}
# The views apply each batch 5 s late (a test-build pause point), so a read that asks for the
# position of a command just acknowledged waits for its view: an in-flight call.
export LEADFLOW_PAUSE_POINT=projection.before_commit:5000
start_server --partitions 2
unset LEADFLOW_PAUSE_POINT
reply=$(ctl --json capture --name "Ada" --email ada@example.com --source referral)
ID=$(echo "$reply" | json lead_id)
AT=$(echo "$reply" | position)

# Its own deadline is 2 s, so the server can finish it within its 10 s drain.
ctl --timeout 2 get "$ID" --after "$AT" >"$E2E_TMP/inflight.txt" 2>&1 &
CLIENT=$!
sleep 0.5
start=$(date +%s.%N)
kill -TERM "$SERVER_PID"
sleep 0.5
rc=0
kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: exited without draining the in-flight call"; exit 1; }
echo "ok: still draining the in-flight call after SIGTERM"
wait "$SERVER_PID" || rc=$?
took=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 1))")
SERVER_PID=""
expect_eq "exit code after one SIGTERM" 0 "$rc"
python3 -c "import sys; sys.exit(0 if $took < 10 else 1)" || { echo "FAIL: took ${took}s"; exit 1; }
echo "ok: drained and stopped in ${took}s"
expect_contains "the in-flight call got its answer (not a dropped connection)" \
  "$E2E_TMP/inflight.txt" "has applied partition"
wait "$CLIENT" || true
expect_contains "the shutdown was reported" "$SERVE_LOG" "stopped cleanly"

# Everything acknowledged before the shutdown is there after it.
start_server --partitions 2
expect_eq "the lead survived the restart" Ada "$(ctl --json get "$ID" | json person.full_name)"

# A second SIGTERM does not wait for the drain (a read waits for a lagging view again).
stop_server
export LEADFLOW_PAUSE_POINT=projection.before_commit:5000
start_server --partitions 2
unset LEADFLOW_PAUSE_POINT
reply=$(ctl --json capture --name "Bob" --email bob@example.com --source referral)
AT=$(echo "$reply" | position)
ctl --timeout 30 get "$(echo "$reply" | json lead_id)" --after "$AT" >/dev/null 2>&1 &
sleep 0.5
kill -TERM "$SERVER_PID"
sleep 0.3
start=$(date +%s.%N)
kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
took=$(python3 -c "import time; print(round($(date +%s.%N) - $start, 1))")
SERVER_PID=""
expect_eq "exit code after a second SIGTERM (forced)" 2 "$rc"
python3 -c "import sys; sys.exit(0 if $took < 2 else 1)" || { echo "FAIL: forced exit took ${took}s"; exit 1; }
expect_contains "the forced exit was reported" "$SERVE_LOG" "forced exit"
echo "ok: forced exit in ${took}s"

# A forced exit loses nothing acknowledged either.
start_server --partitions 2
expect_eq "the lead survived the forced exit" Ada "$(ctl --json get "$ID" | json person.full_name)"
echo "shutdown test: all checks passed"
