#!/usr/bin/env python3
"""Crash loop with an expected-state oracle (docs/reliability.md).

A client drives a generated sales history through `leadflow serve` in batches while the server
is SIGKILLed again and again: at named kill points compiled into test builds (before and after the
writer's durable append, before and after a view's rows + offset commit), at random moments from
outside, and in the middle of `leadflow rebuild`. After every crash the server is restarted and
the client re-sends every batch that was not acknowledged, with the same command ids.

Two more phases stand for the storage faults (docs/reliability.md):
  - disk full (with --disk-mb, the data directory on a tmpfs of that size, mounted in a private
    mount namespace): a filler takes every free byte while commands arrive; the server must refuse
    (UNAVAILABLE naming the cause), never die by itself, start again on the full disk after a
    SIGKILL, and take commands again by itself once the filler's file is deleted;
  - damaged log: after a SIGKILL every write-ahead log file of the embedded log is cut to half.
    Either the start refuses the damaged partitions with DATA_LOSS naming the partition and the
    witness (and `leadflow verify` fails on the directory), after which the undamaged files are
    put back (a restore), or the cut held only unacknowledged records and the run goes on with
    the cut log: the final checks then show that nothing acknowledged was lost.

At the end it checks:
  1. every command was acknowledged (none refused: the history is valid);
  2. the log holds every acknowledged event exactly once and nothing else (read back through
     every lead's timeline: event ids and command ids);
  3. a command acknowledged twice (the retry of a batch whose first attempt was applied before
     the crash) got the same event ids both times;
  4. every lead's final status equals the oracle's (what the generator scripted);
  5. the views answer exactly as views rebuilt from offset zero (lead, funnel, reprocessing).

Usage: crash_loop.py LEADFLOW LEADCTL [--cycles N] [--leads N] [--seed N] [--workdir DIR]
                     [--disk-mb N] [--damage]
"""
import argparse
import errno
import glob
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

KILL_POINTS = ["writer.before_append", "writer.after_append", "projection.before_commit",
               "projection.after_commit"]


def history(leads, seed):
    """Commands of a valid history, and the status each lead must end in."""
    rng = random.Random(seed)
    base = 1767225600  # 2026-01-01T00:00:00Z
    commands, expected = [], {}

    def at(t):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def cmd(t, kind, body, cid):
        body["meta"] = {"command_id": cid, "occurred_at": at(t), "actor": {"id": "crash-loop"}}
        commands.append((t, len(commands), {kind: body}))

    for i in range(leads):
        email = f"crash{i}@example.com"
        t = base + i * 3600 + rng.randint(0, 3000)
        cmd(t, "capture_lead", {"person": {"full_name": f"Crash Lead {i}"}, "email": email,
                                "source_channel": ["SOURCE_CHANNEL_WEB_FORM", "SOURCE_CHANNEL_REFERRAL",
                                                   "SOURCE_CHANNEL_EVENT"][i % 3]}, f"{i}-capture")
        ref = {"email": email}  # resolved to a lead id after the capture is acknowledged
        t += 3600
        cmd(t, "assign_lead", {"lead": ref, "owner": ["ann", "bob", "carl"][i % 3]}, f"{i}-assign")
        t += 3600
        cmd(t, "log_interaction", {"lead": ref, "kind": "INTERACTION_KIND_CALL",
                                   "direction": "DIRECTION_OUTBOUND",
                                   "outcome": "OUTCOME_CONNECTED"}, f"{i}-call")
        branch = i % 6
        status = "LEAD_STATUS_CONTACTED"

        def qualify(t):
            cmd(t, "qualify_lead", {"lead": ref, "budget": {"currency_code": "EUR",
                                                            "amount_micros": 5000000000},
                                    "decision_maker": "CFO", "need": "crm",
                                    "expected_decision_at": at(t + 86400 * 60)}, f"{i}-qualify")

        if branch == 0:
            t += 86400
            qualify(t)
            t += 86400
            cmd(t, "log_interaction", {"lead": ref, "kind": "INTERACTION_KIND_DEMO",
                                       "direction": "DIRECTION_OUTBOUND"}, f"{i}-demo")
            t += 86400 * 3
            cmd(t, "convert_lead", {"lead": ref, "invoice_ref": f"INV-{i}",
                                    "deal_value": {"currency_code": "EUR",
                                                   "amount_micros": 9000000000}}, f"{i}-convert")
            status = "LEAD_STATUS_CONVERTED"
        elif branch == 1:
            t += 86400
            cmd(t, "reject_lead", {"lead": ref, "reason": "REJECTION_REASON_NO_BUDGET",
                                   "text": "not this year"}, f"{i}-reject")
            status = "LEAD_STATUS_REJECTED"
        elif branch == 2:
            t += 86400
            cmd(t, "postpone_lead", {"lead": ref, "revisit_at": at(t + 86400 * 30),
                                     "reason": "after the fair"}, f"{i}-postpone")
            status = "LEAD_STATUS_POSTPONED"
        elif branch == 3:
            t += 86400
            cmd(t, "reject_lead", {"lead": ref, "reason": "REJECTION_REASON_BAD_TIMING",
                                   "text": "call in spring"}, f"{i}-reject")
            t += 86400 * 2
            cmd(t, "reactivate_lead", {"lead": ref, "note": "called back"}, f"{i}-reactivate")
            t += 86400
            qualify(t)
            status = "LEAD_STATUS_QUALIFIED"
        elif branch == 4:
            t += 86400
            cmd(t, "disqualify_lead", {"lead": ref,
                                       "reason": "DISQUALIFICATION_REASON_NOT_TARGET_MARKET"},
                f"{i}-disqualify")
            status = "LEAD_STATUS_DISQUALIFIED"
        expected[email] = status
    commands.sort(key=lambda c: (c[0], c[1]))
    return [c[2] for c in commands], expected


