#!/usr/bin/env python3
"""Writes book/src/generated/loom-vs-shuttle.md, chapter 6.1's table: for each
buggy variant, how many interleavings loom tried before it failed, how many it
needs to exhaust the sound version of the same model, and how many schedules
Shuttle's PCT and random schedulers took to find the bug (median over seeds).

Every number comes from the tests' own output: it runs

    cargo loom -- --nocapture --test-threads=1
    cargo shuttle caught -- --nocapture --test-threads=1

parses the lines tests/support/loom_check.rs and tests/support/shuttle_check.rs
print, and fails if one is missing. Loom's counts are deterministic, and
Shuttle's measurements use fixed seeds, so a rerun gives the same table unless
the code (or a tool's version) changed.

Run from anywhere: python3 book/tools/loom_vs_shuttle.py
"""

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "book/src/generated/loom-vs-shuttle.md"

# key printed by shuttle_check::measure -> (bug, where, loom's model of the bug,
# loom's model of the sound version, or None where loom has none).
ROWS = [
    ("racy", "racy counter: lost update", "`src/counter/racy.rs`",
     "racy: 2 concurrent connects", "atomic: 2 concurrent connects"),
    ("check-then-act", "check-then-act limit: overshoot", "`src/limit/buggy.rs`",
     "check-then-act limit, max 1", "limit: try/try/blocking, max 1"),
    ("unlocked-check", "unlocked-check drain: lost wake-up", "`src/shutdown/buggy.rs`",
     "unlocked-check drain: 1 leaving vs wait", None),
    ("if-drain", "`if`-drain: returns early", "`src/shutdown/buggy.rs`",
     "if-drain: 2 leaving vs wait", "drain: 2 leaving vs wait"),
    ("forgetful", "forgetful registry: connection never woken", "`src/registry/buggy.rs`",
     "forgetful registry: 2 registering vs close", "registry: 2 registering vs close"),
    ("racy-server", "racy counter in the whole server (4 greet clients, 10 threads)",
     "`tests/shuttle_server.rs`", None, None),
]


def run(cmd):
    """Runs a cargo command in the repository; returns its stderr+stdout."""
    print("$", " ".join(cmd), file=sys.stderr)
    env = dict(os.environ, RUST_BACKTRACE="0")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode})")
    return done.stderr + done.stdout


def loom_numbers(text):
    exhausted = {m[0]: m[1] for m in re.findall(
        r"^loom model (.+?): (\d+) interleavings, [\d.]+ s, (?:exhaustive|preemption bound \d+)$",
        text, re.M)}
    bounds = {m[0]: m[1] for m in re.findall(
        r"^loom model (.+?): \d+ interleavings, [\d.]+ s, (exhaustive|preemption bound \d+)$",
        text, re.M)}
    failed = dict(re.findall(r"^loom model (.+?): failed in interleaving (\d+)$", text, re.M))
    return exhausted, bounds, failed


def shuttle_numbers(text):
    found = {}
    pattern = (r"^shuttle bug \[(.+?)\] .+?: (PCT depth \d+|random): median (\S+) schedules "
               r"\(min (\S+), max (\S+)\) over (\d+) seeds, found by (\d+) of \d+ within (\d+)")
    for key, sched, median, lo, hi, seeds, hits, cap in re.findall(pattern, text, re.M):
        found[(key, sched.split()[0])] = (median, lo, hi, seeds, hits, cap, sched)
    return found


def number(n):
    """1 234 567 (the book's thin-space-free style: spaces every three digits)."""
    if not n.isdigit():
        return n
    return f"{int(n):,}".replace(",", " ")


def shuttle_cell(entry):
    median, lo, hi, seeds, hits, cap, _ = entry
    if hits != seeds:
        return f"not found by {int(seeds) - int(hits)} of {seeds} seeds in {number(cap)} each"
    return f"{number(median)} ({number(lo)}–{number(hi)})"


def main():
    # The aliases test every target (`--tests`); "caught" picks Shuttle's
    # measuring tests out of all of them.
    loom_cmd = ["cargo", "loom", "--", "--nocapture", "--test-threads=1"]
    shuttle_cmd = ["cargo", "shuttle", "caught", "--", "--nocapture", "--test-threads=1"]
    loom_text, shuttle_text = run(loom_cmd), run(shuttle_cmd)
    # The raw output, for checking a number against the line it came from.
    log = ROOT / "target/loom-vs-shuttle.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(loom_text + shuttle_text)
    exhausted, bounds, failed = loom_numbers(loom_text)
    shuttle = shuttle_numbers(shuttle_text)

    missing = []
    lines = []
    depth = None
    for key, bug, where, loom_bug, loom_sound in ROWS:
        for sched in ("PCT", "random"):
            if (key, sched) not in shuttle:
                missing.append(f"shuttle {key} {sched}")
        if loom_bug and loom_bug not in failed:
            missing.append(f"loom: {loom_bug}")
        if loom_sound and loom_sound not in exhausted:
            missing.append(f"loom: {loom_sound}")
        if missing:
            continue
        depth = shuttle[(key, "PCT")][6]
        if loom_bug:
            to_bug = number(failed[loom_bug])
        else:
            to_bug = "beyond loom: 10 threads, loom's limit is 5"
        if loom_sound:
            bound = bounds[loom_sound]
            note = "" if bound == "exhaustive" else f" (bound {bound.split()[-1]})"
            to_exhaust = number(exhausted[loom_sound]) + note
        else:
            to_exhaust = "—"
        lines.append(f"| {bug} ({where}) | {to_bug} | {to_exhaust} | "
                     f"{shuttle_cell(shuttle[(key, 'PCT')])} | "
                     f"{shuttle_cell(shuttle[(key, 'random')])} |")
    if missing:
        sys.exit("missing from the test output: " + ", ".join(missing))

    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    date = datetime.date.today().isoformat()
    machine = f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()}, {rustc}"
    seeds = shuttle[("racy", "PCT")][3]
    header = (f"*Generated by `python3 book/tools/loom_vs_shuttle.py` on {date}, on {machine}, "
              f"from `{' '.join(loom_cmd)}` and `{' '.join(shuttle_cmd)}`.*")
    table = [
        "<!-- Written by book/tools/loom_vs_shuttle.py: do not edit by hand. -->",
        "",
        header,
        "",
        f"| bug (where) | loom: interleavings until it failed | loom: interleavings to exhaust "
        f"the sound version | Shuttle {depth}: schedules to the bug, median (min–max) of "
        f"{seeds} seeds | Shuttle random: the same |",
        "|---|---|---|---|---|",
    ] + lines
    OUT.write_text("\n".join(table) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
