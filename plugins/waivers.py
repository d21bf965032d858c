"""Waivers: an approved, time-limited exception that turns a failure into "waived" — never hidden.

``fixtures/waivers.toml`` (or ``--waivers PATH``) lists ``[[waiver]]`` entries, as Chef InSpec
does: the requirement ID or test id it covers, a justification, who approved it, and an expiry
date. A failed check matching a valid waiver is reported *waived* with the waiver beside it in
every report; once the date has passed the waiver stops applying, the failure is back, and the
report says the waiver expired. Only failures are waivable: an *error* (the check could not
run) says nothing was verified, and no signature makes that compliant.

The file is read on every process (controller and xdist workers) in ``pytest_configure``; a
malformed file, an unknown requirement ID or an entry without justification, approver or expiry
stops the run with one line naming the file and the key.
"""
from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import environments, reporting, requirements

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "waivers.toml"
WAIVERS_KEY = pytest.StashKey["WaiverFile"]()
REQUIRED_KEYS = ("id", "justification", "approver", "expires")
OPTIONAL_KEYS = ("environments",)


class WaiverError(Exception):
    """The waiver file cannot be used; str() is one line naming the file and the key."""


@dataclass(frozen=True)
class Waiver:
    id: str                     # a requirement ID, or a test id (with or without [params])
    justification: str
    approver: str
    expires: dt.date            # last day the waiver applies
    environments: tuple[str, ...] = ()   # empty: every environment

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def covers(self, nodeid: str, requirement_ids: list[str], environment: str) -> bool:
        if self.environments and environment not in self.environments:
            return False
        return self.id in requirement_ids or self.id in (nodeid, nodeid.split("[", 1)[0])

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "justification": self.justification, "approver": self.approver,
                "expires": self.expires.isoformat(),
                **({"environments": ", ".join(self.environments)} if self.environments else {})}


@dataclass
class WaiverFile:
    path: Path
    waivers: list[Waiver] = field(default_factory=list)

    def match(self, nodeid: str, requirement_ids: list[str], environment: str) -> list[Waiver]:
        return [w for w in self.waivers if w.covers(nodeid, requirement_ids, environment)]


def _date(path: Path, where: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
        raise WaiverError(f"{path}: {where} key 'expires' must be a date (YYYY-MM-DD)")
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise WaiverError(f"{path}: {where} key 'expires' must be a date (YYYY-MM-DD), "
                          f"got {value!r}") from None


def _waiver(path: Path, index: int, entry: Any, catalogue: dict[str, Any]) -> Waiver:
    where = f"[[waiver]] #{index}"
    if not isinstance(entry, dict):
        raise WaiverError(f"{path}: {where} must be a table")
    if isinstance(entry.get("id"), str):
        where += f" ({entry['id']})"
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise WaiverError(f"{path}: {where} missing key '{key}' (a waiver needs an id, a "
                              "justification, an approver and an expiry date)")
    for key in entry:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise WaiverError(f"{path}: {where} unknown key '{key}'")
    for key in ("id", "justification", "approver"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise WaiverError(f"{path}: {where} key '{key}' must be a non-empty string")
    waiver_id = entry["id"].strip()
    if "::" not in waiver_id and waiver_id not in catalogue:
        raise WaiverError(f"{path}: {where} key 'id': '{waiver_id}' is neither a known "
                          "requirement ID nor a test id (path::test)")
    envs = entry.get("environments", [])
    if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
        raise WaiverError(f"{path}: {where} key 'environments' must be a list of names")
    return Waiver(waiver_id, entry["justification"].strip(), entry["approver"].strip(),
                  _date(path, where, entry["expires"]), tuple(envs))


def load(path: Path, catalogue: dict[str, Any]) -> WaiverFile:
    """Parse and validate a waiver file; every problem is one WaiverError line."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WaiverError(f"{path}: waiver file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise WaiverError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise WaiverError(f"{path}: not UTF-8 text") from None
    for key in data:
        if key != "waiver":
            raise WaiverError(f"{path}: unknown key '{key}' (expected [[waiver]] tables)")
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise WaiverError(f"{path}: key 'waiver' must be an array of tables ([[waiver]])")
    return WaiverFile(path, [_waiver(path, index, entry, catalogue)
                             for index, entry in enumerate(entries, start=1)])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mssante").addoption(
        "--waivers", dest="mssante_waivers", default=None, metavar="PATH",
        help=f"waiver file (default: {DEFAULT_FILE.relative_to(DEFAULT_FILE.parent.parent)})")


def configure(config: pytest.Config) -> None:
    option = config.getoption("mssante_waivers", None)
    path = Path(option).resolve() if option else DEFAULT_FILE
    if not option and not path.exists():
        config.stash[WAIVERS_KEY] = WaiverFile(path)
        return
    try:
        config.stash[WAIVERS_KEY] = load(path, config.stash[requirements.CATALOGUE_KEY])
    except WaiverError as exc:
        raise pytest.UsageError(str(exc)) from None


def get_waivers(config: pytest.Config) -> WaiverFile | None:
    return config.stash.get(WAIVERS_KEY, None)


def expired_note(waiver: Waiver) -> str:
    """What the report of a failure says when its only waiver has expired."""
    return (f"waiver {waiver.id} (approved by {waiver.approver}) expired on "
            f"{waiver.expires.isoformat()}: not applied")


def _apply(item: pytest.Item, report: pytest.TestReport, today: dt.date) -> None:
    waiver_file = get_waivers(item.config)
    profile = environments.get_profile(item.config)
    if waiver_file is None or not waiver_file.waivers:
        return
    matches = waiver_file.match(item.nodeid, requirements.requirement_ids(item),
                                profile.name if profile else "")
    valid = [w for w in matches if not w.expired(today)]
    if valid:
        prop = ("waiver", json.dumps(valid[0].to_dict(), ensure_ascii=False))
    elif matches:
        prop = ("warning", expired_note(max(matches, key=lambda w: w.expires)))
    else:
        return
    item.user_properties.append(prop)
    report.user_properties = list(report.user_properties) + [prop]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On the process that ran the test: attach the waiver to a failed check's report.

    ``tryfirst`` makes this the outermost wrapper, so it runs after the reporting plugin has
    copied the item's properties (and marked "could not run") onto the report.
    """
    outcome = yield
    report = outcome.get_result()
    could_not_run = any(name == "could_not_run" for name, _ in item.user_properties)
    if call.when == "call" and report.failed and not could_not_run:
        _apply(item, report, dt.date.today())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Expired waivers still in the file are a to-do for whoever maintains it."""
    waiver_file = get_waivers(config)
    if waiver_file is None or not waiver_file.waivers or hasattr(config, "workerinput"):
        return
    today = dt.date.today()
    expired = [w for w in waiver_file.waivers if w.expired(today)]
    terminalreporter.write_line(
        f"waivers: {len(waiver_file.waivers) - len(expired)} active, {len(expired)} expired "
        f"({waiver_file.path})" + "".join(f"\n  expired on {w.expires}: {w.id}" for w in expired))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run whose every failure is waived passes the CI gate (exit 0); JUnit still lists them.

    Controller only: the merged results decide. Errors are never waived, so any error keeps the
    non-zero status.
    """
    collector = session.config.stash.get(reporting.COLLECTOR_KEY, None)
    if collector is None or session.exitstatus != pytest.ExitCode.TESTS_FAILED:
        return
    outcomes = [result.outcome for result in collector.results.values()]
    if "waived" in outcomes and not {"failed", "error"} & set(outcomes):
        session.exitstatus = pytest.ExitCode.OK
