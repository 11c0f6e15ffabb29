import socket
import threading
from datetime import datetime

HOST = "127.0.0.1"
PORT = 5000

def handle_client(conn, addr):
    # This runs in its own thread
    print(f"[+] Connected: {addr}")
    with conn:
        while True:
            data = conn.recv(1024)
            if not data: break
            # Process message and reply
            msg = data.decode("utf-8").strip()
            reply = f"[{datetime.now()}] Server got '{msg}'\n"
            conn.sendall(reply.encode("utf-8"))
    print(f"[-] Disconnected: {addr}")

def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, PORT))
    s.listen()
    print(f"Server listening on {HOST}:{PORT}")
    
    while True:
        conn, addr = s.accept()
        # SPAWN A NEW THREAD HERE
        threading.Thread(target=handle_client, args=(conn, addr), daemon=True).start()

if __name__ == "__main__":
    main()
