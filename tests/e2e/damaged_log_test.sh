#!/usr/bin/env bash
# A damaged log: the write-ahead log of the embedded log cut to half while leadflow is stopped
# (what a bad disk or a careless copy does). The log's own recovery cannot see it when the cut
# falls on a record boundary; the witnesses outside it can (the writer's witness file, each view's
# stored offsets). Checks: the damaged partitions refuse commands with DATA_LOSS naming the
# partition, the last good offset and the witness; re-sent commands are not silently applied as
# new; the views report and rebuild (never skip, never count twice); --accept-data-loss goes on
# with what the log holds; the next start is normal. Usage: damaged_log_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

python3 - "$E2E_TMP/leads.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(3000):
        f.write(json.dumps({"capture_lead": {
            "meta": {"command_id": f"capture-{i}", "actor": {"id": "loader"}},
            "person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
            "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}) + "\n")
PY
start_server --partitions 4
ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/first.json" 2>/dev/null
expect_eq "3000 captures acknowledged" 3000 "$(grep -c '"code":0' "$E2E_TMP/first.json")"
for _ in $(seq 1 100); do ctl views | grep -q "catching up" || break; sleep 0.1; done
stop_server

# Cut every write-ahead log file of the embedded log to half its size.
for wal in "$E2E_TMP"/data/log/*.log; do
  size=$(stat -c %s "$wal")
  truncate -s $((size / 2)) "$wal"
  echo "cut $(basename "$wal") from $size to $((size / 2)) bytes"
done

start_server --partitions 4
expect_contains "the start says which partitions are damaged" "$SERVE_LOG" "DATA_LOSS"
expect_contains "and how to go on" "$SERVE_LOG" "--accept-data-loss"
rc=0; ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/second.json" 2>/dev/null || rc=$?
expect_eq "re-sending the file: refusals (exit 1)" 1 "$rc"
python3 - "$E2E_TMP/second.json" <<'PY' || exit 1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lost = [r for r in rows if r.get("code") == 15]  # DATA_LOSS
new = [r for r in rows if r.get("code") == 0 and not r.get("replayed")]
if not lost:
    sys.exit("FAIL: no command was refused with DATA_LOSS on the damaged log")
if new:
    sys.exit(f"FAIL: {len(new)} acknowledged commands were applied again as new events")
msg = lost[0]["message"]
for part in ("partition", "ends at offset", "had seen it up to offset"):
    if part not in msg:
        sys.exit(f"FAIL: the DATA_LOSS message lacks '{part}': {msg}")
print(f"ok: {len(lost)} commands refused with DATA_LOSS, none applied again; e.g. {msg[:160]}...")
PY
# The views saw events the log no longer holds: each reports it and is rebuilt from the log.
expect_contains "the views report the damage" "$SERVE_LOG" "rebuilding"
for _ in $(seq 1 100); do ctl views | grep -q -e "catching up" || break; sleep 0.1; done
ctl views >"$E2E_TMP/views.txt"
python3 - "$E2E_TMP/views.txt" <<'PY' || exit 1
import sys
for line in open(sys.argv[1]).read().splitlines()[1:]:
    view, part, applied, end = line.split()[:4]
    if applied != end:
        sys.exit(f"FAIL: view {view} partition {part} applied {applied}, the log ends at {end}")
print("ok: every view equals the (damaged) log again, none past its end")
PY
in_log=$(python3 -c 'import sys
print(sum(int(l.split()[3]) for l in open(sys.argv[1]).read().splitlines()[1:] if l.startswith("lead ")))' "$E2E_TMP/views.txt")
expect_eq "the funnel counts exactly the leads the log holds" "$in_log" \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server

# The operator accepts the loss: the lost commands are applied again (they are not in the log),
# the others are replays, and every lead is counted once.
start_server --partitions 4 --accept-data-loss
expect_contains "the acceptance is logged" "$SERVE_LOG" "accepting the loss"
rc=0; ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/third.json" 2>/dev/null || rc=$?
expect_eq "after accepting the loss the file applies cleanly" 0 "$rc"
for _ in $(seq 1 100); do ctl views | grep -q "catching up" || break; sleep 0.1; done
expect_eq "every lead exactly once in the funnel" 3000 \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server
start_server --partitions 4
if grep -q "DATA_LOSS" "$SERVE_LOG"; then echo "FAIL: the next start reports damage again"; exit 1; fi
expect_eq "the next start without the flag is normal" 0 \
  "$(ctl --json batch "$E2E_TMP/leads.jsonl" >/dev/null 2>&1; echo $?)"
echo "damaged log test: all checks passed"
