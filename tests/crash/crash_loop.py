#!/usr/bin/env python3
"""Crash loop with an expected-state oracle (docs/reliability.md).

A client drives a generated sales history through `leadflow serve` in batches while the server
is SIGKILLed again and again: at named kill points compiled into test builds (before and after the
writer's durable append, before and after a view's rows + offset commit), at random moments from
outside, and in the middle of `leadflow rebuild`. After every crash the server is restarted and
the client re-sends every batch that was not acknowledged, with the same command ids.

At the end it checks:
  1. every command was acknowledged (none refused: the history is valid);
  2. the log holds every acknowledged event exactly once and nothing else (read back through
     every lead's timeline: event ids and command ids);
  3. a command acknowledged twice (the retry of a batch whose first attempt was applied before
     the crash) got the same event ids both times;
  4. every lead's final status equals the oracle's (what the generator scripted);
  5. the views answer exactly as views rebuilt from offset zero (lead, funnel, reprocessing).

Usage: crash_loop.py LEADFLOW LEADCTL [--cycles N] [--leads N] [--seed N] [--workdir DIR]
"""
import argparse
import json
import os
import random
import re
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
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = a.workdir or tempfile.mkdtemp(prefix="leadflow-crash-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    shutil.rmtree(data, ignore_errors=True)
    server = Server(a.leadflow, data, os.path.join(work, "serve.log"))
    commands, expected = history(a.leads, a.seed)
    lead_ids = {}  # email -> lead id (from the capture's reply)
    acked = {}  # command id -> event ids
    next_cmd = 0
    kills = {"external": 0, "rebuild": 0, "start-up": 0, **{k: 0 for k in KILL_POINTS}}
    t0 = time.time()

    def resolve(c):
        (kind, body), = c.items()
        body = json.loads(json.dumps(body))
        ref = body.pop("lead", None)
        if ref is not None:
            body["lead_id"] = lead_ids[ref["email"]]
        return {kind: body}

    def send_batches():
        """Sends batches until all are acknowledged or the server dies. True if all done."""
        nonlocal next_cmd
        while next_cmd < len(commands):
            chunk = []
            for c in commands[next_cmd:next_cmd + a.batch]:
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
            if r.returncode != 0:
                raise RuntimeError(f"batch refused (rc {r.returncode}): {r.stdout}{r.stderr}")
            rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
            if len(rows) != len(chunk):
                raise RuntimeError(f"{len(rows)} results for {len(chunk)} commands")
            for c, row in zip(chunk, rows):
                if row["code"] != 0:
                    raise RuntimeError(f"refused: {row}")
                cid = row["command_id"]
                ids = row.get("event_ids", [])
                if cid in acked and acked[cid] != ids:
                    raise RuntimeError(f"{cid} acknowledged twice with different events: "
                                       f"{acked[cid]} then {ids}")
                acked[cid] = ids
                (kind, body), = c.items()
                if kind == "capture_lead":
                    lead_ids[body["email"]] = row["lead_id"]
            next_cmd += len(chunk)
        return True

    for cycle in range(a.cycles):
        mode = rng.random()
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
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"FAIL: {e}")
        sys.exit(1)
