# Seed 001's stress client, with its elided parts filled in: 20 threads, each connects,
# sends "Hello" as one line, prints the reply line, disconnects. Written for
# tests/server_interop.rs, which rewrites PORT to the test server's port.
import socket
import threading

HOST = "127.0.0.1"
PORT = 5000

print_lock = threading.Lock()


def one_client(cid: int):
    # Connect, send "Hello", print reply, disconnect
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((HOST, PORT))
        s.sendall(b"Hello\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            reply += chunk
        with print_lock:
            print(f"Client {cid}: {reply.decode('utf-8').rstrip(chr(10))}", flush=True)


def main():
    N = 20
    threads = []
    for i in range(N):
        t = threading.Thread(target=one_client, args=(i,))
        t.start()
        threads.append(t)

    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
