"""One lab for the whole lab test session, torn down even when tests fail.

The lab is built once (a few seconds) and each test switches it to the scenario it
needs (milliseconds). Teardown is layered: this fixture's ``finally``, the lab's own
``atexit`` and SIGTERM handlers, and at the next start the removal of namespaces whose
creating process is gone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from .harness import PORTPROBE, Report, run_portprobe
from .netlab import Lab, lab_unavailable


def _skip_or_fail(reason: str) -> None:
    # In CI (root, packages installed by .ci/run) a missing piece is a failure: a skip
    # there would hide that the end-to-end tests never ran.
    if os.environ.get("CI"):
        pytest.fail(f"lab tests must run in CI but cannot: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason is not None:
        _skip_or_fail(f"lab needs root and ip netns: {reason}")
    instance = Lab()
    try:
        instance.up()
        yield instance
    finally:
        instance.down()


@pytest.fixture(scope="session")
def portprobe_installed() -> None:
    if not PORTPROBE.exists():
        _skip_or_fail(f"portprobe is not installed at {PORTPROBE} (run `uv sync`)")


@pytest.fixture(scope="session")
def peer_tools() -> None:
    """nmap, swaks and openssl, which the agreement tests compare portprobe with."""
    missing = [tool for tool in ("nmap", "swaks", "openssl") if shutil.which(tool) is None]
    if missing:
        _skip_or_fail(f"peer tools not installed: {', '.join(missing)}")


@pytest.fixture(scope="session")
def echo_receiver(lab: Lab) -> None:
    """Exim (mx.echo.example), whose EHLO reply echoes the client's address."""
    if lab.exim_missing is not None:
        _skip_or_fail(lab.exim_missing)


@pytest.fixture(scope="session")
def scenario_report(lab: Lab, portprobe_installed: None) -> Callable[[str], Report]:
    """portprobe's report in a scenario (default targets), run once per scenario."""
    cache: dict[str, Report] = {}

    def get(name: str) -> Report:
        lab.switch(name)
        if name not in cache:
            cache[name] = run_portprobe(lab)
        return cache[name]

    return get


@pytest.fixture
def lab_logs(lab: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The lab, whose service logs are printed when the test fails."""
    yield lab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(lab.log_tails())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
