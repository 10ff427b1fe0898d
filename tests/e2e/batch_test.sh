#!/usr/bin/env bash
# Bulk load through `leadctl batch`: per-line results, refusals named by line, a re-run applies
# nothing twice, and a file with a malformed line sends nothing.
# Usage: batch_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"
start_server --partitions 4

F="$E2E_TMP/commands.jsonl"
python3 - "$F" <<'PY'
import json, sys, hashlib
with open(sys.argv[1], "w") as f:
    f.write("# 2000 captures, an assignment for each of the first 10, one refused conversion\n")
    for i in range(2000):
        f.write(json.dumps({"capture_lead": {"person": {"full_name": f"Lead {i}"},
                 "email": f"lead{i}@example.com", "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}) + "\n")
    for i in range(10):
        f.write(json.dumps({"assign_lead": {"lead_id": "LEAD%d" % i, "owner": "bob"}}) + "\n")
PY
# Lead ids are deterministic: fill them in from the server's own answer for one capture.
for i in $(seq 0 9); do
  id=$(ctl --json capture --name "Lead $i" --email "lead$i@example.com" --source web-form | json lead_id)
  sed -i "s/\"LEAD$i\"/\"$id\"/" "$F"
done
echo '{"convert_lead": {"lead_id": "ld_00000000000000000000", "invoice_ref": "I-1", "deal_value": {"currency_code": "EUR"}}}' >>"$F"

rc=0
ctl batch "$F" --chunk 500 >"$E2E_TMP/out1.txt" 2>"$E2E_TMP/err1.txt" || rc=$?
cat "$E2E_TMP/out1.txt"; cat "$E2E_TMP/err1.txt"
expect_eq "exit code with one refusal" 1 "$rc"
expect_eq "summary" "batch: 2010 applied or already applied, 1 refused, of 2011 commands" \
  "$(tail -1 "$E2E_TMP/out1.txt")"
expect_contains "refusal named by its line" "$E2E_TMP/out1.txt" \
  "refused line 2012: convert_lead: lead ld_00000000000000000000 not found"
LEAD7=$(ctl --json capture --name "Lead 7" --email lead7@example.com --source web-form --id probe | json lead_id)
expect_eq "lead 7 assigned by the batch" bob "$(ctl --json get "$LEAD7" | json owner)"
V=$(ctl --json get "$LEAD7" | json version)

rc=0
ctl --json batch "$F" >"$E2E_TMP/out2.jsonl" 2>/dev/null || rc=$?
expect_eq "re-run: every applied line recognised" 2010 "$(grep -c '"replayed":true' "$E2E_TMP/out2.jsonl")"
expect_eq "re-run wrote nothing" "$V" "$(ctl --json get "$LEAD7" | json version)"

printf '%s\n' '{"capture_lead": {"person": {"full_name": "X"}, "email": "x@example.com", "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}' \
  '{"capture_lead": {"no_such_field": 1}}' >"$E2E_TMP/bad.jsonl"
expect_refusal 2 "bad.jsonl:2: not a leadflow.v1.Command" ctl batch "$E2E_TMP/bad.jsonl"
# Had line 1 of the malformed file been sent, x@example.com would be a known contact now.
R=$(ctl --json capture --name X --email x@example.com --source web-form --id probe2)
expect_eq "the malformed file sent nothing (x@example.com is new)" "" "$(json deduplicated <<<"$R")"
# Two identical lines are two changes (a rep called twice): both are applied, the repeat is
# reported; re-running the same file is a retry; the same line in another file is new work.
touches() { ctl --json get "$LEAD7" | json touches_total; }
line=$(printf '{"log_interaction": {"lead_id": "%s", "kind": "INTERACTION_KIND_CALL", "direction": "DIRECTION_OUTBOUND"}}' "$LEAD7")
printf '%s\n%s\n' "$line" "$line" >"$E2E_TMP/calls.jsonl"
T0=$(touches); T0=${T0:-0}
rc=0; ctl batch "$E2E_TMP/calls.jsonl" >"$E2E_TMP/calls1.txt" 2>&1 || rc=$?
cat "$E2E_TMP/calls1.txt"
expect_eq "identical lines: exit code" 0 "$rc"
expect_eq "identical lines: both applied" "$((T0 + 2))" "$(touches)"
expect_contains "the repeat is reported" "$E2E_TMP/calls1.txt" "line 2 repeats line 1"
ctl batch "$E2E_TMP/calls.jsonl" >/dev/null 2>&1
expect_eq "the same file again: a retry, nothing new" "$((T0 + 2))" "$(touches)"
printf '# tomorrow\n%s\n' "$line" >"$E2E_TMP/calls2.jsonl"
ctl batch "$E2E_TMP/calls2.jsonl" >/dev/null 2>&1
expect_eq "the same line in another file: applied" "$((T0 + 3))" "$(touches)"
echo "batch test: all checks passed"
