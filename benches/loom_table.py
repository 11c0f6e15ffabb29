#!/usr/bin/env python3
"""Collects what the loom models cost into the Markdown table the book shows.

    python3 benches/loom_table.py --run            # runs the loom tests, then prints the table
    RUSTFLAGS="--cfg loom" cargo test --release --test 'loom_*' -- --nocapture 2>&1 \
        | python3 benches/loom_table.py            # or reads their output from stdin

The loom tests (`tests/support/loom_check.rs`) print one line per model with `--nocapture`:

    loom model NAME: N interleavings, T s, preemption bound B     (or: exhaustive)
    loom model NAME: bug found as expected: MESSAGE

`--run` uses a target directory of its own (`$CARGO_TARGET_DIR-loom`, default `target/loom`) so
the `--cfg loom` build does not throw away the normal one. Only the standard library is used.
"""

import os
import re
import subprocess
import sys

COST = re.compile(r"loom model (?P<name>.+?): (?P<n>\d+) interleavings, (?P<t>[\d.]+) s, "
                  r"(?P<bound>.+)$")
BUG = re.compile(r"loom model (?P<name>.+?): bug found as expected: (?P<msg>.*)$")


def collect(lines):
    """Rows in first-seen order: name -> dict(interleavings, seconds, bound, result)."""
    rows = {}
    for line in lines:
        line = line.rstrip("\n")
        m = COST.search(line)
        if m:
            rows[m["name"]] = {
                "interleavings": int(m["n"]), "seconds": float(m["t"]),
                "bound": m["bound"].strip(), "result": "passes",
            }
            continue
        m = BUG.search(line)
        if m:
            row = rows.setdefault(m["name"], {"interleavings": None, "seconds": None,
                                              "bound": "", "result": ""})
            msg = m["msg"].strip() or "failure"
            # Keep loom's headline, not the thread dump after it.
            msg = msg.split("; threads")[0].split(": [")[0]
            if len(msg) > 70:
                msg = msg[:69] + "…"
            row["result"] = "bug caught: " + msg.replace("|", "\\|")
    return rows


def table(rows):
    out = ["| model | interleavings | time (s) | per interleaving (µs) | bound | result |",
           "|---|---:|---:|---:|---|---|"]
    for name, r in rows.items():
        n, t = r["interleavings"], r["seconds"]
        per = f"{t / n * 1e6:.0f}" if n and t else "–"
        if t is None:
            time = "–"
        elif t == 0:
            time = "< 0.001"
        else:
            time = f"{t:.3f}"
        out.append(f"| `{name}` | {n if n is not None else '–'} | {time} | {per} | "
                   f"{r['bound'] or '–'} | {r['result']} |")
    return "\n".join(out) + "\n"


def run_tests():
    env = dict(os.environ)
    env["RUSTFLAGS"] = (env.get("RUSTFLAGS", "") + " --cfg loom").strip()
    base = env.get("CARGO_TARGET_DIR", "target")
    env["CARGO_TARGET_DIR"] = base + "-loom" if "CARGO_TARGET_DIR" in os.environ else "target/loom"
    cmd = ["cargo", "test", "--release", "--test", "loom_*", "--", "--nocapture"]
    print("running: RUSTFLAGS='--cfg loom' " + " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        print(f"loom_table.py: the loom tests failed (exit {proc.returncode})", file=sys.stderr)
    return proc.stdout.splitlines(), proc.returncode


def main(argv):
    code = 0
    if "--run" in argv:
        lines, code = run_tests()
    else:
        lines = sys.stdin.readlines()
    rows = collect(lines)
    if not rows:
        sys.exit("loom_table.py: no `loom model` lines found (did the tests run with --nocapture?)")
    sys.stdout.write(table(rows))
    return 1 if code else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
