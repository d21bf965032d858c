"""Fixtures shared by the detection matrix and the testssl.sh cross-check."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests import labctl
from tests.detection.expected import GOOD


@pytest.fixture(scope="module")
def lab_state() -> Iterator[Callable[[str], None]]:
    """``lab_state(name)``: the lab good (``"good"``) or with that one fault; good again at
    the end of the module (only the services a switch changes restart)."""
    yield lambda name: labctl.lab_up(*([] if name == GOOD else [name]))
    labctl.lab_up()
