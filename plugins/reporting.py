"""Report writers: results JSON, markdown summary, and defaults for JUnit XML and HTML.

Writers run on the controller only (no ``workerinput``): under pytest-xdist every worker's
reports arrive through ``pytest_runtest_logreport`` on the controller and are merged there.
Each test's result is appended to ``results.jsonl`` as it completes so a crash leaves a
partial record; the summary is written at the end.
"""
from __future__ import annotations

import errno
import getpass
import html
import imaplib
import json
import platform
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from plugins import environments, igc_sante, redaction, run
from plugins.results import CheckResult, counts, merge
from plugins.summary_md import render, verdict
from probes.errors import CouldNotRun

# Exceptions meaning "the check could not run" (target unreachable, timed out, no answer in
# its protocol, a TLS handshake stopped for a non-certificate reason, a secret not set):
# reported as *error*, distinct from a failed check (DESIGN §7). The probes raise CouldNotRun
# themselves; the rest is what a library may still let through.
UNREACHABLE: tuple[type[BaseException], ...] = (
    CouldNotRun, ConnectionError, TimeoutError, socket.gaierror, socket.herror, EOFError,
    ssl.SSLError, httpx.TransportError, redis.ConnectionError, redis.TimeoutError,
    redis.exceptions.InvalidResponse, psycopg.OperationalError)
# Transport errnos a bare OSError carries (no route, network down, ...).
UNREACHABLE_ERRNO = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED,
                               errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                               errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE})
COLLECTOR_KEY = pytest.StashKey["Collector"]()
TOOLS = ("pytest", "pytest-xdist", "pytest-html", "sslyze", "cryptography", "httpx",
         "psycopg", "redis", "imapclient", "locust")


def could_not_run(exc: BaseException) -> bool:
    """The check measured nothing (target unreachable, time-out, DNS, no protocol answer, TLS
    handshake stopped for a non-certificate reason, secret not set): an *error*.

    A refused certificate is not that: the service answered with a certificate clients must
    reject, a failure of the platform however the client library wraps it (httpx turns it
    into a ConnectError), so an ``ssl.SSLCertVerificationError`` anywhere in the chain makes
    it *failed*. smtplib and imaplib report a transport failure in their protocol exceptions:
    an SMTP disconnection or an IMAP abort counts when a socket error or time-out is behind it,
    not when the server hung up after answering (that is its behaviour, measured). pytest-timeout's
    own kill ("Timeout >N s") is a time-out too.
    """
    if _refused_certificate(exc):
        return False
    if isinstance(exc, pytest.fail.Exception):
        return str(exc).startswith("Timeout >")
    if isinstance(exc, smtplib.SMTPException):
        return isinstance(exc, smtplib.SMTPServerDisconnected) and _transport_behind(exc)
    if isinstance(exc, imaplib.IMAP4.abort):
        return str(exc).startswith("socket error") or _transport_behind(exc)
    if isinstance(exc, UNREACHABLE):
        return True
    return isinstance(exc, OSError) and exc.errno in UNREACHABLE_ERRNO


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (or during); a CouldNotRun only counts what it was
    explicitly raised from (clean-up in a ``finally`` must not change its meaning)."""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        yield seen
        seen = seen.__cause__ if isinstance(seen, CouldNotRun) else (
            seen.__cause__ or seen.__context__)


def _refused_certificate(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(exc))


def _transport_behind(exc: BaseException) -> bool:
    """smtplib/imaplib say "... timed out" or wrap the socket error (as context)."""
    if "timed out" in str(exc):
        return True
    return any(could_not_run(e) for e in list(_chain(exc))[1:])


def is_could_not_run(report: pytest.TestReport) -> bool:
    """A failed call report that :func:`pytest_runtest_makereport` marked "could not run"."""
    return report.when == "call" and report.failed and any(
        name == "could_not_run" for name, _ in getattr(report, "user_properties", ()))


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def _git_commit(cwd: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + (" (modified)" if dirty else "") if out.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def tool_versions() -> str:
    versions = [f"python {platform.python_version()}"]
    for name in TOOLS:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(versions)


class Collector:
    """Controller-side merge of every test's phases into one CheckResult."""

    def __init__(self, config: pytest.Config, out_dir: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.results: dict[str, CheckResult] = {}
        self.facts: dict[str, str] = {}
        out_dir.mkdir(parents=True, exist_ok=True)
        self.partial = out_dir / "results.jsonl"
        self.partial.write_text("")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.results.setdefault(report.nodeid, CheckResult(report.nodeid))
        merge(result, report.when, report.outcome, report.longrepr, report.duration,
              list(report.user_properties))
        for name, value in report.user_properties:
            if name == "fact":
                key, _, fact = str(value).partition("=")
                self.facts[key] = fact
        if report.when == "teardown":
            with self.partial.open("a") as handle:
                handle.write(redaction.redact(json.dumps(result.to_dict())) + "\n")

    def metadata(self) -> dict[str, Any]:
        profile = environments.get_profile(self.config)
        info = self.config.stash[run.RUN_KEY]
        return {
            "environment": f"{profile.name} ({profile.kind})" if profile else "none",
            "profile": str(profile.path) if profile else "",
            "trust_anchors": (igc_sante.anchors_statement(profile.data, profile.path.parent)
                              if profile else None),
            # Source address per endpoint, with the loopback/own-address warning (vantage).
            "vantage": "; ".join(environments.vantage_lines(self.config)) or None,
            "run_id": info.run_id,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.started)),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "user": getpass.getuser(),
            "command": "pytest " + " ".join(self.config.invocation_params.args),
            "suite_commit": _git_commit(Path(__file__).resolve().parent.parent),
            "tools": tool_versions(),
            "reports_dir": str(self.out_dir),
            **self.facts,
        }

    def write(self) -> None:
        results = list(self.results.values())
        meta = self.metadata()
        payload = {"metadata": meta, "verdict": verdict(results), "counts": counts(results),
                   "results": [r.to_dict() for r in results]}
        (self.out_dir / "results.json").write_text(
            redaction.redact(json.dumps(payload, indent=2, ensure_ascii=False)))
        (self.out_dir / "summary.md").write_text(render(meta, results))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.write()
        latest = self.out_dir.parent / "latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.out_dir.name)
        except OSError:
            pass

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        totals = counts(list(self.results.values()))
        terminalreporter.write_sep("-", "mssante-check")
        terminalreporter.write_line(
            "outcomes: " + ", ".join(f"{n} {k}" for k, n in totals.items() if n))
        terminalreporter.write_line(f"reports: {self.out_dir}/ (summary.md, results.json, "
                                    "junit.xml, report.html)")


