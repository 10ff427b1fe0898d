#!/usr/bin/env bash
# An external Kafka client (kcat) reads the events leadflow wrote to the mock cluster, on the
# partition leadflow reported, with the lead id as key; stock protoc decodes the payload with
# nothing but proto/. Usage: kcat_test.sh LEADFLOW LEADCTL PROTO_DIR
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
expect_contains "decoded: the person" "$E2E_TMP/decoded.txt" 'full_name: "Ada Lovelace"'
expect_contains "decoded: the command" "$E2E_TMP/decoded.txt" 'command_type: "capture_lead"'
expect_contains "decoded: the lead" "$E2E_TMP/decoded.txt" "aggregate_id: \"$ADA_ID\""
