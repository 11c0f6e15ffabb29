#!/usr/bin/env python3
"""Paired rounds across server *processes*: the same load against several server binaries,
interleaved, a fresh server process for every run, and the ratio of each server to the first
taken within each round (then the median over rounds).

Why processes: `benches/server.rs` runs its servers inside the bench process, which cannot hold
two versions of this crate or a server started exactly as a user starts it (console included).
This script compares whole binaries: this commit's `server` example against an older build, or
engines against each other, with the load generator (`stress_client`) as a separate process.
Everything runs on 127.0.0.1 with port 0.

    cargo build --release --example server --example stress_client
    python3 benches/paired_processes.py \\
        --server before=/path/to/old/target/release/examples/server \\
        --server after=target/release/examples/server \\
        --load greet:100:20 --load echo:100:100 --rounds 7

A load is MODE:CLIENTS:MESSAGES (greet: each client makes MESSAGES connections; echo: each client
sends MESSAGES lines). A server may carry extra arguments after a space, quoted:
`--server "events=target/release/examples/server --engine events"`. The first server is the
baseline of every ratio. The rate is `conn_per_s` for greet and `msg_per_s` for echo, from the
stress client's `--json` line.
"""

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys


def start(cmd, mode):
    args = shlex.split(cmd) + ["--mode", mode, "--addr", "127.0.0.1:0"]
    # RUST_LOG unset: the console's default filter, as a user runs it; its per-client lines
    # go to a pipe we drain, like a terminal would take them.
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    line = proc.stdout.readline()
    port = line.strip().rstrip(".").split(":")[-1].split()[-1]
    if not port.isdigit():
        proc.kill()
        sys.exit(f"cannot read the port from {line!r} ({cmd})")
    # Keep reading stdout in the background so the server never blocks on a full pipe.
    drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    return proc, drain, int(port)


def stop(proc, drain):
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    drain.wait()


def run_load(stress, port, mode, clients, messages):
    out = subprocess.run(
        [stress, "--addr", f"127.0.0.1:{port}", "--mode", mode, "--clients", str(clients),
         "--messages", str(messages), "--timeout", "20", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["failed"]:
        sys.exit(f"{result['failed']} clients failed against port {port}: {out.stdout}")
    return result["conn_per_s"] if mode == "greet" else result["msg_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", required=True, metavar="NAME=CMD")
    parser.add_argument("--load", action="append", required=True, metavar="MODE:CLIENTS:MESSAGES")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stress", default="target/release/examples/stress_client")
    args = parser.parse_args()
    servers = [s.split("=", 1) for s in args.server]
    base = servers[0][0]
    print(f"paired rounds: {args.rounds}, baseline {base}, median of per-round ratios")
    for load in args.load:
        mode, clients, messages = load.split(":")
        rates = {name: [] for name, _ in servers}
        for r in range(args.rounds):
            # Rotate who goes first, so a drift within a round hits everyone alike.
            order = servers[r % len(servers):] + servers[: r % len(servers)]
            for name, cmd in order:
                proc, drain, port = start(cmd, mode)
                try:
                    rates[name].append(run_load(args.stress, port, mode, int(clients),
                                                int(messages)))
                finally:
                    stop(proc, drain)
        cells = []
        for name, _ in servers:
            ratios = [x / b for x, b in zip(rates[name], rates[base])]
            cells.append(f"{name} {statistics.median(rates[name]):9.0f}/s "
                         f"(x{statistics.median(ratios):.3f}, "
                         f"{min(ratios):.2f}-{max(ratios):.2f})")
        print(f"{load:>16}: " + "  ".join(cells))


if __name__ == "__main__":
    main()
