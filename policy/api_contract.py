"""The platform API's contract, as the profile's ``[api]`` section describes it.

The seed's API (``POST /api/v1/auth/login`` with ``{"email", "password"}`` answering
``{"data": {"token"}}``, ``GET /api/v1/mailboxes`` answering ``{"data": [...]}``, and ``/health``
answering ``{"status": "ok", "checks": {name: {"status": "ok"}}}``) is only the default: a
healthy platform whose readiness endpoint says ``{"status": "ready", "checks": {"db": "ok"}}``
must not fail because the suite hard-wired one shape. Every reader of the API (the smoke and
post-deployment suites, the health-check command, the load suite's API user) takes paths,
field names and accepted values from :class:`ApiContract` and judges answers here, so one
profile describes the platform to all of them.

Pure: no I/O. Where a value sits is an RFC 6901 JSON pointer (``/data/token``); the resolution
is a dozen lines, not worth a dependency.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHECK_FORMATS = ("objects", "strings")
_MISSING = object()


class PointerError(ValueError):
    """A JSON pointer that is not one (it must be empty or start with '/')."""


def pointer_problem(pointer: str) -> str | None:
    """Why ``pointer`` is not an RFC 6901 JSON pointer, or None (the profile's check)."""
    if pointer and not pointer.startswith("/"):
        return ("must be a JSON pointer ('' or starting with '/', e.g. /data/token), "
                f"got {pointer!r}")
    if any(part.replace("~0", "").replace("~1", "").count("~") for part in pointer.split("/")):
        return f"must escape '~' as ~0 and '/' as ~1 (RFC 6901), got {pointer!r}"
    return None


def resolve(document: Any, pointer: str, default: Any = None) -> Any:
    """The value at ``pointer`` in a parsed JSON document, or ``default`` when it is absent
    (a missing key, an index out of range, or a step through a scalar)."""
    problem = pointer_problem(pointer)
    if problem:
        raise PointerError(problem)
    value = document
    for token in pointer.split("/")[1:] if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            value = _MISSING
        if value is _MISSING:
            return default
    return value


def replace(document: Any, pointer: str, value: Any) -> bool:
    """Put ``value`` where ``pointer`` points, in place, if something is there already (the
    login fixture swaps the token for a masked Secret); False when nothing is there."""
    parent_pointer, _, last = pointer.rpartition("/")
    parent = resolve(document, parent_pointer)
    last = last.replace("~1", "/").replace("~0", "~")
    if not pointer:
        return False
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
        return True
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = value
        return True
    return False


@dataclass(frozen=True)
class Health:
    """A health answer judged against the contract: ``healthy`` only on evidence (the status
    at the pointer is an accepted value and every reported dependency is too)."""

    status: Any                     # the value at the status pointer (None if absent)
    dependencies: dict[str, Any]    # name -> its status as reported
    problems: tuple[str, ...]       # empty when healthy

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ApiContract:
    """Paths, fields and accepted values of the platform's API (defaults: the seed's)."""

    login_path: str = "/api/v1/auth/login"
    login_email_field: str = "email"
    login_password_field: str = "password"
    token_pointer: str = "/data/token"
    mailboxes_path: str = "/api/v1/mailboxes"
    mailboxes_pointer: str = "/data"
    health_path: str = "/health"
    health_status_pointer: str = "/status"
    health_ok: tuple[str, ...] = ("ok",)
    health_checks_pointer: str = "/checks"
    # "objects": {name: {<health_check_status_field>: value}}; "strings": {name: value}.
    health_checks_format: str = "objects"
    health_check_status_field: str = "status"

    @classmethod
    def from_section(cls, section: Mapping[str, Any] | Any) -> ApiContract:
        """The contract an ``[api]`` section describes (a profile Section or a plain dict);
        keys it does not set keep the seed's values."""
        get = section.get
        defaults = cls()
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = get(name, None)
            if value is not None:
                values[name] = tuple(value) if name == "health_ok" else value
        return cls(**{**defaults.__dict__, **values})

    def login_body(self, email: str, password: Any) -> dict[str, Any]:
        return {self.login_email_field: email, self.login_password_field: password}

    def token(self, body: Any) -> str | None:
        """The token a login answer carries, or None (absent, empty or not a string)."""
        token = resolve(body, self.token_pointer)
        return token if isinstance(token, str) and token else None

    def mailboxes(self, body: Any) -> list[Any] | None:
        """The mailbox list of a mailboxes answer, or None when there is no list there."""
        found = resolve(body, self.mailboxes_pointer)
        return found if isinstance(found, list) else None

    def judge_health(self, body: Any, *, need_checks: bool = True) -> Health:
        """Judge a parsed health answer. ``need_checks``: the answer must report its
        dependencies (post-deployment test 1); the smoke test and the periodic health check
        only need the overall status."""
        where = self.health_path
        status = resolve(body, self.health_status_pointer)
        problems: list[str] = []
        accepted = ", ".join(repr(v) for v in self.health_ok)
        if status is None:
            problems.append(f"{where}: no status at {self.health_status_pointer or '(root)'}")
        elif status not in self.health_ok:
            problems.append(f"{where}: status {status!r} at {self.health_status_pointer} "
                            f"is not one of {accepted}")
        checks = resolve(body, self.health_checks_pointer)
        dependencies: dict[str, Any] = {}
        if isinstance(checks, Mapping):
            for name, check in checks.items():
                dependencies[str(name)] = self._dependency_status(check)
        if need_checks:
            if not dependencies:
                problems.append(f"{where} does not report its dependencies (no "
                                f"{self.health_checks_format} at {self.health_checks_pointer})")
            bad = {name: value for name, value in dependencies.items()
                   if value not in self.health_ok}
            if bad:
                shape = (f"objects with a {self.health_check_status_field!r} field"
                         if self.health_checks_format == "objects" else "strings")
                unreadable = (f" (None: not {shape}, as the contract declares)"
                              if None in bad.values() else "")
                problems.append(f"{where} reports dependencies not in ({accepted}): "
                                f"{bad}{unreadable}")
        return Health(status, dependencies, tuple(problems))

    def _dependency_status(self, check: Any) -> Any:
        """One dependency's status in the declared format; None when it is not in that
        format (then it is not an accepted value: a shape we cannot read proves nothing)."""
        if self.health_checks_format == "strings":
            return check if isinstance(check, str) else None
        return check.get(self.health_check_status_field) if isinstance(check, Mapping) else None
