#!/usr/bin/env bash
# A full disk, on a real small filesystem (a 20 MB tmpfs; `ulimit -f` is not a full disk):
# commands are refused with UNAVAILABLE naming the cause, the process never aborts, reads keep
# being answered, a restart on the still-full disk starts, writing resumes by itself once space
# is freed (no restart), and nothing acknowledged is lost or applied twice.
# Usage: disk_full_test.sh LEADFLOW LEADCTL
#
# The tmpfs is mounted in a private mount namespace (unshare -Urm), else directly when run as
# root; with neither the test fails saying so (it never skips silently).
if [ -z "${LEADFLOW_DISK_NS:-}" ]; then
  if unshare -Urm true 2>/dev/null; then
    exec env LEADFLOW_DISK_NS=userns unshare -Urm bash "$0" "$@"
  elif [ "$(id -u)" = 0 ]; then
    export LEADFLOW_DISK_NS=root
  else
    echo "FAIL: this test needs a small real filesystem: neither user namespaces (unshare -Urm)"
    echo "      nor root (to mount a tmpfs) are available here"
    exit 1
  fi
fi
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

DISK="$E2E_TMP/disk"
mkdir -p "$DISK"
mount -t tmpfs -o size=20m tmpfs "$DISK" || { echo "FAIL: cannot mount a tmpfs"; exit 1; }
# At exit: stop the servers, unmount, then remove the temporary files.
stop_then_unmount() {
  for pid in "${LAUNCHED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  umount "$DISK" 2>/dev/null || true
  cleanup
}
trap stop_then_unmount EXIT
# 6 MB of someone else's files: deleting them later frees room.
dd if=/dev/zero of="$DISK/ballast" bs=1M count=6 status=none

python3 - "$E2E_TMP/leads.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(30000):
        f.write(json.dumps({"capture_lead": {
            "meta": {"command_id": f"capture-{i}", "actor": {"id": "loader"}},
            "person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
            "source_channel": "SOURCE_CHANNEL_WEB_FORM", "interest_note": "x" * 400}}) + "\n")
PY

serve_on_disk() {
  SERVE_LOG="$E2E_TMP/serve.log"
  launch "$SERVE_LOG" --partitions 4 --data-dir "$DISK/data"
  SERVER_PID=$LAUNCHED_PID
  SERVER=$LAUNCHED_ADDR
}
serve_on_disk
rc=0; ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/first.json" 2>/dev/null || rc=$?
applied=$(grep -c '"code":0' "$E2E_TMP/first.json" || true)
refused=$(grep -c '"code":14' "$E2E_TMP/first.json" || true)
echo "first load: $applied applied, $refused refused with UNAVAILABLE (df: $(df -h "$DISK" | awk 'NR==2 {print $4}') free)"
[ "$refused" -gt 0 ] || { echo "FAIL: the disk never filled up"; exit 1; }
[ "$applied" -gt 0 ] || { echo "FAIL: nothing was applied"; exit 1; }
expect_eq "every command either applied or UNAVAILABLE" 30000 $((applied + refused))
grep '"code":14' "$E2E_TMP/first.json" | grep -v -q -e "No space left" -e "disk full" -e "refuses commands" &&
  { echo "FAIL: a refusal does not name the cause:"; grep '"code":14' "$E2E_TMP/first.json" | grep -v -e "No space left" -e "disk full" | head -2; exit 1; }
echo "ok: every refusal names the cause"
sleep 2
kill -0 "$SERVER_PID" || { echo "FAIL: the server died"; tail -20 "$SERVE_LOG"; exit 1; }
echo "ok: the server is still running"

# Reads are answered: the lead, or (if its view has not stored it yet) UNAVAILABLE naming the
# cause; never NOT_FOUND for a lead that was acknowledged, never a dropped connection.
FIRST=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("code") == 0: print(r["lead_id"]); break' "$E2E_TMP/first.json")
rc=0; ctl get "$FIRST" >"$E2E_TMP/get.txt" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  expect_eq "a read is answered (UNAVAILABLE at worst)" 3 "$rc"
  grep -q -e "No space" -e "disk full" -e "waits" "$E2E_TMP/get.txt" ||
    { echo "FAIL: the read's refusal does not name the cause:"; cat "$E2E_TMP/get.txt"; exit 1; }
fi
echo "ok: a read is answered (exit $rc)"
ctl views >"$E2E_TMP/views.txt" 2>&1 || true
expect_contains "views answer" "$E2E_TMP/views.txt" "VIEW"

stop_server
echo "ok: stopped cleanly with the disk full"
serve_on_disk
echo "ok: restarted on the still-full disk"
rc=0; ctl capture --name "Zed" --email zed@example.com --source web-form --id zed >"$E2E_TMP/zed.txt" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
  # The restart may have found just enough room for one more command.
  echo "note: the restarted server took one command"
else
  expect_eq "a command on the full disk: exit 3 (retry later)" 3 "$rc"
  expect_contains "it names the cause" "$E2E_TMP/zed.txt" "UNAVAILABLE"
fi

rm -f "$DISK/ballast"
echo "ok: freed 6 MB"
resumed=""
for _ in $(seq 1 60); do
  if ctl capture --name "Zed" --email zed@example.com --source web-form --id zed >/dev/null 2>&1; then
    resumed=yes
    break
  fi
  sleep 0.5
done
[ -n "$resumed" ] || { echo "FAIL: writing did not resume within 30 s of freeing space"; tail -20 "$SERVE_LOG"; exit 1; }
echo "ok: writing resumed by itself, without a restart"

# Every acknowledged command is there once: sending those lines again replays each of them
# (and writes nothing, so it needs no room).
python3 - "$E2E_TMP/first.json" "$E2E_TMP/leads.jsonl" "$E2E_TMP/acked.jsonl" <<'PY'
import json, sys
acked = {json.loads(l)["line"] for l in open(sys.argv[1])
         if l.startswith("{") and json.loads(l).get("code") == 0}
with open(sys.argv[3], "w") as out:
    for n, line in enumerate(open(sys.argv[2]), 1):
        if n in acked: out.write(line)
PY
rc=0; ctl --json batch "$E2E_TMP/acked.jsonl" >"$E2E_TMP/second.json" 2>/dev/null || rc=$?
expect_eq "re-sending the acknowledged lines: exit code" 0 "$rc"
expect_eq "every acknowledged command replayed, none applied twice" "$applied" \
  "$(grep -c '"replayed":true' "$E2E_TMP/second.json")"
for _ in $(seq 1 150); do
  ctl views 2>/dev/null | grep -q -e "catching up" -e stalled -e failed || break
  sleep 0.2
done
expect_eq "the funnel counts each lead once (the acknowledged captures and Zed)" \
  "$((applied + 1))" "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server
echo "disk full test: all checks passed"
