#!/usr/bin/env python3
"""Static checks of leadflow's own sources (services/ and projections/), run by ctest (label lint).

  thread-safety  clang++ -fsyntax-only -Wthread-safety -Werror=thread-safety on each translation
                 unit with the flags CMake recorded for it (BUILD_DIR/compile_commands.json), so
                 the GUARDED_BY / REQUIRES annotations are enforced; also fails if more than two
                 NO_THREAD_SAFETY_ANALYSIS remain or one lacks a comment saying why.
  tidy           clang-tidy with the repository's .clang-tidy (bugprone-*, performance-*, the
                 naming rules of the shared style, and clang's thread-safety analysis in the same
                 pass); any finding fails, and so do the opt-out rules above. This is what ctest
                 runs (lint.tidy): one parse per file for both analyses.
  format         clang-format --dry-run -Werror with the repository's .clang-format over every
                 C++ file of services/, projections/, tools/ and tests/.

Usage: tools/lint.py {thread-safety|tidy|format} BUILD_DIR [FILE...]
Each exits non-zero on a finding and prints it as file:line:column: message.
"""
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ("services/", "projections/")
MAX_OPT_OUTS = 2


def commands(build_dir, only, tool):
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        entries = json.load(f)
    for e in entries:
        rel = os.path.relpath(e["file"], ROOT)
        if not rel.startswith(DIRS) or rel.endswith("_test.cc") or "/gen/" in rel:
            continue
        if only and rel not in only:
            continue
        if tool == "tidy":
            yield rel, ROOT, ["clang-tidy", "-p", build_dir, "--quiet", os.path.join(ROOT, rel)]
            continue
        args = shlex.split(e["command"])[1:]
        flags, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a == "-o":
                skip = True
                continue
            if a == "-c" or a.startswith("-flto") or a.startswith("-fno-fat-lto"):
                continue
            flags.append(a)
        yield rel, e["directory"], ["clang++", "-fsyntax-only", "-Wthread-safety",
                                    "-Werror=thread-safety", "-Wno-unknown-warning-option"] + flags


def check(job):
    rel, cwd, cmd = job
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    findings = [l for l in out.splitlines()
                if "thread-safety" in l or ": error:" in l or ": warning:" in l]
    return rel, p.returncode, findings


def opt_outs():
    found = []
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for name in files:
                if not name.endswith((".cc", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    lines = f.read().splitlines()
                for i, line in enumerate(lines):
                    if "NO_THREAD_SAFETY_ANALYSIS" in line and not line.lstrip().startswith("//"):
                        found.append((os.path.relpath(path, ROOT), i + 1, lines))
    return found


def format_check(only):
    files = []
    for d in ("services", "projections", "tools", "tests"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)
                if name.endswith((".cc", ".h")) and (not only or rel in only):
                    files.append(rel)
    p = subprocess.run(["clang-format", "--dry-run", "-Werror", "--style=file"] + sorted(files),
                       cwd=ROOT, capture_output=True, text=True)
    findings = sorted({l.split(": error:")[0] for l in p.stderr.splitlines() if ": error:" in l})
    for f in findings:
        print(f + ": not formatted (clang-format -i --style=file " + f.split(":")[0] + ")")
    print(f"format: {len(files)} files, {len(findings)} places not formatted")
    return 1 if p.returncode != 0 or findings else 0


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("thread-safety", "tidy", "format"):
        print(__doc__)
        return 2
    tool, build_dir = sys.argv[1], sys.argv[2]
    only = set(sys.argv[3:])
    if tool == "format":
        return format_check(only)
    jobs = list(commands(build_dir, only, tool))
    if not jobs:
        print(tool + ": no translation units found in", build_dir)
        return 2
    failed = 0
    with ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as pool:
        for rel, rc, findings in pool.map(check, jobs):
            if rc != 0 or findings:
                failed += 1
                print("\n".join(findings) or f"{rel}: clang++ failed ({rc})")
    # The opt-outs: each with a comment above it in the file saying why.
    sites = opt_outs()
    if len(sites) > MAX_OPT_OUTS:
        failed += 1
        print(f"thread-safety: {len(sites)} NO_THREAD_SAFETY_ANALYSIS (at most {MAX_OPT_OUTS}): "
              + ", ".join(f"{f}:{l}" for f, l, _ in sites))
    for rel, line, lines in sites:
        above = lines[max(0, line - 4):line - 1]
        if not any(re.search(r"analysis", l) for l in above if l.strip().startswith("//")):
            failed += 1
            print(f"{rel}:{line}: NO_THREAD_SAFETY_ANALYSIS without a comment on why the "
                  "analysis cannot see the lock")
    print(f"{tool}: {len(jobs)} translation units, "
          f"{len(sites)} opt-outs, "
          f"{'FAILED' if failed else 'clean'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
