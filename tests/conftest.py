"""Test plumbing: run ``async def`` tests under trio, and trio's mock clock.

pytest-trio 0.8 (2022) predates the trio we use, so this is the few lines of it we need:
an ``async def test_…`` runs in ``trio.run``; asking for ``autojump_clock`` makes that
run use ``trio.testing.MockClock`` with autojump, so a test of a 100-second
timeout takes no time when every task is waiting.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytest
import trio
import trio.testing


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    clock = pyfuncitem.funcargs.get("autojump_clock")
    trio.run(functools.partial(pyfuncitem.obj, **kwargs), clock=clock)
    return True


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # Tests under this clock talk over in-memory streams (tests/servers.py serve_memory,
    # the engine's connector seam), where "every task is waiting" means nothing is in
    # flight, so a jump can never race a byte. Real sockets do not belong under it: the
    # kernel may defer loopback packets to ksoftirqd on a loaded machine. The 20 ms of
    # real idle time before a jump is kept only as a margin for tests outside the probe
    # engine's files that still mix the two (tests/test_runner.py, test_load.py).
    return trio.testing.MockClock(autojump_threshold=0.02)


@pytest.fixture(autouse=True)
def _no_local_mta(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own mail server stays out of the tests: its tools are "not found"
    unless a test gives ``Diagnosis`` its own ``mta_run`` (tests/test_mta.py)."""
    from portprobe.mta import read

    monkeypatch.setattr(read, "system_run", lambda argv: read.Ran(127, "", "not found"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lab tests share one lab (namespaces, servers) per session: they run in one
    worker, one after another; every other test may run in either."""
    for item in items:
        if item.get_closest_marker("lab") is not None:
            item.add_marker(pytest.mark.xdist_group("lab"))
