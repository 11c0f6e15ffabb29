#!/usr/bin/env python3
"""Chapter 10's "A real run", done by a script: an echo server, one client, then Ctrl-C.

    python3 book/tools/shutdown_run.py

Does what a reader does by hand in two terminals, and prints it as one transcript:

1. `cargo build --example server`, first and on its own: a signal that arrives while cargo is
   still compiling stops the build, not the server (on a fresh checkout the build takes a while).
2. `cargo run -q --example server -- --mode echo --addr 127.0.0.1:0`, and read the port it prints.
3. `python3 book/tools/hello_then_read.py PORT` in the background: it sends `hello` and reads.
4. Once the client has its reply, SIGINT to the server, which is what Ctrl-C sends. (`cargo run`
   on Unix replaces itself with the program, so the signal reaches the server.)
5. Wait for both, and print what each said and the server's exit code.

`book/tools/gen_tables.py shutdown` saves the transcript for the book.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = ["cargo", "run", "-q", "--example", "server", "--", "--mode", "echo", "--addr",
          "127.0.0.1:0"]


def main():
    build = subprocess.run(["cargo", "build", "-q", "--example", "server"], cwd=ROOT)
    if build.returncode != 0:
        sys.exit("shutdown_run.py: the build failed")
    server = subprocess.Popen(SERVER, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    first = server.stdout.readline()
    port = int(first.rsplit(":", 1)[1])
    client = subprocess.Popen([sys.executable, str(ROOT / "book/tools/hello_then_read.py"),
                               str(port)], stdout=subprocess.PIPE, text=True)
    got = client.stdout.readline()  # the echo of `hello`: the server is serving it
    time.sleep(0.5)  # the client now waits for input, as a real idle client would
    server.send_signal(signal.SIGINT)
    rest, _ = server.communicate(timeout=30)
    client_rest, _ = client.communicate(timeout=30)
    print("$ cargo build --example server")
    print("$ cargo run -q --example server -- --mode echo --addr 127.0.0.1:0")
    print(first + rest, end="")
    print(f"(Ctrl-C; the server exited with code {server.returncode})")
    print()
    print(f"$ python3 book/tools/hello_then_read.py {port}")
    print(got + client_rest, end="")


if __name__ == "__main__":
    main()