class Server:
    def __init__(self, leadflow, data, log_path):
        self.leadflow, self.data, self.log_path = leadflow, data, log_path
        self.proc, self.addr = None, None

    def start(self, kill_point=None):
        env = dict(os.environ)
        env.pop("LEADFLOW_KILL_POINT", None)
        if kill_point:
            env["LEADFLOW_KILL_POINT"] = kill_point
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.leadflow, "serve", "--data-dir", self.data, "--listen",
                                      "127.0.0.1:0", "--partitions", "4"], stdout=log,
                                     stderr=subprocess.STDOUT, env=env)
        for _ in range(300):
            text = open(self.log_path).read()
            m = re.search(r"serving gRPC on (\S+)", text)
            if m:
                self.addr = m.group(1)
                return True
            if self.proc.poll() is not None:
                return False  # died during start-up (a kill point reached while replaying)
            time.sleep(0.02)
        raise RuntimeError("server did not start:\n" + open(self.log_path).read())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        if rc != 0:
            raise RuntimeError(f"graceful stop exited {rc}:\n" + open(self.log_path).read())


def in_disk_namespace(argv):
    """Re-executes the script in a private mount namespace (unshare -Urm) so it may mount a tmpfs;
    as root it mounts directly. Returns only when mounting is possible; fails loudly otherwise."""
    if os.environ.get("LEADFLOW_DISK_NS"):
        return
    if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode == 0:
        env = dict(os.environ, LEADFLOW_DISK_NS="userns")
        os.execvpe("unshare", ["unshare", "-Urm", sys.executable, os.path.abspath(argv[0]),
                               *argv[1:]], env)
    if os.geteuid() == 0:
        os.environ["LEADFLOW_DISK_NS"] = "root"
        return
    raise RuntimeError("--disk-mb needs a small real filesystem: neither user namespaces "
                       "(unshare -Urm) nor root (to mount a tmpfs) are available here")


