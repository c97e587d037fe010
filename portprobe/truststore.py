"""The system trust store, loaded in a thread while the rest of portprobe imports.

Loading the system CA bundle (``ssl.create_default_context()``: OpenSSL parses every
certificate in it) costs 20-40 ms, and nothing needs it before the first TLS handshake.
OpenSSL does that work with the GIL released, so a thread started before trio and
dnspython are imported does it for free beside them (bench/coldstart.py measures it).

Only the standard library here: the CLI calls ``preload()`` before it imports anything
heavy. A context is handed out once (``take()``), since the caller adds ``--ca-file`` to
it; with nothing preloaded, or after a failure in the thread, ``take()`` builds one in
the caller's thread, so the outcome never depends on the preload. ``preloading()`` bounds
a preload to a block: what the block did not take (it failed first, on bad input) is
waited for and dropped at its end, so no load outlives the command that started it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pending: _Load | None = None


class _Load(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="portprobe-truststore", daemon=True)
        self.context: ssl.SSLContext | None = None

    def run(self) -> None:
        try:
            self.context = ssl.create_default_context()
        except Exception:  # take() retries in the caller, and raises there
            self.context = None


def preload() -> None:
    """Start loading the default trust store, unless a load is already pending."""
    global _pending
    with _lock:
        if _pending is None:
            _pending = _Load()
            _pending.start()


def take() -> ssl.SSLContext:
    """A fresh default client context (system trust store), preloaded if possible."""
    global _pending
    with _lock:
        load, _pending = _pending, None
    if load is not None:
        load.join()
        if load.context is not None:
            return load.context
    return ssl.create_default_context()


def discard() -> None:
    """Drop a pending preload, after it finished (so its file is closed)."""
    global _pending
    with _lock:
        load, _pending = _pending, None
    if load is not None:
        load.join()


@contextmanager
def preloading() -> Iterator[None]:
    """Preload for the block's sake; at its end, drop whatever it did not take."""
    preload()
    try:
        yield
    finally:
        discard()
