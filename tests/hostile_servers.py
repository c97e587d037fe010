"""Peers in a background thread, for tests that run the CLI in a subprocess.

The trio peers of ``tests/servers.py`` live inside the test's trio run; a ``portprobe``
subprocess needs a listener that keeps serving while the test waits on the process, so
these run in threads with blocking sockets. Only 127.0.0.1 is ever bound.

:class:`ThreadedPeer` accepts connections and hands each to a *behaviour* (a function of
the connection and its :class:`Session` record) in a thread of its own. Tests wait on
what the peer observed (``wait_for_connections``), never on the clock.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType

LOOPBACK = "127.0.0.1"
#: How long a thread peer waits for the client before giving up: short, so a test that
#: fails does not hang, long enough for a subprocess to start and speak.
PEER_TIMEOUT = 20.0

#: Bytes that drive a terminal when printed raw (see tests/test_hostile.py).
NASTY = b"\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\xe2\x80\xae\xc2\x9b6n\x08\x00\x7f\xff"


@dataclass
class Session:
    """What one connection saw: the command lines received, and in which layer."""

    lines: list[tuple[str, bytes]] = field(default_factory=list)  # ("plain"|"tls", line)
    spoke_early: bool = False  # bytes arrived before the final greeting line was sent
    closed_cleanly: bool = False
    # Called when QUIT arrives, before the 221 goes out (InFlight ends its count there).
    on_quit: Callable[[], None] | None = None

    @property
    def verbs(self) -> list[str]:
        return [
            line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            for _, line in self.lines
        ]


Behaviour = Callable[[socket.socket, Session], None]


class ThreadedPeer:
    """A TCP listener on 127.0.0.1 whose connections are served by ``behaviour``."""

    def __init__(
        self, behaviour: Behaviour, *, host: str = LOOPBACK, port: int = 0, backlog: int = 512
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("test peers listen on 127.0.0.0/8 only")
        self.behaviour = behaviour
        self.host = host
        self.backlog = backlog
        self.port = port
        self.sessions: list[Session] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.sessions)

    def wait_for_connections(self, n: int, timeout: float = PEER_TIMEOUT) -> bool:
        """Block until ``n`` connections were accepted (or ``timeout``); True if they were."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.sessions) >= n, timeout)

    def __enter__(self) -> ThreadedPeer:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((self.host, self.port))
        self._sock.listen(self.backlog)
        self.port = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        accept = threading.Thread(target=self._accept_loop, name="peer-accept", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # unblock every behaviour waiting in recv()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in (self._sock, self._wake_r, self._wake_w, *conns):
            sock.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ, "accept")
            selector.register(self._wake_r, selectors.EVENT_READ, "stop")
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.data == "stop":
                        return
                    conn, _ = self._sock.accept()
                    conn.settimeout(PEER_TIMEOUT)
                    session = Session()
                    with self._lock:
                        self._conns.append(conn)
                        self.sessions.append(session)
                        self._lock.notify_all()
                    worker = threading.Thread(
                        target=self._serve, args=(conn, session), name="peer-conn", daemon=True
                    )
                    worker.start()
                    self._threads.append(worker)

    def _serve(self, conn: socket.socket, session: Session) -> None:
        try:
            self.behaviour(conn, session)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


# --- behaviours ------------------------------------------------------------------------------


def never_speaks(conn: socket.socket, session: Session) -> None:
    """Accept, say nothing, hold the connection until the client (or the test) ends it."""
    while conn.recv(4096):
        pass


