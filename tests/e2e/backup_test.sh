#!/usr/bin/env bash
# Backup, verify, restore: `leadflow backup DIR` takes a consistent copy of every store while
# leadflow serves (and takes commands); `leadflow verify` checks the log against its witnesses
# and every view against a rebuild from the log; after the data directory is lost, `leadflow
# restore` brings the backup back and everything acknowledged before the backup is there.
# Usage: backup_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

python3 - "$E2E_TMP/before.jsonl" "$E2E_TMP/during.jsonl" <<'PY'
import json, sys
def capture(i):
    return json.dumps({"capture_lead": {
        "meta": {"command_id": f"capture-{i}", "actor": {"id": "loader"},
                 "occurred_at": "2026-03-02T09:00:00Z"},
        "person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
        "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}) + "\n"
with open(sys.argv[1], "w") as f:
    for i in range(2000): f.write(capture(i))
with open(sys.argv[2], "w") as f:
    for i in range(2000, 6000): f.write(capture(i))
PY
start_server --partitions 4
ctl --json batch "$E2E_TMP/before.jsonl" >"$E2E_TMP/before.json" 2>/dev/null
expect_eq "2000 captures before the backup" 2000 "$(grep -c '"code":0' "$E2E_TMP/before.json")"

# A backup while a client keeps writing.
ctl --json batch "$E2E_TMP/during.jsonl" >"$E2E_TMP/during.json" 2>/dev/null &
WRITER=$!
sleep 0.3
rc=0; "$LEADFLOW" backup "$E2E_TMP/backup" --server "$SERVER" >"$E2E_TMP/backup.txt" 2>&1 || rc=$?
cat "$E2E_TMP/backup.txt"
expect_eq "backup while serving" 0 "$rc"
wait "$WRITER"
expect_contains "the backup names its log position" "$E2E_TMP/backup.txt" "log position"
[ -f "$E2E_TMP/backup/backup.json" ] || { echo "FAIL: no backup.json"; exit 1; }
rc=0; "$LEADFLOW" backup "$E2E_TMP/backup" --server "$SERVER" >"$E2E_TMP/again.txt" 2>&1 || rc=$?
expect_eq "a backup into an existing directory is refused" 1 "$rc"
expect_contains "it says why" "$E2E_TMP/again.txt" "already exists"

# verify: the live data directory (read-only, beside the running server) and the backup.
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/backup" >"$E2E_TMP/verify.txt" 2>&1 || rc=$?
cat "$E2E_TMP/verify.txt"
expect_eq "verify the backup" 0 "$rc"
expect_contains "views compared with a rebuild" "$E2E_TMP/verify.txt" "identical to a rebuild"
stop_server
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/data" >"$E2E_TMP/verify-live.txt" 2>&1 || rc=$?
expect_eq "verify the data directory" 0 "$rc"

# The data directory is lost; restore the backup into a new one.
rm -rf "$E2E_TMP/data"
rc=0; "$LEADFLOW" restore "$E2E_TMP/backup" --data-dir "$E2E_TMP/data" >"$E2E_TMP/restore.txt" 2>&1 || rc=$?
cat "$E2E_TMP/restore.txt"
expect_eq "restore" 0 "$rc"
mkdir -p "$E2E_TMP/busy" && touch "$E2E_TMP/busy/x"
rc=0; "$LEADFLOW" restore "$E2E_TMP/backup" --data-dir "$E2E_TMP/busy" >"$E2E_TMP/busy.txt" 2>&1 || rc=$?
expect_eq "restoring over a non-empty directory is refused" 1 "$rc"
start_server --partitions 4
# Everything acknowledged before the backup started is there: re-sending it only replays.
rc=0; ctl --json batch "$E2E_TMP/before.jsonl" >"$E2E_TMP/replay.json" 2>/dev/null || rc=$?
expect_eq "the commands from before the backup are replays" 2000 \
  "$(grep -c '"replayed":true' "$E2E_TMP/replay.json")"
# Commands acknowledged during the backup may or may not be in it; re-sent, each is either a
# replay or applied now, once.
ctl --json batch "$E2E_TMP/during.jsonl" >"$E2E_TMP/during2.json" 2>/dev/null
for _ in $(seq 1 100); do ctl views | grep -q "catching up" || break; sleep 0.1; done
expect_eq "every lead once in the funnel" 6000 \
  "$(ctl --json funnel cohort --from 2026-01-01 --to 2027-01-01 | json total.captured)"
stop_server

# verify finds damage: a view whose rows the log does not explain.
cp -r "$E2E_TMP/backup" "$E2E_TMP/damaged"
for wal in "$E2E_TMP"/damaged/log/*.log; do truncate -s $(( $(stat -c %s "$wal") / 2 )) "$wal"; done
rc=0; "$LEADFLOW" verify --data-dir "$E2E_TMP/damaged" >"$E2E_TMP/verify-bad.txt" 2>&1 || rc=$?
cat "$E2E_TMP/verify-bad.txt" | head -5
expect_eq "verify of a damaged copy fails" 1 "$rc"
expect_contains "and names the damage" "$E2E_TMP/verify-bad.txt" "DATA_LOSS"
echo "backup test: all checks passed"
