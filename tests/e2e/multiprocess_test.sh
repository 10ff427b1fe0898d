#!/usr/bin/env bash
# One role per process, as in production, against Kafka (the mock cluster the writer process
# hosts, over loopback TCP): writer, lead-view, customer-view, funnel-view, reprocessing-view and
# a gateway in front. The same history goes to a single `--role all` process; every answer read
# through the gateway must equal that process's, byte for byte. Metrics and health are scraped
# from the role processes.
# Usage: multiprocess_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

# Both deployments derive lead ids with one key, so one history (naming leads by id) fits both.
echo "multiprocess-test-id-key-0123456789" >"$E2E_TMP/ids.key"
start_server --kafka-mock --role writer --partitions 4 --metrics-listen 127.0.0.1:0 \
  --ids-key-file "$E2E_TMP/ids.key"
WRITER=$SERVER
BOOTSTRAP=$(mock_bootstrap "$SERVE_LOG")
metrics_port() { sed -n 's/.*metrics on http:\/\/[0-9.]*:\([0-9]*\)\/metrics.*/\1/p' "$1" | head -1; }
declare -A ADDR MPORT
for role in lead-view customer-view funnel-view reprocessing-view; do
  launch "$E2E_TMP/$role.log" --role "$role" --kafka-brokers "$BOOTSTRAP" --partitions 4 \
    --data-dir "$E2E_TMP/$role-data" --metrics-listen 127.0.0.1:0
  ADDR[$role]=$LAUNCHED_ADDR
  MPORT[$role]=$(metrics_port "$E2E_TMP/$role.log")
done
launch "$E2E_TMP/gateway.log" --role gateway --gateway-writer "$WRITER" \
  --gateway-lead-view "${ADDR[lead-view]}" --gateway-customer-view "${ADDR[customer-view]}" \
  --gateway-funnel-view "${ADDR[funnel-view]}" \
  --gateway-reprocessing-view "${ADDR[reprocessing-view]}"
GATEWAY=$LAUNCHED_ADDR
echo "ok: writer $WRITER, views ${ADDR[*]}, gateway $GATEWAY, Kafka $BOOTSTRAP"
launch "$E2E_TMP/all.log" --role all --partitions 4 --data-dir "$E2E_TMP/all-data" \
  --ids-key-file "$E2E_TMP/ids.key"
ALL=$LAUNCHED_ADDR

# The history: explicit business times, so both deployments record identical events.
python3 - "$E2E_TMP/captures.jsonl" "$E2E_TMP/more.jsonl" <<'PY'
import hashlib, json, sys
cap, more = open(sys.argv[1], "w"), open(sys.argv[2], "w")
def cmd(out, kind, body, at, cid):
    body["meta"] = {"occurred_at": at, "actor": {"id": "loader"}, "command_id": cid}
    out.write(json.dumps({kind: body}) + "\n")
for i in range(120):
    day = 1 + i % 28
    cmd(cap, "capture_lead", {"person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
        "source_channel": ["SOURCE_CHANNEL_WEB_FORM", "SOURCE_CHANNEL_REFERRAL"][i % 2],
        "acquisition_cost": {"currency_code": "EUR", "amount_micros": 25000000}},
        f"2026-03-{day:02d}T09:00:00Z", f"cap-{i}")
PY
for target in "$GATEWAY" "$ALL"; do
  "$LEADCTL" --server "$target" --actor e2e batch "$E2E_TMP/captures.jsonl" >/dev/null
