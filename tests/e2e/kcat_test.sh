#!/usr/bin/env bash
# An external Kafka client (kcat) reads the events leadflow wrote to the mock cluster, on the
# partition leadflow reported, with the lead id as key; stock protoc decodes the payload with
# nothing but proto/. Personal fields are sealed: a dump of the events topic and of the keys
# topic holds none of the names, emails or phones, before and after an erasure, while the
# stream (StreamEvents) delivers them opened, and not for the erased lead.
# Usage: kcat_test.sh LEADFLOW LEADCTL PROTO_DIR
LEADFLOW=$1 LEADCTL=$2 PROTO_DIR=$3
source "$(dirname "$0")/lib.sh"

start_server --kafka-mock --partitions 4
BOOTSTRAP=$(mock_bootstrap "$SERVE_LOG")
expect_contains "mock limits stated in the output" "$SERVE_LOG" "Mock limits: ~5 MiB kept per partition"

ADA=$(ctl --json capture --name "Ada Lovelace" --email ada@example.com --source web-form --id c1)
GRACE=$(ctl --json capture --name "Grace Hopper" --phone "+1 202 555 0100" --source event --id c2)
ctl --json capture --name "Ada L." --email ada@example.com --source referral --id c3 >/dev/null

ADA_ID=$(json lead_id <<<"$ADA")
ADA_P=$(json last_position.partition <<<"$ADA")
GRACE_ID=$(json lead_id <<<"$GRACE")
ADA_P=${ADA_P:-0}

# Every event, as kcat sees it: partition, key.
kcat -C -b "$BOOTSTRAP" -t leadflow.events.v1 -o beginning -e -q -f '%p %k\n' >"$E2E_TMP/kcat.txt"
cat "$E2E_TMP/kcat.txt"
expect_eq "events kcat read" 3 "$(wc -l <"$E2E_TMP/kcat.txt")"
expect_eq "Ada's events on the partition leadflow reported" 2 \
  "$(grep -c "^$ADA_P $ADA_ID\$" "$E2E_TMP/kcat.txt")"
expect_eq "Grace keyed by her lead id" 1 "$(grep -c " $GRACE_ID\$" "$E2E_TMP/kcat.txt")"

# The first payload on Ada's partition, decoded by protoc from the published contract alone.
kcat -C -b "$BOOTSTRAP" -t leadflow.events.v1 -p "$ADA_P" -o beginning -c 1 -e -q -f '%s' \
  | protoc --decode=leadflow.v1.Event -I "$PROTO_DIR" "$PROTO_DIR/leadflow/v1/events.proto" \
  >"$E2E_TMP/decoded.txt"
cat "$E2E_TMP/decoded.txt"
expect_contains "decoded: the personal fields are sealed" "$E2E_TMP/decoded.txt" 'sealed_personal:'
if grep -q 'Ada Lovelace' "$E2E_TMP/decoded.txt"; then
  echo "FAIL: the decoded payload holds the person's name in clear"; exit 1
fi
expect_contains "decoded: the command" "$E2E_TMP/decoded.txt" 'command_type: "capture_lead"'
expect_contains "decoded: the lead" "$E2E_TMP/decoded.txt" "aggregate_id: \"$ADA_ID\""

# Raw dumps of both topics (values and keys, as bytes): no personal string in clear.
dump_topics() {
  for topic in leadflow.events.v1 leadflow.keys.v1; do
    kcat -C -b "$BOOTSTRAP" -t "$topic" -o beginning -e -q -f '%k %s\n'
  done >"$E2E_TMP/dump.bin"
  for needle in "Ada Lovelace" "Grace Hopper" "Ada L." "ada@example.com" "+12025550100"; do
    if grep -aqF "$needle" "$E2E_TMP/dump.bin"; then
      echo "FAIL: kcat dump ($1) holds '$needle' in clear"; exit 1
    fi
  done
  echo "ok: kcat dump of both topics ($1): no personal string in clear"
}
dump_topics "before the erasure"
# The stream opens them for downstream systems.
ctl events >"$E2E_TMP/stream.json"
expect_contains "the stream delivers the name" "$E2E_TMP/stream.json" "Grace Hopper"
ctl erase "$GRACE_ID" >/dev/null
dump_topics "after the erasure"
ctl events >"$E2E_TMP/stream-after.json"
expect_contains "the stream carries the erasure" "$E2E_TMP/stream-after.json" "leadErased"
if grep -qF "Grace Hopper" "$E2E_TMP/stream-after.json"; then
  echo "FAIL: the stream still delivers the erased person's name"; exit 1
fi
expect_contains "the stream still opens the others" "$E2E_TMP/stream-after.json" "Ada Lovelace"
echo "PASS"
