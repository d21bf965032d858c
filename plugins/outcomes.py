"""Outcomes beyond pass/fail: warnings, measured values and the shared ``wait_until``.

A warning (certificate under 30 days, a degraded TLS suite) keeps the test green but is
recorded in ``user_properties`` so every report shows it; ``--strict-warnings`` turns it into
a failure. Measured values sit beside the verdict, as blackbox_exporter does.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


class ComplianceWarning(UserWarning):
    """A check passed with a reservation an auditor must see."""


@dataclass
class Recorder:
    """Per-test handle to record warnings and measurements on the test's report."""

    item: pytest.Item

    def warn(self, message: str) -> None:
        if self.item.config.getoption("mssante_strict_warnings", False):
            pytest.fail(f"warning (--strict-warnings): {message}", pytrace=False)
        self.item.user_properties.append(("warning", message))

    def measure(self, name: str, value: Any, unit: str = "") -> None:
        self.item.user_properties.append(
            ("measured", json.dumps({"name": name, "value": value, "unit": unit})))

    def evidence(self, path: str | Path) -> None:
        """Link an evidence file to this test: a path inside the run's evidence folder, or
        already relative to it."""
        if isinstance(path, Path) and path.is_absolute():
            from plugins.run import evidence_dir

            path = path.relative_to(evidence_dir(self.item.config))
        self.item.user_properties.append(("evidence", Path(path).as_posix()))


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.node)


@dataclass
class WaitResult:
    ok: bool
    attempts: int
    elapsed_s: float
    value: Any = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "met" if self.ok else "NOT met"
        last = f"; last error: {self.errors[-1]}" if self.errors else ""
        return f"condition {state} after {self.attempts} attempt(s) in {self.elapsed_s:.1f}s{last}"


def wait_until(condition: Callable[[], T], timeout: float, interval: float = 0.5) -> WaitResult:
    """Poll ``condition`` until it returns a truthy value or ``timeout`` passes.

    Exceptions count as "not yet" and are kept (the last few) as evidence of why it took long.
    """
    started = time.monotonic()
    attempts = 0
    errors: list[str] = []
    while True:
        attempts += 1
        try:
            value = condition()
            if value:
                return WaitResult(True, attempts, time.monotonic() - started, value, errors[-3:])
        except Exception as exc:  # noqa: BLE001 - any failure of a probe means "not yet"
            errors.append(f"{type(exc).__name__}: {exc}")
        if time.monotonic() - started + interval > timeout:
            return WaitResult(False, attempts, time.monotonic() - started, None, errors[-3:])
        time.sleep(interval)
