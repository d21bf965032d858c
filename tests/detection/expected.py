"""The detection matrix's contract, ``tests/detection/expected.toml``: for the good lab and for
each lab fault, exactly which checks fail, and how a run is compared with it.

Kept apart from the lab runs (``test_matrix.py``) so the table itself — its coverage of every
fault, its ids, the README section rendered from it — is checked in milliseconds.
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("expected.toml")
GOOD = "good"
FAILING = ("failed", "error")
_ENTRY_KEYS = {"why", "fail", "error", "warning", "skipped", "services", "message"}


class TableError(ValueError):
    """expected.toml is malformed; the message names the key."""


@dataclass(frozen=True)
class Message:
    """A failing check whose one-line message must carry these fragments."""

    test: str
    contains: tuple[str, ...]


@dataclass(frozen=True)
class Expectation:
    """What one lab state (``good`` or a fault) must give: ``fail`` the tests that fail or
    error, ``error`` those of them reported as *error* (could not run), ``warning`` the tests
    that pass with a warning, ``skipped`` the tests skipped (the good lab's when not given),
    ``services`` the services the summary must show failing."""

    name: str
    why: str
    fail: frozenset[str]
    error: frozenset[str]
    warning: frozenset[str]
    skipped: frozenset[str]
    services: tuple[str, ...]
    message: Message | None


@dataclass(frozen=True)
class Matrix:
    suites: tuple[str, ...]
    excluded: Mapping[str, str]          # suite → why the matrix does not run it
    good: Expectation
    faults: Mapping[str, Expectation]

    def all_ids(self) -> set[str]:
        """Every test id the table names."""
        ids: set[str] = set()
        for entry in (self.good, *self.faults.values()):
            ids |= entry.fail | entry.warning | entry.skipped
            if entry.message:
                ids.add(entry.message.test)
        return ids


def _ids(data: Mapping[str, object], key: str, where: str) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and "::" in v for v in value):
        raise TableError(f"{where}.{key}: expected a list of test ids (path::name[params])")
    if len(set(value)) != len(value):
        raise TableError(f"{where}.{key}: a test id is listed twice")
    return frozenset(value)


def _entry(name: str, data: object, where: str, default_skipped: frozenset[str]) -> Expectation:
    if not isinstance(data, dict):
        raise TableError(f"{where}: expected a table")
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise TableError(f"{where}: unknown key(s) {', '.join(unknown)} "
                         f"(expected {', '.join(sorted(_ENTRY_KEYS))})")
    why = data.get("why", "")
    if not isinstance(why, str) or (name != GOOD and not why.strip()):
        raise TableError(f"{where}.why: say in one sentence why these checks fail")
    fail, error = _ids(data, "fail", where), _ids(data, "error", where)
    if not error <= fail:
        raise TableError(f"{where}.error: {sorted(error - fail)} must also be in fail")
    message = None
    if "message" in data:
        raw = data["message"]
        if (not isinstance(raw, dict) or set(raw) != {"test", "contains"}
                or raw["test"] not in fail or not isinstance(raw["contains"], list)):
            raise TableError(f"{where}.message: expected {{test = <one of fail>, contains = "
                             "[fragments]}")
        message = Message(raw["test"], tuple(raw["contains"]))
    services = data.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise TableError(f"{where}.services: expected a list of service names")
    skipped = _ids(data, "skipped", where) if "skipped" in data else default_skipped
    return Expectation(name, why.strip(), fail, error, _ids(data, "warning", where), skipped,
                       tuple(services), message)


def load(path: Path = TABLE) -> Matrix:
    """Parse and validate the table; any problem is a TableError naming the key."""
    data = tomllib.loads(path.read_text())
    run = data.get("run", {})
    suites = run.get("suites")
    if not isinstance(suites, list) or not suites:
        raise TableError(f"{path}: [run] suites: expected the suites the matrix runs")
    excluded = run.get("excluded", {})
    if GOOD not in data:
        raise TableError(f"{path}: [good] is missing")
    good = _entry(GOOD, data[GOOD], GOOD, frozenset())
    if good.fail:
        raise TableError(f"{path}: [good] fail must be empty: a good lab fails nothing")
    faults = {name: _entry(name, entry, f"faults.{name}", good.skipped)
              for name, entry in data.get("faults", {}).items()}
    return Matrix(tuple(suites), dict(excluded), good, faults)


def compare(expected: Expectation, outcomes: Mapping[str, str]) -> list[str]:
    """Every way a run's outcomes (test id → outcome) differ from the expectation."""
    def having(*wanted: str) -> set[str]:
        return {test for test, outcome in outcomes.items() if outcome in wanted}

    problems: list[str] = []
    for label, want, got in (("fail or error", expected.fail, having(*FAILING)),
                             ("error (could not run)", expected.error, having("error")),
                             ("warning", expected.warning, having("warning")),
                             ("skipped", expected.skipped, having("skipped"))):
        for test in sorted(got - want):
            problems.append(f"unexpected {label}: {test} ({outcomes[test]})")
        for test in sorted(want - got):
            problems.append(f"expected {label} but {outcomes.get(test, 'not run')}: {test}")
    return problems


def observed_toml(name: str, outcomes: Mapping[str, str]) -> str:
    """The run's outcomes in the table's shape: what to review (never paste blindly) when a
    fault's footprint changes on purpose."""
    def block(key: str, tests: Iterable[str]) -> str:
        tests = sorted(tests)
        return f"{key} = [\n" + "".join(f'  "{t}",\n' for t in tests) + "]\n" if tests else ""

    pick = lambda *wanted: [t for t, o in outcomes.items() if o in wanted]  # noqa: E731 - a one-line helper
    head = "[good]" if name == GOOD else f"[faults.{name}]"
    return (f"{head}\n" + block("fail", pick(*FAILING)) + block("error", pick("error"))
            + block("warning", pick("warning")) + block("skipped", pick("skipped")))
