"""Two greet clients against a step server, to see whether the second waits for the first.

Client A connects and stays silent for two seconds. Client B connects just after A and sends
its message at once. Each line is stamped with the seconds since B sent.

    python3 book/tools/silent_first_client.py PORT

Used in chapters 2 and 3 of the book; loopback only.
"""

import socket
import sys
import threading
import time

port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port))
time.sleep(0.2)  # let the server accept A first
b = socket.create_connection(("127.0.0.1", port))
start = time.monotonic()


def say(text):
    print(f"{time.monotonic() - start:4.1f} s  {text}", flush=True)


b.sendall(b"Hello, Server!")
say("B sent its message")


def b_waits():
    say(f"B: Server replied: {b.recv(1024).decode()}")


waiter = threading.Thread(target=b_waits)
waiter.start()
time.sleep(2)
say("A sends its message")
a.sendall(b"I am A")
say(f"A: Server replied: {a.recv(1024).decode()}")
waiter.join()
