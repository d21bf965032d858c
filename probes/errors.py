"""The one "could not run" exception every probe raises when a check measured nothing.

A check that could not reach its target, timed out, could not resolve a name, or lacks a
secret measured nothing: the report calls it *error*, never *failed* and never *passed*
(DESIGN §7). Probes translate their library's "unreachable" exceptions into
:class:`CouldNotRun` at the step where it happened, so the message always names the endpoint
(``host:port`` or URL) and the step, and the reporter recognises one type instead of a list of
every library's exception classes.

A refused *certificate* is not this: the service answered, with a certificate clients must
reject, which is a failure of the platform; probes let ``ssl.SSLCertVerificationError``
propagate as it is.
"""
from __future__ import annotations

import socket


class CouldNotRun(Exception):
    """The check could not measure anything: ``could not run: <endpoint>: <step>: <reason>``."""

    def __init__(self, endpoint: str, step: str, reason: str) -> None:
        super().__init__(f"could not run: {endpoint}: {step}: {reason}")
        self.endpoint = endpoint
        self.step = step
        self.reason = reason


class Blocked(CouldNotRun):
    """A prerequisite of the check failed (connection, TLS, login, the control attempt), so the
    property under test was never measured: ``blocked: <prerequisite> failed: <reply>``."""

    def __init__(self, endpoint: str, prerequisite: str, reply: str) -> None:
        super().__init__(endpoint, prerequisite, reply)
        self.args = (f"blocked: {prerequisite} to {endpoint} failed: {reply}",)

    def __str__(self) -> str:
        return str(self.args[0])


def reason(exc: BaseException) -> str:
    """A short text for a transport failure: ``ConnectionRefusedError: [Errno 111] ...``;
    a name that does not resolve says so (``DNS: ...``)."""
    if isinstance(exc, socket.gaierror):
        return f"DNS: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class SecretNotSet(CouldNotRun):
    """The environment variable a profile names for a secret is not set: nothing can be
    measured without it (an *error*, never a failure of the platform)."""

    def __init__(self, key: str, variable: str, where: str) -> None:
        super().__init__(key, "secret", f"environment variable {variable} ({where}) is not set")
        self.variable = variable
