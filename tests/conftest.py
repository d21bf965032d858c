"""Fixtures for the suite's own tests (the plugin is loaded by the root conftest)."""
from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests import labctl
from tests.support.hostile import hostile_server


@pytest.fixture(scope="session")
def good_lab() -> None:
    """The whole lab up with no fault (idempotent: only what differs restarts)."""
    labctl.lab_up()


@pytest.fixture
def lab_fault(good_lab):
    """``lab_fault("db-down")`` breaks the lab; it is made good again afterwards."""
    active: list[str] = []

    def apply(*faults: str) -> None:
        active[:] = faults
        labctl.lab_up(*faults)

    yield apply
    if active:
        labctl.lab_up()


@pytest.fixture
def hostile():
    """``hostile("tarpit", tls=False)`` starts a hostile loopback server (tests/support/hostile.py)
    and returns its Target; every server started is stopped at teardown."""
    with ExitStack() as stack:
        yield lambda kind, tls=False: stack.enter_context(hostile_server(kind, tls))
