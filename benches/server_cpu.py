#!/usr/bin/env python3
"""What each server spends of the CPU per exchange, beside what it achieves: paired rounds of the
same load against each server in its own process (the C10K bench's child), reading the server
process's own CPU time (`/proc/PID/stat`: user + system, its threads together, exited ones
included) before and after the load. Chapter 12 uses it where throughput alone cannot decide:
two servers level on connections per second can still differ in the work they do for each.

    cargo build --release --example stress_client
    cargo bench --bench c10k --no-run      # prints the path of the c10k binary
    python3 benches/server_cpu.py --exe target/release/deps/c10k-HASH [--rounds 11]

The servers: the thread engine; the events engine; the events engine with no drain
(`C10K_DRAIN=0`: it closes as soon as it has replied, as tokio's baseline does); tokio with
PROTOCOL.md's graceful close (`C10K_DRAIN=1`: shut down writing, read the client's input away);
and the tokio baseline. Between them they price the graceful close on both event loops. Each round runs every server
once, in a rotated order, a fresh process each time; every ratio is taken within a round, against
tokio, and the table gives the median over the rounds (and the smallest and largest). The client
(`stress_client`) is one more process, so its CPU is not counted. Loopback only, port 0.
"""

import argparse
import os
import statistics

import c10k_child

# Name: (C10K_SERVER, extra environment). The last is the baseline of every ratio.
SERVERS = {
    "thread": ("thread", {}),
    "events": ("events", {}),
    "events, no drain": ("events", {"C10K_DRAIN": "0"}),
    "tokio, drained": ("tokio", {"C10K_DRAIN": "1"}),
    "tokio": ("tokio", {}),
}
BASELINE = "tokio"
# The greet servers priced with and without the graceful close; echo closes once per connection,
# after hundreds of lines, so its close is not what an echo exchange costs.
DRAIN_VARIANTS = {"events, no drain", "tokio, drained"}
# MODE, CLIENTS, MESSAGES: greet makes CLIENTS x MESSAGES connections; echo sends that many lines.
LOADS = [("greet", 20, 1000), ("greet", 100, 200), ("echo", 100, 500)]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system time of process `pid`, all its threads (fields 14 and 15 of its stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def one_run(exe, stress, server, extra, mode, clients, messages):
    """(exchanges per second, server CPU microseconds per exchange) of one fresh server."""
    with c10k_child.serving([exe], server, mode, extra) as (proc, port):
        before = cpu_seconds(proc.pid)
        summary = c10k_child.load(stress, port, mode, clients, messages)
        spent = cpu_seconds(proc.pid) - before
    rate = summary["conn_per_s"] if mode == "greet" else summary["msg_per_s"]
    return rate, spent / (clients * messages) * 1e6


def spread(values):
    """Median and range, as the table shows them."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exe", required=True, help="the c10k bench binary")
    parser.add_argument("--stress", default="target/release/examples/stress_client")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    lines = ["| load | server | CPU µs per exchange | CPU ÷ tokio | rate ÷ tokio "
             "| rate ÷ tokio, drained |", "|---|---|---:|---:|---:|---:|"]
    for mode, clients, messages in LOADS:
        names = [n for n in SERVERS if mode == "greet" or n not in DRAIN_VARIANTS]
        runs = {name: [] for name in names}
        for r in range(args.rounds):
            # Rotate who goes first, so a drift within a round hits everyone alike.
            for name in names[r % len(names):] + names[:r % len(names)]:
                server, extra = SERVERS[name]
                runs[name].append(one_run(args.exe, args.stress, server, extra, mode, clients,
                                          messages))
        base, drained = runs[BASELINE], runs.get("tokio, drained")
        for name in names:
            cpu = [c for _, c in runs[name]]
            cells = [f"{statistics.median(cpu):.1f}"]
            if name == BASELINE:
                cells += ["1", "1"]
            else:
                cells.append(spread([c / b for (_, c), (_, b) in zip(runs[name], base)]))
                cells.append(spread([r / b for (r, _), (b, _) in zip(runs[name], base)]))
            if drained is None:
                cells.append("–")
            elif name == "tokio, drained":
                cells.append("1")
            else:
                cells.append(spread([r / b for (r, _), (b, _) in zip(runs[name], drained)]))
            lines.append(f"| {mode} {clients} | {name} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    print(f"\n{args.rounds} paired rounds; each cell but the CPU time is the median of the "
          "per-round ratios (smallest–largest in brackets).")


if __name__ == "__main__":
    main()
