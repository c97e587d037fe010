"""A minimal SMTP receiver for the path lab: greets with its name, answers EHLO and QUIT.

    python pathserve.py NAME ADDRESS:PORT [ADDRESS:PORT ...]

One thread per listener, one connection at a time each (the path lab's probes are few);
no STARTTLS is offered. Only the lab runs it, inside its own namespace.
"""

from __future__ import annotations

import socket
import sys
import threading


def serve(name: str, address: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=talk, args=(conn, name), daemon=True).start()


def talk(conn: socket.socket, name: str) -> None:
    conn.settimeout(10)
    try:
        conn.sendall(f"220 {name} ESMTP path lab\r\n".encode())
        buffer = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buffer += data
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(f"250-{name} Hello\r\n250 SIZE 10240000\r\n".encode())
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")
    except OSError:
        return
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    name, endpoints = argv[0], argv[1:]
    for endpoint in endpoints:
        address, _, port = endpoint.rpartition(":")
        threading.Thread(
            target=serve, args=(name, address.strip("[]"), int(port)), daemon=True
        ).start()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
