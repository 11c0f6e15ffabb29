"""An echo client that sends one line and then only reads, to watch a graceful shutdown.

    python3 book/tools/hello_then_read.py PORT

It sends `hello`, then prints everything the server sends until the server closes the
connection (an empty read). Used in chapter 10 of the book; loopback only.
"""

import socket
import sys

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port)) as s:
    s.sendall(b"hello\n")
    while True:
        data = s.recv(1024)
        print(f"client got: {data!r}", flush=True)
        if not data:
            break