class InFlight:
    """Wraps a behaviour to count the connections it serves at once (and the peak)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, session: Session) -> None:
        # A connection counts from its accept until QUIT arrives (or it ends without one).
        # Not until this thread gets round to returning: the client may, correctly, have
        # closed and opened its next connection by then (seen on a loaded machine).
        done = False

        def leave() -> None:
            nonlocal done
            with self._lock:
                if not done:
                    done = True
                    self.current -= 1

        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        session.on_quit = leave
        try:
            self.behaviour(conn, session)
        finally:
            leave()


class LineReader:
    def __init__(self, conn: socket.socket | ssl.SSLSocket) -> None:
        self.conn = conn
        self.buf = b""

    def line(self) -> bytes | None:
        while b"\n" not in self.buf:
            data = self.conn.recv(4096)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"


def _arrived_early(conn: socket.socket) -> bool:
    """Did the client send anything yet? (Non-blocking peek: reads nothing away.)"""
    timeout = conn.gettimeout()
    conn.setblocking(False)  # with a timeout set, recv() would wait for data first
    try:
        return bool(conn.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return False
    finally:
        conn.settimeout(timeout)


@contextlib.contextmanager
def peers_on_many_addresses(
    behaviour: Behaviour, count: int
) -> Iterator[tuple[int, list[ThreadedPeer]]]:
    """``count`` peers on 127.0.0.1 ... 127.0.0.<count>, all on one port (``--port-map``
    maps a role to one port for every target). Yields ``(port, peers)``."""
    for _ in range(20):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(ThreadedPeer(behaviour))
            peers = [first]
            try:
                for i in range(2, count + 1):
                    peer = ThreadedPeer(behaviour, host=f"127.0.0.{i}", port=first.port)
                    peers.append(stack.enter_context(peer))
            except OSError:
                continue  # that port was taken on another address: try another
            yield first.port, peers
            return
    raise RuntimeError("no port free on every address")


@dataclass(frozen=True)
class RecordingSMTP:
    """A raw SMTP server that records every command line and answers only what it must.

    The greeting is multi-line, with ``pause`` seconds before its last line (Postfix
    postscreen style); just before the last line it checks whether the client spoke.
    It advertises AUTH, VRFY-friendly and pipelining capabilities as bait: a client that
    would ever send MAIL, RCPT, DATA, AUTH or VRFY gets every invitation to do so.
    """

    name: bytes = b"rec.test"
    pause: float = 0.3
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this server context
    implicit_tls: ssl.SSLContext | None = None  # TLS first (the 465 role)
    greeting: bytes = b""  # extra text in the greeting lines

    def __call__(self, conn: socket.socket, session: Session) -> None:
        stream: socket.socket | ssl.SSLSocket = conn
        layer = "plain"
        if self.implicit_tls is not None:
            stream = self.implicit_tls.wrap_socket(conn, server_side=True)
            layer = "tls"
        stream.sendall(b"220-" + self.name + b" ESMTP " + self.greeting + b"\r\n")
        stream.sendall(b"220-" + self.name + b" checks that you wait\r\n")
        time.sleep(self.pause)  # behaviour of the peer, not a test timing
        session.spoke_early = _arrived_early(conn) if layer == "plain" else False
        stream.sendall(b"220 " + self.name + b" ready\r\n")
        reader = LineReader(stream)
        while (line := reader.line()) is not None:
            session.lines.append((layer, line))
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                caps = [self.name, b"PIPELINING", b"SIZE 10240000", b"AUTH PLAIN LOGIN"]
                caps += [b"VRFY", b"ETRN", b"CHUNKING", b"SMTPUTF8"]
                if self.tls is not None and layer == "plain":
                    caps.append(b"STARTTLS")
                body = b"".join(b"250-" + c + b"\r\n" for c in caps[:-1])
                stream.sendall(body + b"250 " + caps[-1] + b"\r\n")
            elif verb == b"STARTTLS" and self.tls is not None and layer == "plain":
                stream.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                stream = self.tls.wrap_socket(conn, server_side=True)
                reader = LineReader(stream)
                layer = "tls"
            elif verb == b"QUIT":
                if session.on_quit is not None:
                    session.on_quit()
                stream.sendall(b"221 2.0.0 Bye\r\n")
                session.closed_cleanly = True
                return
            elif verb in (b"HELO", b"NOOP", b"RSET"):
                stream.sendall(b"250 " + self.name + b"\r\n")
            else:
                stream.sendall(b"250 2.0.0 OK, go on\r\n")  # bait: never refuse
