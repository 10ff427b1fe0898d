#!/usr/bin/env bash
# A damaged view store (a bad disk block in one of a view's RocksDB files; docs/reliability.md).
# Views are derived from the log, so damage to a view never loses an event; the view is rebuilt.
# Checks: `leadflow verify` finds a damaged table file and names it (exit 1, DATA_LOSS); while
# serving, the view that reads the damaged block stops (its queries report it, commands and other
# views go on) and leaves a marker; the next start sets the damaged store aside and rebuilds the
# view from the log; a store that cannot even be opened (a broken MANIFEST) is rebuilt at start;
# `leadflow rebuild --view` cures it offline. A damaged table file of the log itself is not
# derived data: its partition refuses commands with DATA_LOSS naming the file (the others go on,
# the views keep serving what they have) and the cure is a backup (`leadflow restore`).
# Usage: damaged_store_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

# Small memtables so that the views hold table files (.sst) after a few thousand leads.
FLAGS=(--partitions 2 --storage-memtable-mb 4)
python3 - "$E2E_TMP/leads.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(6000):
        f.write(json.dumps({"capture_lead": {
            "meta": {"command_id": f"capture-{i}", "actor": {"id": "loader"}},
            "person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
            "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}) + "\n")
PY
wait_caught_up() {
  for _ in $(seq 1 200); do ctl views | grep -q -e "catching up" -e "rebuilding" || return 0; sleep 0.1; done
}
start_server "${FLAGS[@]}"
ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/captured.json" 2>/dev/null
expect_eq "6000 captures acknowledged" 6000 "$(grep -c '"code":0' "$E2E_TMP/captured.json")"
wait_caught_up
stop_server
"$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify0.txt" 2>&1
expect_contains "verify passes on the intact store" "$E2E_TMP/verify0.txt" "verify passed"

# 1. Damage the largest table file of the lead view (garbage over most of its blocks).
sst=$(ls -S "$E2E_TMP"/data/views/lead/*.sst | head -1)
python3 - "$sst" <<'PY'
import os, sys
path = sys.argv[1]; size = os.path.getsize(path)
with open(path, "r+b") as f:
    for off in range(size // 10, size * 8 // 10, 4096):
        f.seek(off); f.write(b"\xde\xad\xbe\xef" * 4)
print(f"damaged {os.path.basename(path)} ({size} bytes)")
PY
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify1.txt" 2>&1 || rc=$?
expect_eq "verify fails on the damaged store" 1 "$rc"
expect_contains "verify says DATA_LOSS" "$E2E_TMP/verify1.txt" "DATA_LOSS"
expect_contains "verify names the damaged file" "$E2E_TMP/verify1.txt" "$(basename "$sst")"
expect_contains "verify checks the other views all the same" "$E2E_TMP/verify1.txt" \
  "view funnel: 6005 rows identical to a rebuild"

# 2. Serve on it: a call logged on every lead makes the lead view read the damaged blocks.
start_server "${FLAGS[@]}"
python3 - "$E2E_TMP/captured.json" "$E2E_TMP/calls.jsonl" <<'PY'
import json, sys
ids = [json.loads(l)["lead_id"] for l in open(sys.argv[1]) if l.startswith("{")]
with open(sys.argv[2], "w") as f:
    for i, lead in enumerate(ids):
        f.write(json.dumps({"log_interaction": {"meta": {"command_id": f"call-{i}"},
            "lead_id": lead, "kind": "INTERACTION_KIND_CALL", "direction": "DIRECTION_OUTBOUND"}}) + "\n")
PY
ctl --json batch "$E2E_TMP/calls.jsonl" >"$E2E_TMP/calls.json" 2>/dev/null
expect_eq "commands go on while a view's store is damaged" 6000 \
  "$(grep -c '"code":0' "$E2E_TMP/calls.json")"
for _ in $(seq 1 100); do [ -e "$E2E_TMP/data/views/lead.damaged" ] && break; sleep 0.1; done
[ -e "$E2E_TMP/data/views/lead.damaged" ] || { echo "FAIL: no lead.damaged marker"; cat "$SERVE_LOG"; exit 1; }
echo "ok: the damage found while serving is written down for the next start"
expect_contains "the log says what to do" "$SERVE_LOG" "restart leadflow to rebuild view lead"
ctl views >"$E2E_TMP/views1.txt"
expect_contains "leadctl views shows the stopped view and why" "$E2E_TMP/views1.txt" "Corruption"
for _ in $(seq 1 50); do
  ctl health >"$E2E_TMP/health1.txt" 2>&1 || true
  grep -q "LeadQueryService *NOT_SERVING" "$E2E_TMP/health1.txt" && break; sleep 0.1
done
grep -q "LeadQueryService *NOT_SERVING" "$E2E_TMP/health1.txt" \
  || { echo "FAIL: health: lead queries still serving:"; cat "$E2E_TMP/health1.txt"; exit 1; }
echo "ok: health: lead queries not serving, the others are"
expect_eq "the funnel still answers" 6000 \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.contacted)"
stop_server

# 3. The next start sets the damaged store aside and rebuilds the view from the log.
start_server "${FLAGS[@]}"
expect_contains "the start says it rebuilds" "$SERVE_LOG" "rebuilding view lead from the log"
wait_caught_up
[ -d "$E2E_TMP/data/views/lead.damaged-store" ] && [ ! -e "$E2E_TMP/data/views/lead.damaged" ] \
  || { echo "FAIL: damaged store not set aside"; ls "$E2E_TMP/data/views"; exit 1; }
echo "ok: the damaged store is kept aside (lead.damaged-store), the marker is gone"
lead=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["lead_id"])' \
  "$E2E_TMP/captured.json")
expect_eq "a rebuilt lead has its call" "1" "$(ctl --json get "$lead" | json touches_total)"
stop_server
"$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify2.txt" 2>&1
expect_contains "verify passes after the rebuild" "$E2E_TMP/verify2.txt" "verify passed"

# 4. A store that cannot be opened (its MANIFEST overwritten) is rebuilt at start.
for manifest in "$E2E_TMP"/data/views/funnel/MANIFEST-*; do
  head -c 4096 /dev/urandom >"$manifest"
done
start_server "${FLAGS[@]}"
expect_contains "an unopenable store is set aside at start" "$SERVE_LOG" \
  "rebuilding view funnel from the log"
wait_caught_up
expect_eq "the rebuilt funnel counts every lead once" 6000 \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server

# 5. Offline: `leadflow rebuild --view lead` replaces a damaged store; verify passes again.
sst=$(ls -S "$E2E_TMP"/data/views/lead/*.sst | head -1)
python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(4096); f.write(b"\0" * 8192)' "$sst"
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/data" >/dev/null 2>&1 || rc=$?
expect_eq "verify fails again" 1 "$rc"
"$LEADFLOW" rebuild --data-dir "$E2E_TMP/data" --view lead >/dev/null 2>&1
"$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify3.txt" 2>&1
expect_contains "verify passes after leadflow rebuild --view lead" "$E2E_TMP/verify3.txt" \
  "verify passed"

# 6. A damaged table file of the log: one partition refuses, the rest goes on; restore cures.
start_server "${FLAGS[@]}"
"$LEADFLOW" backup "$E2E_TMP/backup" --server "$SERVER" >"$E2E_TMP/backup.txt" 2>&1 || { cat "$E2E_TMP/backup.txt"; exit 1; }
stop_server
log_sst=$(ls -S "$E2E_TMP"/data/log/*.sst | head -1)
python3 -c 'import os, sys
f = open(sys.argv[1], "r+b"); f.seek(os.path.getsize(sys.argv[1]) // 3); f.write(b"\xde\xad" * 8)' "$log_sst"
start_server "${FLAGS[@]}"
expect_contains "the start names the damaged log file" "$SERVE_LOG" "$(basename "$log_sst")"
expect_contains "and the partition that refuses" "$SERVE_LOG" "refuse commands until repaired"
for i in $(seq 1 8); do
  ctl --json capture --name "After $i" --email "after$i@example.com" --source web-form \
    >>"$E2E_TMP/after.json" 2>>"$E2E_TMP/after.err" || true
done
grep -q "DATA_LOSS: partition .* refuses commands" "$E2E_TMP/after.err" \
  || { echo "FAIL: no command refused with DATA_LOSS"; cat "$E2E_TMP/after.err"; exit 1; }
grep -q '"lead_id"' "$E2E_TMP/after.json" \
  || { echo "FAIL: the undamaged partition refused too"; cat "$E2E_TMP/after.err"; exit 1; }
echo "ok: the damaged partition refuses with DATA_LOSS, the other one takes commands"
sleep 0.5
expect_eq "the views still answer (and count the new leads)" \
  $((6000 + $(grep -c '"lead_id"' "$E2E_TMP/after.json"))) \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify4.txt" 2>&1 || rc=$?
expect_eq "verify fails on the damaged log" 1 "$rc"
expect_contains "verify names the damaged log file" "$E2E_TMP/verify4.txt" "$(basename "$log_sst")"
"$LEADFLOW" restore "$E2E_TMP/backup" --data-dir "$E2E_TMP/restored" >"$E2E_TMP/restore.txt" 2>&1 || { cat "$E2E_TMP/restore.txt"; exit 1; }
"$LEADFLOW" verify --data-dir "$E2E_TMP/restored" >"$E2E_TMP/verify5.txt" 2>&1
expect_contains "the restored backup verifies" "$E2E_TMP/verify5.txt" "verify passed"
echo "PASS"