def fill(path):
    """Writes `path` until the filesystem is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * (256 << 10)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n = f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            written += n
            if n < len(chunk):
                break
    # The last bytes too (the page that did not fit as a whole).
    try:
        with open(path, "ab", buffering=0) as f:
            while f.write(b"\0" * 4096):
                written += 4096
    except OSError:
        pass
    return written


def ctl(leadctl, addr, *args, check=True):
    r = subprocess.run([leadctl, "--server", addr, "--timeout", "5", *args],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"leadctl {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("leadflow")
    ap.add_argument("leadctl")
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--leads", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=5, help="commands per batch RPC")
    ap.add_argument("--workdir")
    ap.add_argument("--disk-mb", type=int, default=0,
                    help="data directory on a tmpfs of this size; adds the disk-full phase")
    ap.add_argument("--damage", action="store_true", help="add the damaged-log phase")
    a = ap.parse_args()
    if a.disk_mb:
        in_disk_namespace(sys.argv)
    rng = random.Random(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="leadflow-crash-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    disk = None
    if a.disk_mb:
        disk = os.path.join(work, "disk")
        os.makedirs(disk, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={a.disk_mb}m", "tmpfs", disk],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"cannot mount a {a.disk_mb} MB tmpfs: {r.stderr}")
        data = os.path.join(disk, "data")
    # Authentication on, as for any `leadflow serve`: a token key outside the data directory
    # (the environment reaches every leadflow start) and an admin token for leadctl.
    key_file = os.path.join(work, "token.key")
    with open(key_file, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.environ["LEADFLOW_AUTH_TOKEN_KEY_FILE"] = key_file
    os.environ["LEADFLOW_TOKEN"] = subprocess.run(
        [a.leadflow, "token", "issue", "--role", "admin", "--subject", "crash-loop", "--ttl", "12h",
         "--data-dir", os.path.join(work, "no-data")],
        capture_output=True, text=True, check=True).stdout.strip()
    server = Server(a.leadflow, data, os.path.join(work, "serve.log"))
    commands, expected = history(a.leads, a.seed)
    lead_ids = {}  # email -> lead id (from the capture's reply)
    acked = {}  # command id -> event ids
    next_cmd = 0
    kills = {"external": 0, "rebuild": 0, "start-up": 0, **{k: 0 for k in KILL_POINTS}}
    phases = {"disk-full": 0, "disk-full-restarted": 0, "damage-refused": 0,
              "damage-nothing-acknowledged-cut": 0}
    refusals = {}  # UNAVAILABLE messages seen while the disk was full (first 80 chars) -> count
    t0 = time.time()

    def resolve(c):
        (kind, body), = c.items()
        body = json.loads(json.dumps(body))
        ref = body.pop("lead", None)
        if ref is not None:
            body["lead_id"] = lead_ids[ref["email"]]
        return {kind: body}

    def send_batches(batch=None, until=None):
        """Sends batches until all are acknowledged, the server dies or refuses with UNAVAILABLE,
        or time.time() passes `until`. True if all done."""
        nonlocal next_cmd
        batch = batch or a.batch
        while next_cmd < len(commands):
            if until is not None and time.time() > until:
                return False
            chunk = []
            for c in commands[next_cmd:next_cmd + batch]:
                (kind, body), = c.items()
                if "lead" in body and body["lead"]["email"] not in lead_ids:
                    break  # needs a lead id from a capture in this batch: send up to here
                chunk.append(resolve(c))
            if not chunk:
                raise RuntimeError("a command refers to a lead that was never captured")
            path = os.path.join(work, "batch.jsonl")
            with open(path, "w") as f:
                for c in chunk:
                    f.write(json.dumps(c) + "\n")
            r = ctl(a.leadctl, server.addr, "--json", "batch", path, check=False)
            if r.returncode == 3 or not server.alive():
                return False  # not acknowledged: re-sent after the restart
            rows = [json.loads(line) for line in r.stdout.splitlines()
                    if line.strip().startswith("{")]
            if r.returncode not in (0, 1) or len(rows) != len(chunk):
                raise RuntimeError(f"batch failed (rc {r.returncode}, {len(rows)} results for "
                                   f"{len(chunk)} commands): {r.stdout}{r.stderr}")
            unavailable = [row for row in rows if row["code"] == 14]
            refused = [row for row in rows if row["code"] not in (0, 14)]
            if refused:
                raise RuntimeError(f"refused: {refused[0]}")
            for row in unavailable:
                # Storage refusals (a full disk): not acknowledged, re-sent later. Each must
                # name its cause.
                msg = row.get("message", "")
                if not any(k in msg for k in ("No space", "disk", "free", "read-only",
                                              "takes writes", "log")):
                    raise RuntimeError(f"an UNAVAILABLE refusal does not name its cause: {msg}")
                refusals[msg[:160]] = refusals.get(msg[:160], 0) + 1
            acked_prefix = 0
            for c, row in zip(chunk, rows):
                if row["code"] != 0:
                    break
                acked_prefix += 1
            for c, row in zip(chunk, rows):
                if row["code"] != 0:
                    continue
                cid = row["command_id"]
                ids = row.get("event_ids", [])
                if cid in acked and acked[cid] != ids:
                    raise RuntimeError(f"{cid} acknowledged twice with different events: "
                                       f"{acked[cid]} then {ids}")
                acked[cid] = ids
                (kind, body), = c.items()
                if kind == "capture_lead":
                    lead_ids[body["email"]] = row["lead_id"]
            next_cmd += acked_prefix
            if unavailable:
                return False
        return True

    def tail(path, n=15):
        return "\n".join(open(path).read().splitlines()[-n:])

    def disk_full_phase():
        """A filler takes every free byte of the data directory's disk while commands arrive."""
        phases["disk-full"] += 1
        assert server.start(), "start failed:\n" + tail(server.log_path)
        ballast = os.path.join(disk, "ballast")
        filler = threading.Thread(target=fill, args=(ballast,))
        filler.start()
        # Single-command batches: a refusal never splits a lead's commands out of order.
        while filler.is_alive() and next_cmd < len(commands):
            send_batches(batch=1, until=time.time() + 0.2)
        filler.join()
        send_batches(batch=1, until=time.time() + rng.uniform(0.5, 1.5))  # on the full disk
        if not server.alive():
            raise RuntimeError("the server died on the full disk:\n" + tail(server.log_path))
        if rng.random() < 0.5:
            # SIGKILL on the full disk, and a start on it (read-only if need be).
            server.kill()
            if not server.start():
                raise RuntimeError("no start on the full disk:\n" + tail(server.log_path))
            phases["disk-full-restarted"] += 1
            send_batches(batch=1, until=time.time() + 0.5)
            if not server.alive():
                raise RuntimeError("the restarted server died on the full disk:\n" +
                                   tail(server.log_path))
        os.remove(ballast)
        # Writing resumes by itself (no restart) once there is room again.
        deadline = time.time() + 30
        resumed = False
        while time.time() < deadline:
            before = next_cmd
            if send_batches(until=time.time() + 1.0) or next_cmd > before:
                resumed = True
                break
            if not server.alive():
                raise RuntimeError("the server died after space was freed:\n" +
                                   tail(server.log_path))
            time.sleep(0.2)
        if not resumed and next_cmd < len(commands):
            raise RuntimeError("writing did not resume within 30 s of freeing space:\n" +
                               tail(server.log_path))
        server.kill()

    def damage_phase():
        """Every write-ahead log file of the embedded log cut to half after a SIGKILL."""
        assert server.start(), "start failed:\n" + tail(server.log_path)
        send_batches(until=time.time() + rng.uniform(0.3, 1.0))
        server.kill()
        log_dir = os.path.join(data, "log")
        intact = os.path.join(work, "log-intact")
        shutil.rmtree(intact, ignore_errors=True)
        shutil.copytree(log_dir, intact)
        for wal in glob.glob(os.path.join(log_dir, "*.log")):
            os.truncate(wal, os.path.getsize(wal) // 2)
        started = server.start()
        if not started:
            raise RuntimeError("the server died starting on a damaged log:\n" +
                               tail(server.log_path))
        time.sleep(0.3)
        text = open(server.log_path).read()
        server.kill()
        if "DATA_LOSS" in text:
            m = re.search(r"DATA_LOSS[^\n]*", text)
            for part in ("partition", "ends at offset", "had seen it up to offset"):
                if part not in m.group(0):
                    raise RuntimeError(f"the refusal lacks '{part}': {m.group(0)}")
            v = subprocess.run([a.leadflow, "verify", "--data-dir", data,
                                "--scratch-dir", work], capture_output=True, text=True)
            if v.returncode != 1 or "DATA_LOSS" not in v.stdout:
                raise RuntimeError(f"leadflow verify did not find the damage (rc "
                                   f"{v.returncode}): {v.stdout[-600:]}{v.stderr[-600:]}")
            # The operator restores the log (here: the files as they were before the cut).
            shutil.rmtree(log_dir)
            shutil.copytree(intact, log_dir)
            phases["damage-refused"] += 1
        else:
            # The cut held only records never acknowledged; go on with the cut log: the final
            # checks show that nothing acknowledged is missing.
            phases["damage-nothing-acknowledged-cut"] += 1
        shutil.rmtree(intact, ignore_errors=True)

    for cycle in range(a.cycles):
        mode = rng.random()
        if disk and cycle % 10 == 3:
            disk_full_phase()
            continue
        if a.damage and cycle % 10 == 6:
            damage_phase()
            continue
        if cycle % 10 == 9:
            # A rebuild killed half-way: the live views must be untouched by it.
            n = rng.randint(1, 6)
            env = dict(os.environ, LEADFLOW_KILL_POINT=f"projection.before_commit:{n}")
            r = subprocess.run([a.leadflow, "rebuild", "--data-dir", data, "--partitions", "4"],
                               capture_output=True, text=True, env=env)
            if r.returncode in (137, -9):  # killed at the kill point (shell or direct)
                kills["rebuild"] += 1
            elif r.returncode != 0:
                raise RuntimeError(f"rebuild exited {r.returncode}: {r.stderr}")
            continue
        if mode < 0.7:
            point = f"{rng.choice(KILL_POINTS)}:{rng.randint(1, 12)}"
            started = server.start(point)
            if not started:  # reached while the views caught up during start-up
                kills["start-up"] += 1
                server.kill()
                continue
            send_batches()
            if server.alive():
                # Not reached yet (e.g. all commands are in): the views may still reach it.
                time.sleep(rng.uniform(0, 0.3))
            server.kill()
            reached = re.search(r"kill point (\S+) reached", open(server.log_path).read())
            kills[reached.group(1) if reached else "external"] += 1
        else:
            # SIGKILL from outside at a random moment, usually in the middle of a batch.
            server.start()
            timer = threading.Timer(rng.uniform(0.05, 0.6), server.kill)
            timer.start()
            send_batches()
            timer.join()
            kills["external"] += 1
            server.kill()

    during = next_cmd
    # The end: no kill point; everything acknowledged.
    assert server.start(), "final start failed"
    if not send_batches():
        raise RuntimeError("the final run did not acknowledge everything")
    total = sum(kills.values())
    print(f"crash loop: {a.cycles} cycles, {total} kills ({json.dumps(kills)}); "
          f"{during} of {len(commands)} commands acknowledged during the kills, the rest after; "
          f"{time.time() - t0:.1f} s")
    if disk or a.damage:
        print(f"storage phases: {json.dumps(phases)}")
    for msg, n in sorted(refusals.items(), key=lambda kv: -kv[1])[:4]:
        print(f"  {n} x UNAVAILABLE: {msg}...")

    # 1-3: the log, read back through every lead's timeline, holds the acknowledged events
    # exactly once.
    seen = {}
    for email, lid in lead_ids.items():
        tl = json.loads(ctl(a.leadctl, server.addr, "--json", "timeline", lid).stdout)
        for e in tl.get("events", []):
            if e["event_id"] in seen:
                raise RuntimeError(f"event {e['event_id']} appears twice")
            seen[e["event_id"]] = e.get("command_id", "")
    want = {eid: cid for cid, ids in acked.items() for eid in ids}
    missing = set(want) - set(seen)
    extra = set(seen) - set(want)
    if missing or extra:
        raise RuntimeError(f"log differs from the acknowledgements: {len(missing)} missing, "
                           f"{len(extra)} unexpected (e.g. {sorted(missing or extra)[:3]})")
    for eid, cid in want.items():
        if seen[eid] != cid:
            raise RuntimeError(f"event {eid}: command {seen[eid]}, acknowledged for {cid}")
    print(f"ok: the log holds the {len(want)} acknowledged events exactly once, nothing else")

    # 4: the oracle's final states.
    wrong = []
    for email, status in expected.items():
        got = json.loads(ctl(a.leadctl, server.addr, "--json", "get", lead_ids[email]).stdout)
        if got["status"] != status:
            wrong.append((email, status, got["status"]))
    if wrong:
        raise RuntimeError(f"{len(wrong)} leads not in the expected state, e.g. {wrong[:3]}")
    print(f"ok: all {len(expected)} leads are in the state the oracle expects")

    # 5: views equal a rebuild from offset zero.
    def snapshot():
        out = []
        for args in (["list", "--limit", "1000"],
                     ["funnel", "cohort", "--from", "2026-01-01", "--to", "2026-03-01"],
                     ["funnel", "cohort", "--from", "2026-01-01", "--to", "2026-03-01", "--split",
                      "owner"],
                     ["pipeline", "--split", "owner"],
                     ["exit-reasons", "--from", "2026-01-01", "--to", "2026-06-01"],
                     ["queue", "--as-of", "2027-01-01", "--limit", "1000"],
                     ["customers", "--owner", "ann"]):
            out.append(ctl(a.leadctl, server.addr, "--json", *args).stdout)
        return "".join(out)
    live = snapshot()
    server.stop()
    r = subprocess.run([a.leadflow, "rebuild", "--data-dir", data, "--partitions", "4"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"final rebuild failed: {r.stderr}")
    assert server.start()
    rebuilt = snapshot()
    server.stop()
    if live != rebuilt:
        raise RuntimeError("views differ from views rebuilt from offset zero")
    print(f"ok: views equal a rebuild from offset zero ({len(live)} bytes of answers)")
    if disk:
        subprocess.run(["umount", disk], capture_output=True)
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"FAIL: {e}")
        sys.exit(1)
