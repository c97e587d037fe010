"""The trust store preloaded in a thread: the same context as without, and nothing left over."""

from __future__ import annotations

import os
import ssl
import threading

import pytest

from portprobe import truststore


def _stats(ctx: ssl.SSLContext) -> dict[str, int]:
    return dict(ctx.cert_store_stats())


def _loading_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "portprobe-truststore"]


def test_a_preloaded_context_is_the_default_one_and_handed_out_once() -> None:
    plain = ssl.create_default_context()
    truststore.preload()
    truststore.preload()  # a second call while one is pending starts nothing
    assert len(_loading_threads()) <= 1
    first = truststore.take()
    assert _stats(first) == _stats(plain)
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    second = truststore.take()  # nothing pending: built here, and a different object
    assert second is not first and _stats(second) == _stats(plain)


def test_a_block_that_fails_leaves_no_load_behind() -> None:
    with pytest.raises(ValueError), truststore.preloading():
        raise ValueError("bad input before the diagnosis took the context")
    assert _loading_threads() == []
    assert truststore._pending is None
    bundle = ssl.get_default_verify_paths().cafile
    if bundle:  # the thread's file is closed, not left for a later fd count to see
        open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert os.path.realpath(bundle) not in open_files


def test_a_block_that_took_the_context_ends_cleanly() -> None:
    with truststore.preloading():
        ctx = truststore.take()
    assert isinstance(ctx, ssl.SSLContext) and truststore._pending is None
