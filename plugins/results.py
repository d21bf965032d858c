"""Turn pytest's per-phase reports into one outcome per test, as auditors read them.

Outcomes are kept distinct (DESIGN §7): passed, failed, error (the check could not run),
skipped (not configured), warning (passed with a reservation) and waived. Pure functions so
report rendering can be unit-tested without running pytest.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

OUTCOMES = ("passed", "warning", "waived", "failed", "error", "skipped")


@dataclass
class CheckResult:
    nodeid: str
    outcome: str = "passed"
    requirements: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    measured: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    waiver: dict[str, str] | None = None
    could_not_run: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def short_message(longrepr: Any) -> str:
    """The one line that says why: the assertion/skip reason, not the traceback."""
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return re.sub(r"^[\w.]+: ", "", str(longrepr[2]), count=1)
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    if crash:
        return crash.strip().splitlines()[0][:500]
    lines = [line for line in str(longrepr).strip().splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    chosen = errors[0] if errors else (lines[-1] if lines else "")
    return chosen[:500]


def merge(result: CheckResult, when: str, outcome: str, longrepr: Any, duration: float,
          properties: list[tuple[str, Any]]) -> None:
    """Fold one phase (setup/call/teardown) of a test's report into its result."""
    result.duration_s += duration
    for name, value in properties:
        if name == "requirement" and value not in result.requirements:
            result.requirements.append(value)
        elif name == "service" and value not in result.services:
            result.services.append(value)
        elif name == "warning" and value not in result.warnings:
            result.warnings.append(value)
        elif name == "measured":
            entry = json.loads(value)
            if entry not in result.measured:
                result.measured.append(entry)
        elif name == "evidence" and value not in result.evidence:
            result.evidence.append(value)
        elif name == "waiver":
            result.waiver = json.loads(value)
        elif name == "could_not_run":
            result.could_not_run = value
    if outcome == "failed":
        if result.outcome not in ("failed", "error"):
            result.outcome = "failed" if when == "call" and not result.could_not_run else "error"
            result.message = short_message(longrepr)
    elif outcome == "skipped" and result.outcome == "passed":
        result.outcome = "skipped"
        result.message = short_message(longrepr)
    if result.outcome == "passed" and result.warnings:
        result.outcome = "warning"
        result.message = "; ".join(result.warnings)
    if result.waiver and result.outcome == "failed":
        result.outcome = "waived"


def counts(results: list[CheckResult]) -> dict[str, int]:
    return {name: sum(1 for r in results if r.outcome == name) for name in OUTCOMES}
