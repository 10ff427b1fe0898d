#!/usr/bin/env bash
# Transactional fencing on a REAL Kafka (the librdkafka mock cannot show it: it does not enforce
# transactions). Two leadflow writers with the same transactional id: when the second starts,
# the broker fences the first; the first must then refuse commands (UNAVAILABLE, "fenced") and
# nothing it tried after being fenced may be visible to read-committed readers.
#
# Usage: deploy/kafka/fencing-check.sh BROKERS [PARTITIONS]
#   BROKERS     bootstrap servers of a real cluster whose leadflow.events.v1 topic exists
#               (deploy/kafka/create-topics.sh); use a throwaway topic via LEADFLOW_TOPIC
#   PARTITIONS  the topic's partition count (default 8)
# Needs: build/bin/leadflow, build/bin/leadctl, kcat. Exits 0 if every check passes.
# Status: written for a real broker; not run in this repository's CI (no broker there).
set -euo pipefail
BROKERS=${1:?usage: fencing-check.sh BROKERS [PARTITIONS]}
PARTITIONS=${2:-8}
TOPIC=${LEADFLOW_TOPIC:-leadflow.events.v1}
BIN=${LEADFLOW_BIN:-build/bin}
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT

start_writer() {  # start_writer NAME: a writer on a free port; prints its address
  "$BIN/leadflow" serve --role writer --kafka-brokers "$BROKERS" --kafka-topic "$TOPIC" \
    --partitions "$PARTITIONS" --kafka-transactional-id fencing-check \
    --data-dir "$TMP/$1" --listen 127.0.0.1:0 >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    addr=$(sed -n 's/.*serving gRPC on \([0-9.]*:[0-9]*\).*/\1/p' "$TMP/$1.log" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return; }
    sleep 0.1
  done
  echo "writer $1 did not start:" >&2; cat "$TMP/$1.log" >&2; exit 1
}

RUN=$(date +%s)
A=$(start_writer a)
"$BIN/leadctl" --server "$A" capture --name "Before Fencing" --email "before-$RUN@example.com" \
  --source web-form >/dev/null
echo "ok: writer A appended before being fenced"

B=$(start_writer b)   # same transactional id: init_transactions fences A
echo "ok: writer B started with the same transactional id"

rc=0
"$BIN/leadctl" --server "$A" capture --name "After Fencing" --email "after-$RUN@example.com" \
  --source web-form 2>"$TMP/fenced.txt" || rc=$?
[ "$rc" = 3 ] || { echo "FAIL: fenced writer A answered with exit $rc"; cat "$TMP/fenced.txt"; exit 1; }
grep -q "fenced" "$TMP/fenced.txt" || { echo "FAIL: no 'fenced' in:"; cat "$TMP/fenced.txt"; exit 1; }
echo "ok: writer A refuses commands: $(tail -1 "$TMP/fenced.txt")"

"$BIN/leadctl" --server "$B" capture --name "Via B" --email "via-b-$RUN@example.com" \
  --source web-form >/dev/null
echo "ok: writer B appends"

# Read committed: A's attempt after the fencing must not be there; the others must.
kcat -C -b "$BROKERS" -t "$TOPIC" -e -q -X isolation.level=read_committed -f '%s\n' \
  >"$TMP/topic.bin" 2>/dev/null
grep -aq "before-$RUN@example.com" "$TMP/topic.bin" || { echo "FAIL: A's first event missing"; exit 1; }
grep -aq "via-b-$RUN@example.com" "$TMP/topic.bin" || { echo "FAIL: B's event missing"; exit 1; }
if grep -aq "after-$RUN@example.com" "$TMP/topic.bin"; then
  echo "FAIL: the fenced writer's attempt is visible to read-committed readers"; exit 1
fi
echo "fencing check: all checks passed"
