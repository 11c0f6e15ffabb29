"""The C10K bench's child as a server for the scripts beside it (`syscalls.py`,
`server_cpu.py`): start one server in its own process, learn its port, load it with the stress
client, stop it. The child (`benches/c10k.rs`, re-run with `C10K_SERVER` set) prints
`port N`, serves on 127.0.0.1, and holds until its stdin closes."""

import contextlib
import json
import os
import subprocess
import sys


@contextlib.contextmanager
def serving(cmd, server, mode, extra=None):
    """Runs `cmd` (the child, or a wrapper around it such as strace) serving `server` in `mode`
    with `extra` environment; yields (process, port) and stops it on the way out."""
    env = dict(os.environ, C10K_SERVER=server, C10K_MODE=mode, C10K_CLIENTS="500",
               **(extra or {}))
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        port = line.strip().removeprefix("port ")
        if not port.isdigit():
            sys.exit(f"{server} {mode}: no port in {line!r}")
        yield proc, int(port)
    finally:
        proc.stdin.close()  # the child holds until its stdin closes
        proc.wait(timeout=60)


def load(stress, port, mode, clients, messages):
    """Runs the stress client against `port`; its summary, or exit if a client failed."""
    report = subprocess.run(
        [stress, "--addr", f"127.0.0.1:{port}", "--mode", mode, "--clients", str(clients),
         "--messages", str(messages), "--json"],
        stdout=subprocess.PIPE, text=True, check=True, timeout=300)
    summary = json.loads(report.stdout.strip().splitlines()[-1])
    if summary["failed"]:
        sys.exit(f"port {port} {mode}: {summary['failed']} clients failed")
    return summary
