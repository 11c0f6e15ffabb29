"""Twenty greet clients at once, like seed 001's stress test, against a step server.

    python3 book/tools/twenty_clients.py PORT

Prints how many distinct ids the replies carried. Used in chapter 4 of the book; loopback only.
"""

import socket
import sys
import threading

port = int(sys.argv[1])
replies = []


def one_client(n):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"Hello from client {n}".encode())
        replies.append(s.recv(1024).decode())


threads = [threading.Thread(target=one_client, args=(n,)) for n in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ids = {r.split(",")[0] for r in replies}
print(f"{len(replies)} replies, {len(ids)} distinct ids")
