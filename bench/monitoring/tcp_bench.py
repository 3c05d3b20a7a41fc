"""The two ends of the port-forward benchmark (bench/monitoring/port_forward.sh).

  tcp_bench.py serve PORT        a server: for each connection reads one line
                                 "get N" (sends N bytes) or "put N" (reads N bytes, answers
                                 "ok\\n"); threads, so connections run at once
  tcp_bench.py get|put HOST PORT BYTES
                                 one transfer; prints the MiB/s of the whole exchange
"""
import socket
import sys
import threading
import time

CHUNK = 1 << 20
BLOB = memoryview(bytes(range(256)) * (CHUNK // 256))


def handle(conn):
    with conn:
        f = conn.makefile("rb")
        line = f.readline().decode().split()
        if len(line) != 2:
            return
        op, n = line[0], int(line[1])
        if op == "get":
            left = n
            while left > 0:
                k = min(left, CHUNK)
                conn.sendall(BLOB[:k])
                left -= k
        elif op == "put":
            left = n
            while left > 0:
                data = f.read1(min(left, CHUNK))
                if not data:
                    return
                left -= len(data)
            conn.sendall(b"ok\n")


def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def client(op, host, port, n):
    s = socket.create_connection((host, port))
    start = time.monotonic()
    s.sendall(f"{op} {n}\n".encode())
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    if op == "get":
        left = n
        while left > 0:
            k = s.recv_into(view, min(left, CHUNK))
            if k == 0:
                raise SystemExit(f"short read: {n - left} of {n} bytes")
            left -= k
    else:
        left = n
        while left > 0:
            k = min(left, CHUNK)
            s.sendall(BLOB[:k])
            left -= k
        if s.recv(3) != b"ok\n":
            raise SystemExit("no ok after put")
    took = time.monotonic() - start
    s.close()
    print(f"{n / took / (1 << 20):.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        client(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
