#!/usr/bin/env bash
# Views as a user sees them: answers survive a rebuild and SIGKILLs inside projection batches
# unchanged, byte for byte. Usage: views_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"
start_server --partitions 4

# A history: 600 leads; owners, touches, qualifications, conversions, purchases.
python3 - "$E2E_TMP/history.jsonl" <<'PY'
import json, sys
out = open(sys.argv[1], "w")
def cmd(kind, body, at):
    body["meta"] = {"occurred_at": at, "actor": {"id": "loader"}}
    out.write(json.dumps({kind: body}) + "\n")
for i in range(600):
    email = f"lead{i}@example.com"
    day = 1 + i % 28
    cmd("capture_lead", {"person": {"full_name": f"Lead {i}"}, "email": email,
        "source_channel": ["SOURCE_CHANNEL_WEB_FORM", "SOURCE_CHANNEL_REFERRAL", "SOURCE_CHANNEL_EVENT"][i % 3],
        "acquisition_cost": {"currency_code": "EUR", "amount_micros": 25000000}}, f"2026-03-{day:02d}T09:00:00Z")
PY
ctl batch "$E2E_TMP/history.jsonl" >/dev/null 2>&1
# Lead ids for the next commands: ask the server (find by email).
python3 - "$E2E_TMP/more.jsonl" "$LEADCTL" "$SERVER" <<'PY'
import json, subprocess, sys
out = open(sys.argv[1], "w")
ctl, server = sys.argv[2], sys.argv[3]
def lead_id(i):
    r = subprocess.run([ctl, "--server", server, "--json", "find", "--email", f"lead{i}@example.com"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["lead_id"]
def cmd(kind, body, at):
    body["meta"] = {"occurred_at": at, "actor": {"id": "loader"}}
    out.write(json.dumps({kind: body}) + "\n")
for i in range(0, 600, 3):
    lid = lead_id(i)
    day = 1 + i % 28
    cmd("assign_lead", {"lead_id": lid, "owner": ["bob", "carol", "dave"][i % 9 // 3]}, f"2026-03-{day:02d}T10:00:00Z")
    cmd("log_interaction", {"lead_id": lid, "kind": "INTERACTION_KIND_CALL", "direction": "DIRECTION_OUTBOUND",
        "outcome": "OUTCOME_CONNECTED"}, f"2026-03-{day:02d}T11:00:00Z")
    if i % 2 == 0:
        cmd("qualify_lead", {"lead_id": lid, "budget": {"currency_code": "EUR", "amount_micros": 9000000000},
            "decision_maker": "CFO", "need": "reporting", "expected_decision_at": "2026-06-01T00:00:00Z"},
            f"2026-03-{day:02d}T12:00:00Z")
    if i % 6 == 0:
        cmd("log_interaction", {"lead_id": lid, "kind": "INTERACTION_KIND_DEMO", "direction": "DIRECTION_OUTBOUND"},
            f"2026-03-{day:02d}T14:00:00Z")
    if i % 4 == 0:
        cmd("convert_lead", {"lead_id": lid, "invoice_ref": f"INV-{i}",
            "deal_value": {"currency_code": "EUR", "amount_micros": 12000000000}}, f"2026-04-{day:02d}T12:00:00Z")
for i in range(1, 600, 30):  # leads never touched: 20 rejected, 20 postponed
    day = 1 + i % 28
    cmd("reject_lead", {"lead_id": lead_id(i), "reason": "REJECTION_REASON_NO_NEED", "text": "not now"},
        f"2026-03-{day:02d}T15:00:00Z")
    cmd("postpone_lead", {"lead_id": lead_id(i + 1), "revisit_at": "2026-05-01T00:00:00Z", "reason": "budget in May"},
        f"2026-03-{day + 1:02d}T15:00:00Z")
PY
ctl batch "$E2E_TMP/more.jsonl" >/dev/null 2>&1
echo "ok: loaded $(wc -l <"$E2E_TMP/history.jsonl") + $(wc -l <"$E2E_TMP/more.jsonl") commands"

snapshot() {  # the answers a user would look at
  local out=$1
  {
    ctl --json list --limit 1000
    ctl --json list --owner bob --status converted --sort activity --desc --limit 1000
    ctl --json list --captured-from 2026-03-10 --captured-to 2026-03-20 --limit 1000
    ctl --json list --status qualified --limit 7 --desc
    ctl --json count --owner bob --status converted
    ctl --json count --owner bob --status converted --source web-form
    ctl --json customers --owner carol
    for i in 0 3 12 599; do
      id=$(ctl --json find --email "lead$i@example.com" | json lead_id)
      ctl --json get "$id"
      ctl --json timeline "$id"
    done
    ctl --json funnel cohort --from 2026-03-01 --to 2026-04-01
    ctl --json funnel cohort --from 2026-03-01 --to 2026-04-01 --split owner --within-days 40
    ctl --csv funnel cohort --from 2026-03-01 --to 2026-04-01 --split source_channel
    ctl --json funnel activity --from 2026-03-01 --to 2026-05-01 --bucket week --split source_channel
    ctl --json pipeline --split owner
    ctl --json queue --as-of 2026-06-01 --limit 1000
    ctl --json winback --days 30 --as-of 2026-06-01 --limit 1000
    ctl --csv exits --from 2026-03-01 --to 2026-04-01 --limit 1000
    ctl --json exit-reasons --from 2026-03-01 --to 2026-04-01
    for i in 0 12; do  # converted leads (i % 12 == 0 in the history)
      ctl --json customer "$(ctl --json find --email "lead$i@example.com" | json lead_id)"
    done
  } >"$out"
}
snapshot "$E2E_TMP/live.json"
expect_eq "leads listed" 600 "$(grep -c '"lead_id"' <(ctl --json list --limit 1000))"
# The analytics views, against what the history above contains.
ctl --json funnel cohort --from 2026-03-01 --to 2026-04-01 >"$E2E_TMP/cohort.json"
expect_eq "cohort: captured in March" 600 "$(json total.captured <"$E2E_TMP/cohort.json")"
expect_eq "cohort: contacted (every third lead)" 200 "$(json total.contacted <"$E2E_TMP/cohort.json")"
expect_eq "cohort: qualified (every sixth)" 100 "$(json total.qualified <"$E2E_TMP/cohort.json")"
expect_eq "cohort: converted in April (every twelfth)" 50 "$(json total.converted <"$E2E_TMP/cohort.json")"
expect_eq "cohort: rejected" 20 "$(json total.ever_rejected <"$E2E_TMP/cohort.json")"
expect_eq "pipeline: qualified, not converted" 50 "$(ctl --json pipeline | json total.leads)"
expect_eq "re-contact queue on 2026-06-01" 20 \
  "$(ctl --json queue --as-of 2026-06-01 --limit 1000 | grep -c '"lead_id"')"
expect_eq "re-contact queue on 2026-04-01 (revisits are in May)" 0 \
  "$(ctl --json queue --as-of 2026-04-01 --limit 1000 | grep -c '"lead_id"' || true)"
expect_eq "win-back after 30 days" 20 \
  "$(ctl --json winback --days 30 --as-of 2026-06-01 --limit 1000 | grep -c '"lead_id"')"
expect_eq "exits in March" 40 "$(ctl --json exit-reasons --from 2026-03-01 --to 2026-04-01 | json total.exits)"
ctl funnel cohort --from 2026-03-01 --to 2026-04-01 --split source_channel | head -8
# Output flags anywhere on the line (README's example puts --csv last).
ctl exit-reasons --from 2026-03-01 --to 2026-04-01 --csv >"$E2E_TMP/reasons_last.csv"
ctl --csv exit-reasons --from 2026-03-01 --to 2026-04-01 >"$E2E_TMP/reasons_first.csv"
expect_eq "--csv after the subcommand = before it" "$(cat "$E2E_TMP/reasons_first.csv")" \
  "$(cat "$E2E_TMP/reasons_last.csv")"
expect_eq "--json after the subcommand" 40 \
  "$(ctl exit-reasons --from 2026-03-01 --to 2026-04-01 --json | json total.exits)"
rc=0; ctl funnel cohort --from 2026-04-01 --to 2026-03-01 2>"$E2E_TMP/bad.txt" || rc=$?
expect_eq "inverted range: refused" 1 "$rc"
expect_contains "inverted range names the field" "$E2E_TMP/bad.txt" "INVALID_ARGUMENT: captured_to:"
rc=0; ctl funnel cohort --from 2026-03-01 --to 2026-04-01 --split region 2>"$E2E_TMP/bad.txt" || rc=$?
expect_contains "unknown split names the field" "$E2E_TMP/bad.txt" "split: unknown split 'region'"
rc=0; ctl winback --days 0 2>"$E2E_TMP/bad.txt" || rc=$?
expect_contains "N <= 0 names the field" "$E2E_TMP/bad.txt" "rejected_more_than_days: must be 1"
expect_eq "converted leads of bob listed" 17 "$(ctl --json list --owner bob --status converted --limit 1000 | grep -c '"lead_id"')"
expect_eq "converted leads of bob counted" 17 "$(ctl --json count --owner bob --status converted | json count)"
expect_eq "leads counted" 600 "$(ctl count)"

# Rebuilding while the service runs is refused with a clear message.
rc=0; "$LEADFLOW" rebuild --data-dir "$E2E_TMP/data" --partitions 4 2>"$E2E_TMP/busy.txt" || rc=$?
expect_eq "rebuild while serving exits" 1 "$rc"
expect_contains "rebuild while serving: the reason is given" "$E2E_TMP/busy.txt" "stop it first"

stop_server
"$LEADFLOW" rebuild --data-dir "$E2E_TMP/data" --partitions 4 2>"$E2E_TMP/rebuild.txt"
tr '\r' '\n' <"$E2E_TMP/rebuild.txt" | tail -4
grep -q "rebuilding lead, customer, funnel, reprocessing 100%.*events/s" \
  <(tr '\r' '\n' <"$E2E_TMP/rebuild.txt")
echo "ok: rebuild showed progress"
start_server --partitions 4
snapshot "$E2E_TMP/rebuilt.json"
cmp "$E2E_TMP/live.json" "$E2E_TMP/rebuilt.json"
echo "ok: rebuilt views answer exactly as the live ones ($(wc -c <"$E2E_TMP/live.json") bytes of answers)"

for point in projection.before_commit:3 projection.after_commit:2; do
  stop_server
  rm -rf "$E2E_TMP/data/views"   # force the views to re-apply everything, through the kill point
  rc=0
  LEADFLOW_KILL_POINT=$point "$LEADFLOW" serve --data-dir "$E2E_TMP/data" --listen 127.0.0.1:0 \
    --partitions 4 >"$E2E_TMP/killed.log" 2>&1 || rc=$?
  expect_eq "killed at $point (exit by SIGKILL)" 137 "$rc"
  expect_contains "it died at the kill point" "$E2E_TMP/killed.log" "kill point ${point%%:*} reached"
  start_server --partitions 4
  snapshot "$E2E_TMP/after-kill.json"
  cmp "$E2E_TMP/live.json" "$E2E_TMP/after-kill.json"
  echo "ok: after SIGKILL at $point and restart, views are exactly the live ones"
done
echo "views test: all checks passed"
