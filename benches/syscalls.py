#!/usr/bin/env python3
"""What each server asks of the kernel per exchange: `strace -f -c` on a server in its own
process (the C10K bench's child: `C10K_SERVER=thread|events|tokio`, `C10K_MODE=greet|echo`),
loaded by the stress client, minus the same server started and stopped with no load (its
start-up and shutdown calls). Chapter 12 uses it to show where an event loop can and cannot
beat tokio: once both make the same calls, the kernel's work is the race.

    cargo build --release --example stress_client
    cargo bench --bench c10k --no-run      # prints the path of the c10k binary
    python3 benches/syscalls.py --exe target/release/deps/c10k-HASH

Prints one Markdown table per mode: the calls per exchange (a greet connection, or an echo
line), failed ones (mostly `EAGAIN`) in brackets. Needs `strace`. Loopback only, port 0.
"""

import argparse
import os
import re
import tempfile

import c10k_child

SERVERS = ["thread", "events", "tokio"]
# MODE: (clients, messages): greet makes clients x messages connections; echo sends that many lines.
LOADS = {"greet": (100, 20), "echo": (20, 200)}
# Calls below this many per exchange are start-up noise left after the subtraction.
SHOWN = 0.05
# What starting and ending a thread costs (std's spawn, glibc's stack, the thread's own set-up):
# one row in the table, so the calls that serve the connection stand out.
THREAD_LIFE = {"clone3", "mmap", "mprotect", "munmap", "madvise", "sigaltstack", "rt_sigprocmask",
               "prctl", "sched_getaffinity", "set_robust_list", "rseq", "gettid"}
THREAD_ROW = "a thread's start and end"


def strace_counts(exe, server, mode, stress, load):
    """{syscall: (calls, errors)} of one server process, loaded with `load` or not at all."""
    with tempfile.NamedTemporaryFile(suffix=".strace", delete=False) as f:
        out = f.name
    with c10k_child.serving(["strace", "-f", "-c", "-o", out, exe], server, mode) as (_, port):
        if load:
            c10k_child.load(stress, port, mode, *load)
    counts = {}
    with open(out) as f:
        for row in f:
            m = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$", row)
            if m and m.group(3) != "total":
                counts[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    os.unlink(out)
    return counts


def per_exchange(exe, server, mode, stress):
    load = LOADS[mode]
    loaded = strace_counts(exe, server, mode, stress, load)
    idle = strace_counts(exe, server, mode, stress, None)
    exchanges = load[0] * load[1]
    result = {}
    for name, (calls, errors) in loaded.items():
        calls = (calls - idle.get(name, (0, 0))[0]) / exchanges
        errors = (errors - idle.get(name, (0, 0))[1]) / exchanges
        if calls < SHOWN:
            continue
        row = THREAD_ROW if name in THREAD_LIFE else name
        before = result.get(row, (0, 0))
        result[row] = (before[0] + calls, before[1] + errors)
    return result


def table(mode, results):
    names = sorted({n for r in results.values() for n, (c, _) in r.items() if c >= SHOWN},
                   key=lambda n: -max(r.get(n, (0, 0))[0] for r in results.values()))
    what = "connection" if mode == "greet" else "line"
    clients, messages = LOADS[mode]
    lines = [f"**{mode}** ({clients} clients × {messages}; calls per {what})", "",
             "| system call | " + " | ".join(SERVERS) + " |",
             "|---|" + "---:|" * len(SERVERS)]

    def cell(calls, errors):
        if calls < SHOWN:
            return "–"
        return f"{calls:.2f}" + (f" ({errors:.2f})" if errors >= SHOWN else "")
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(*results[s].get(name, (0, 0)))
                                                  for s in SERVERS) + " |")
    totals = [sum(c for c, _ in results[s].values()) for s in SERVERS]
    lines.append("| **all** | " + " | ".join(f"**{t:.2f}**" for t in totals) + " |")
    if any(THREAD_ROW in r for r in results.values()):
        lines += ["", f"*{THREAD_ROW.capitalize()}*: " + ", ".join(sorted(THREAD_LIFE)) + "."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exe", required=True, help="the c10k bench binary")
    parser.add_argument("--stress", default="target/release/examples/stress_client")
    args = parser.parse_args()
    tables = []
    for mode in LOADS:
        results = {s: per_exchange(args.exe, s, mode, args.stress) for s in SERVERS}
        tables.append(table(mode, results))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
