#!/usr/bin/env bash
# A disk that turns read-only (a filesystem remounted read-only after I/O errors, EROFS): commands
# are refused with UNAVAILABLE naming the cause, reads keep being answered, the process never
# aborts, it stops cleanly and starts again on the read-only disk (read-only), writing resumes by
# itself once the disk is writable again, and nothing acknowledged is lost or applied twice.
# Usage: readonly_disk_test.sh LEADFLOW LEADCTL
#
# The tmpfs is mounted in a private mount namespace (unshare -Urm), else directly when run as
# root; with neither the test fails saying so (it never skips silently).
if [ -z "${LEADFLOW_DISK_NS:-}" ]; then
  if unshare -Urm true 2>/dev/null; then
    exec env LEADFLOW_DISK_NS=userns unshare -Urm bash "$0" "$@"
  elif [ "$(id -u)" = 0 ]; then
    export LEADFLOW_DISK_NS=root
  else
    echo "FAIL: this test needs a filesystem it can remount read-only: neither user namespaces"
    echo "      (unshare -Urm) nor root (to mount a tmpfs) are available here"
    exit 1
  fi
fi
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

DISK="$E2E_TMP/disk"
mkdir -p "$DISK"
mount -t tmpfs -o size=64m tmpfs "$DISK" || { echo "FAIL: cannot mount a tmpfs"; exit 1; }
stop_then_unmount() {
  for pid in "${LAUNCHED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  umount "$DISK" 2>/dev/null || true
  cleanup
}
trap stop_then_unmount EXIT

python3 - "$E2E_TMP/leads.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(500):
        f.write(json.dumps({"capture_lead": {
            "meta": {"command_id": f"capture-{i}", "actor": {"id": "loader"}},
            "person": {"full_name": f"Lead {i}"}, "email": f"lead{i}@example.com",
            "source_channel": "SOURCE_CHANNEL_WEB_FORM"}}) + "\n")
PY
serve_on_disk() {
  SERVE_LOG="$E2E_TMP/serve$1.log"
  launch "$SERVE_LOG" --partitions 4 --data-dir "$DISK/data" --metrics-listen 127.0.0.1:0
  SERVER_PID=$LAUNCHED_PID
  SERVER=$LAUNCHED_ADDR
}
serve_on_disk 1
ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/first.json" 2>/dev/null
expect_eq "500 captures acknowledged" 500 "$(grep -c '"code":0' "$E2E_TMP/first.json")"
FIRST=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["lead_id"])' \
  "$E2E_TMP/first.json")

stop_server
# A filesystem cannot be remounted read-only while files on it are open for writing (the kernel
# does that itself after I/O errors, errors=remount-ro, which a tmpfs cannot show): the disk turns
# read-only while leadflow is stopped. A write failing with EROFS while serving takes the same
# path as one failing with ENOSPC (disk_full_test.sh): both are RocksDB I/O errors.
mount -o remount,ro "$DISK" || { echo "FAIL: cannot remount the tmpfs read-only"; exit 1; }
echo "ok: the disk is read-only now"
serve_on_disk 2
echo "ok: started on the read-only disk"
expect_contains "the start says it is read-only" "$SERVE_LOG" "starting read-only"
ctl get "$FIRST" >"$E2E_TMP/get2.txt" 2>&1
expect_contains "reads are answered after the restart" "$E2E_TMP/get2.txt" "Lead 0"
rc=0; ctl capture --name "Ro" --email ro@example.com --source web-form --id ro >"$E2E_TMP/ro.txt" 2>&1 || rc=$?
expect_eq "a command on the read-only disk: exit 3 (retry later)" 3 "$rc"
expect_contains "it says UNAVAILABLE" "$E2E_TMP/ro.txt" "UNAVAILABLE"
grep -q -i -e "read-only" "$E2E_TMP/ro.txt" ||
  { echo "FAIL: the refusal does not name the cause:"; cat "$E2E_TMP/ro.txt"; exit 1; }
echo "ok: the refusal names the cause"
ctl views >"$E2E_TMP/views.txt" 2>&1 || true
expect_contains "the views answer" "$E2E_TMP/views.txt" "VIEW"
metrics() {
  local port
  port=$(sed -n 's/.*metrics on http:\/\/[0-9.]*:\([0-9]*\)\/metrics.*/\1/p' "$SERVE_LOG" | head -1)
  curl -sf "http://127.0.0.1:$port/metrics"
}
expect_eq "metrics: the disk does not take writes" 0 \
  "$(metrics | sed -n 's/^leadflow_disk_writable \([0-9]*\).*/\1/p')"

mount -o remount,rw "$DISK"
echo "ok: the disk is writable again"
resumed=""
for _ in $(seq 1 60); do
  if ctl capture --name "Ro" --email ro@example.com --source web-form --id ro >/dev/null 2>&1; then
    resumed=yes; break
  fi
  sleep 0.5
done
[ -n "$resumed" ] || { echo "FAIL: writing did not resume within 30 s"; tail -20 "$SERVE_LOG"; exit 1; }
echo "ok: writing resumed by itself, without a restart"
expect_eq "metrics: the disk takes writes again" 1 \
  "$(metrics | sed -n 's/^leadflow_disk_writable \([0-9]*\).*/\1/p')"
rc=0; ctl --json batch "$E2E_TMP/leads.jsonl" >"$E2E_TMP/second.json" 2>/dev/null || rc=$?
expect_eq "re-sending the file: exit code" 0 "$rc"
expect_eq "every acknowledged command replayed, none applied twice" 500 \
  "$(grep -c '"replayed":true' "$E2E_TMP/second.json")"
for _ in $(seq 1 150); do
  ctl views 2>/dev/null | grep -q -e "catching up" -e stalled -e failed || break
  sleep 0.2
done
expect_eq "the funnel counts each lead once" 501 \
  "$(ctl --json funnel cohort --from 2020-01-01 --to 2030-01-01 | json total.captured)"
stop_server
echo "read-only disk test: all checks passed"
