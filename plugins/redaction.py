"""Redaction as pytest meets it: every report, log record and terminal line is masked.

The registry and :func:`redact` are in :mod:`probes.redaction` (probes use them too; probes
never import plugins). This plugin applies them where pytest writes:

- every test and collection report, in ``pytest_runtest_logreport``/``pytest_collectreport``
  (``tryfirst``) of every process: on an xdist worker before the report is sent, on the
  controller before the terminal, JUnit, HTML and results writers read it. The traceback is
  scrubbed in place (pytest's structure kept), or replaced by its redacted text if scrubbing
  missed anything; captured output and ``user_properties`` are scrubbed too;
- the handlers of pytest's logging plugin (a filter that renders and redacts each record);
- the terminal, line by line (and, with ``-s``, what tests print to stdout and stderr);
- assertion explanations and parametrize ids never render a :class:`~probes.secret.Secret`
  (pytest would diff two strings character by character, and use a string parameter as its id).
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from probes.redaction import MASK, RedactingFilter, known, redact, register
from probes.secret import SHOWN, Secret

__all__ = ["MASK", "RedactingFilter", "known", "redact", "register", "scrub_report"]


def scrub(value: Any, seen: set[int] | None = None) -> Any:
    """``value`` with every string inside it redacted: strings, tuples and lists, and the
    attributes of pytest's report objects (longrepr entries, locals, crash lines), in place."""
    seen = set() if seen is None else seen
    if isinstance(value, str):
        return redact(value)            # a Secret too: writers use str(), which shows it
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [scrub(item, seen) for item in value]
        return value
    if isinstance(value, tuple):
        items = [scrub(item, seen) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        for key in list(value):
            value[key] = scrub(value[key], seen)
        return value
    if type(value).__module__.startswith("_pytest") and hasattr(value, "__dict__"):
        for name, attribute in list(vars(value).items()):
            object.__setattr__(value, name, scrub(attribute, seen))
    return value


def scrub_report(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Redact the report's traceback, captured sections and user properties in place."""
    longrepr = report.longrepr
    if longrepr is not None:
        report.longrepr = scrub(longrepr)
        if not isinstance(report.longrepr, (str, tuple)):
            text = str(report.longrepr)
            if redact(text) != text:        # something the walk did not reach
                report.longrepr = redact(text)
    report.sections = [(title, redact(body)) for title, body in report.sections]
    if hasattr(report, "user_properties"):
        report.user_properties = [(name, scrub(value))  # type: ignore[union-attr]  # hasattr above
                                  for name, value in report.user_properties]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    scrub_report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    scrub_report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object,
                              right: object) -> list[str] | None:
    """``assert secret == other`` would print a character diff of both strings."""
    if isinstance(left, Secret) or isinstance(right, Secret):
        shown = [SHOWN if isinstance(side, Secret) else redact(repr(side))[:80]
                 for side in (left, right)]
        return [f"{shown[0]} {op} {shown[1]}", "(a secret is never shown or diffed)"]
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """pytest uses a string parameter as the test's id, which would put a secret in the
    node id (and every report)."""
    return f"{argname}-secret" if isinstance(val, Secret) else None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """After every plugin's ``pytest_configure``: the logging plugin and the terminal exist."""
    config = session.config
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    handlers = [getattr(plugin, name, None) for name in
                ("caplog_handler", "report_handler", "log_file_handler", "log_cli_handler")]
    for handler in [h for h in handlers if isinstance(h, logging.Handler)]:
        handler.addFilter(RedactingFilter())
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(terminal, "_tw", None)
    if writer is not None and not isinstance(getattr(writer, "_file", None), RedactingStream):
        stream = RedactingStream(writer._file)  # noqa: SLF001 - no public hook for it
        writer._file = stream  # noqa: SLF001 - no public hook for it
        # With -s, tests print straight to the terminal: through the same stream, in order.
        if config.getoption("capture", "fd") == "no" and sys.stdout is stream.wrapped:
            sys.stdout = stream
    if config.getoption("capture", "fd") == "no" and not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the streams replaced for -s (flushing what they hold)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, RedactingStream):
            stream.flush()
            setattr(sys, name, stream.wrapped)


class RedactingStream:
    """A text stream that redacts whole lines: a write is held until its line ends (or the
    stream is flushed), so a secret split across writes of one line is still masked."""

    def __init__(self, stream: Any) -> None:
        self.wrapped = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self.wrapped.write(redact(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.wrapped.write(redact(self._pending))
            self._pending = ""
        self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