class JunitCouldNotRun:
    """Writes a could-not-run check as ``<error>`` in junit.xml, not ``<failure>``.

    pytest's junitxml decides by the phase alone: a failed *call* is a ``<failure>``, a failed
    setup/teardown an ``<error>``, and it has no hook to say otherwise. Rewriting the report's
    phase (``report.when = "setup"``) would lie to every other consumer ("ERROR at setup of"),
    so instead, right after junitxml has recorded the call (``trylast``), the element it just
    added for this test is renamed ``error`` and junitxml's counters moved from failures to
    errors, which its ``testsuite`` totals are written from. junitxml keeps these in
    ``_pytest.junitxml`` (``xml_key``, ``LogXML.node_reporter``, ``.nodes``, ``.stats``):
    stable since pytest 6; if they are missing the element stays a failure (and the unit test
    of this class says so).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not is_could_not_run(report):
            return
        from _pytest import junitxml

        xml = self.config.stash.get(junitxml.xml_key, None)
        if xml is None:
            return
        for node in reversed(xml.node_reporter(report).nodes):
            if node.tag == "failure":
                node.tag = "error"
                message = node.get("message", "")
                if "could not run" not in message:
                    node.set("message", f"could not run: {message}")
                xml.stats["failure"] -= 1
                xml.stats["error"] += 1
                return


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """pytest's own terminal line: a could-not-run check is ``E``/``ERROR`` (counted in
    "N errors", listed under ERRORS as "ERROR at call of ..."), never ``F``/``FAILED``; the
    exit code is 1 either way."""
    if is_could_not_run(report):
        return "error", "E", "ERROR"
    return None


def configure(config: pytest.Config) -> None:
    """Default JUnit/HTML paths into the run folder before those plugins read them."""
    if _is_controller(config):
        config.pluginmanager.register(JunitCouldNotRun(config), "mssante-junit-could-not-run")
    profile = environments.get_profile(config)
    if profile is None or not _is_controller(config) or config.option.collectonly:
        return
    info = config.stash[run.RUN_KEY]
    out_dir = run.reports_dir(config) / "runs" / f"{info.run_id}-{profile.name}"
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(out_dir / "junit.xml")
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(out_dir / "report.html")
        config.option.self_contained_html = True
    collector = Collector(config, out_dir)
    config.stash[COLLECTOR_KEY] = collector
    config.pluginmanager.register(collector, "mssante-collector")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Mark "could not run" and copy the item's properties onto the report (secrets in it
    are masked by :mod:`plugins.redaction` before any writer reads the report)."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and call.excinfo is not None and could_not_run(call.excinfo.value):
        item.user_properties.append(("could_not_run", redaction.redact(
            f"{type(call.excinfo.value).__name__}: {call.excinfo.value}")))
    for marker in item.iter_markers("service"):
        for name in marker.args:
            if ("service", name) not in item.user_properties:
                item.user_properties.append(("service", name))
    report.user_properties = list(item.user_properties)


def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(2, "<th>Requirements</th>")
    cells.insert(3, "<th>Warning / waiver</th>")


def html_note(properties: list[tuple[str, Any]]) -> str:
    """What pytest-html's passed/failed column cannot say: a pass *with a warning*, or a
    failure *waived* (by whom, until when). Empty for a plain outcome."""
    notes = [f"warning: {value}" for key, value in properties if key == "warning"]
    for key, value in properties:
        if key == "waiver":
            waiver = json.loads(value)
            notes.append(f"waived by {waiver['id']} (approved by {waiver['approver']}, until "
                         f"{waiver['expires']}): {waiver['justification']}")
    return redaction.redact("; ".join(notes))


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    properties = list(getattr(report, "user_properties", []))
    ids = [v for k, v in properties if k == "requirement"]
    cells.insert(2, f"<td>{', '.join(ids)}</td>")
    cells.insert(3, f"<td>{html.escape(html_note(properties))}</td>")


def pytest_html_report_title(report: Any) -> None:
    report.title = "mssante-check report"


def pytest_report_header(config: pytest.Config) -> str:
    return f"mssante-check run {config.stash[run.RUN_KEY].run_id} on {sys.platform}"