done
python3 - "$E2E_TMP/more.jsonl" "$LEADCTL" "$ALL" <<'PY'
import json, subprocess, sys
out = open(sys.argv[1], "w")
def lead_id(i):
    r = subprocess.run([sys.argv[2], "--server", sys.argv[3], "--json", "find", "--email",
                        f"lead{i}@example.com"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["lead_id"]
def cmd(kind, body, at, cid):
    body["meta"] = {"occurred_at": at, "actor": {"id": "loader"}, "command_id": cid}
    out.write(json.dumps({kind: body}) + "\n")
for i in range(0, 120, 2):
    lid, day = lead_id(i), 1 + i % 28
    cmd("assign_lead", {"lead_id": lid, "owner": ["bob", "carol"][i % 4 // 2]}, f"2026-03-{day:02d}T10:00:00Z", f"as-{i}")
    cmd("log_interaction", {"lead_id": lid, "kind": "INTERACTION_KIND_CALL", "direction": "DIRECTION_OUTBOUND",
        "outcome": "OUTCOME_CONNECTED"}, f"2026-03-{day:02d}T11:00:00Z", f"in-{i}")
    if i % 4 == 0:
        cmd("qualify_lead", {"lead_id": lid, "budget": {"currency_code": "EUR", "amount_micros": 9000000000},
            "decision_maker": "CFO", "need": "reporting", "expected_decision_at": "2026-06-01T00:00:00Z"},
            f"2026-03-{day:02d}T12:00:00Z", f"q-{i}")
    if i % 8 == 0:
        cmd("convert_lead", {"lead_id": lid, "invoice_ref": f"INV-{i}",
            "deal_value": {"currency_code": "EUR", "amount_micros": 12000000000}}, f"2026-04-{day:02d}T12:00:00Z", f"cv-{i}")
for i in range(1, 120, 10):
    day = 1 + i % 28
    cmd("reject_lead", {"lead_id": lead_id(i), "reason": "REJECTION_REASON_NO_NEED", "text": "not now"},
        f"2026-03-{day:02d}T15:00:00Z", f"rj-{i}")
    cmd("postpone_lead", {"lead_id": lead_id(i + 2), "revisit_at": "2026-05-01T00:00:00Z", "reason": "budget in May"},
        f"2026-03-{1 + (i + 2) % 28:02d}T16:00:00Z", f"pp-{i}")
PY
for target in "$GATEWAY" "$ALL"; do
  out=$("$LEADCTL" --server "$target" --actor e2e batch "$E2E_TMP/more.jsonl" 2>&1)
  grep -q "0 refused" <<<"$out" || { echo "FAIL: batch through $target: $out"; exit 1; }
done
echo "ok: the same $(cat "$E2E_TMP"/captures.jsonl "$E2E_TMP"/more.jsonl | wc -l) commands sent to the gateway and to --role all"

# Fresh reads (each view waits for the log end), then compare every answer. Only what each
# server assigns itself may differ: recording times (today; business times are in 2026-03..05),
# random event ids, and log offsets (Kafka's transaction markers take offsets too).
TODAY=$(date -u +%Y-%m-%d)
ask() {
  "$LEADCTL" --server "$1" --json "${@:2}"
}
ask_stable() {
  ask "$@" | grep -v -e "\"${TODAY}T" -e '"event_id"' -e '"offset"' 
}
LEAD0=$(ask "$ALL" find --email lead0@example.com | json lead_id)
compared=0
while IFS= read -r query; do
  # shellcheck disable=SC2086
  a=$(ask_stable "$ALL" $query); b=$(ask_stable "$GATEWAY" $query)
  if [ "$a" != "$b" ]; then
    echo "FAIL: '$query' differs between --role all and the gateway:"
    diff <(echo "$a") <(echo "$b") | head -20
    exit 1
  fi
  [ -n "$a" ] || { echo "FAIL: '$query' answered nothing"; exit 1; }
  compared=$((compared + 1))
done <<EOF2
get $LEAD0
timeline $LEAD0
list --status converted
list --owner bob
customers --owner bob
funnel cohort --from 2026-03-01 --to 2026-04-01
funnel cohort --from 2026-03-01 --to 2026-04-01 --split owner
funnel activity --from 2026-03-01 --to 2026-05-01 --bucket week
pipeline
exits --from 2026-03-01 --to 2026-04-01
exit-reasons --from 2026-03-01 --to 2026-04-01
queue --as-of 2026-05-02
winback --days 30
EOF2
echo "ok: $compared answers identical through the gateway and from --role all"
expect_eq "converted leads seen through the gateway (i = 0, 8, ..., 112)" 15 \
  "$(ask "$GATEWAY" funnel cohort --from 2026-03-01 --to 2026-04-01 | json total.converted)"

# Views report per process; the gateway merges them.
expect_eq "view status through the gateway covers 4 views x 4 partitions" 16 \
  "$(ask "$GATEWAY" views | grep -c '"view"')"

# Health: each role answers for its own service; the gateway for everything it forwards to.
"$LEADCTL" --server "${ADDR[funnel-view]}" health >"$E2E_TMP/health.txt"
expect_contains "funnel-view health" "$E2E_TMP/health.txt" "leadflow.v1.FunnelQueryService       SERVING"
expect_contains "funnel-view does not claim other services" "$E2E_TMP/health.txt" \
  "leadflow.v1.LeadQueryService         (not served by this process)"
"$LEADCTL" --server "$GATEWAY" health >"$E2E_TMP/ghealth.txt"
expect_eq "gateway: the server and all five services SERVING" 6 \
  "$(grep -cE ' SERVING$' "$E2E_TMP/ghealth.txt")"

# Metrics: scraped over HTTP as Prometheus would.
curl -sf "http://127.0.0.1:$(metrics_port "$SERVE_LOG")/metrics" >"$E2E_TMP/writer.prom"
expect_contains "writer counts captures" "$E2E_TMP/writer.prom" \
  'leadflow_commands_total{result="ok",type="capture_lead"} 120'
expect_contains "writer counts appended records" "$E2E_TMP/writer.prom" "leadflow_appended_records_total"
expect_contains "writer reports gRPC latency" "$E2E_TMP/writer.prom" \
  'leadflow_grpc_server_handling_seconds_count{code="OK",method="/leadflow.v1.LeadCommandService/ExecuteBatch"} 2'
curl -sf "http://127.0.0.1:${MPORT[funnel-view]}/metrics" >"$E2E_TMP/funnel.prom"
expect_contains "funnel-view is serving" "$E2E_TMP/funnel.prom" \
  'leadflow_view_state{view="funnel",state="serving"} 1'
expect_contains "funnel-view lag is reported per partition" "$E2E_TMP/funnel.prom" \
  'leadflow_view_lag_events{view="funnel",partition="0"} 0'
expect_contains "funnel-view counts applied records" "$E2E_TMP/funnel.prom" \
  'leadflow_view_applied_records_total{view="funnel"}'
expect_contains "funnel-view reports RocksDB memory" "$E2E_TMP/funnel.prom" "leadflow_rocksdb_memtable_bytes"

# A view process that is down: the gateway says which one, as UNAVAILABLE.
kill -TERM "${LAUNCHED_PIDS[3]}"; wait "${LAUNCHED_PIDS[3]}" || true
expect_refusal 3 "gateway: funnel-view at ${ADDR[funnel-view]}" \
  "$LEADCTL" --server "$GATEWAY" --timeout 3 funnel cohort --from 2026-03-01 --to 2026-04-01
echo "multi-process test: all checks passed"
