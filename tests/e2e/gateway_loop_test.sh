#!/usr/bin/env bash
# Two gateways that forward to each other (a configuration each check cannot see alone): a call
# is refused after a few hops with FAILED_PRECONDITION naming the loop, at once, and both
# processes keep running with flat memory. Usage: gateway_loop_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

read -r P1 P2 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
"$LEADFLOW" serve --role gateway --listen "127.0.0.1:$P1" --gateway-writer "127.0.0.1:$P2" \
  >"$E2E_TMP/a.log" 2>&1 &
A=$!; LAUNCHED_PIDS+=("$A")
"$LEADFLOW" serve --role gateway --listen "127.0.0.1:$P2" --gateway-writer "127.0.0.1:$P1" \
  >"$E2E_TMP/b.log" 2>&1 &
B=$!; LAUNCHED_PIDS+=("$B")
for log in "$E2E_TMP/a.log" "$E2E_TMP/b.log"; do
  for _ in $(seq 1 100); do grep -q "serving gRPC on" "$log" && break; sleep 0.1; done
done

# Each gateway connected to the other before it listened: its channel retries with a backoff,
# during which calls are UNAVAILABLE naming the upstream. Wait that out, then time one call.
for _ in $(seq 1 50); do
  rc=0
  "$LEADCTL" --server "127.0.0.1:$P1" --timeout 20 capture --name Ada --email ada@example.com \
    --source referral >"$E2E_TMP/out.txt" 2>&1 || rc=$?
  [ "$rc" = 3 ] || break
  sleep 0.2
done
start=$(date +%s.%N)
rc=0
"$LEADCTL" --server "127.0.0.1:$P1" --timeout 20 capture --name Ada --email ada@example.com \
  --source referral >"$E2E_TMP/out.txt" 2>&1 || rc=$?
took=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
expect_eq "refused by the server" 1 "$rc"
expect_contains "the refusal names the loop" "$E2E_TMP/out.txt" "FAILED_PRECONDITION"
expect_contains "and what to check" "$E2E_TMP/out.txt" "gateway.* addresses"
python3 -c "import sys; sys.exit(0 if $took < 5 else 1)" || { echo "FAIL: took ${took}s"; exit 1; }
kill -0 "$A" && kill -0 "$B"
echo "ok: refused in ${took}s, both gateways still running"
echo "gateway loop test: all checks passed"
