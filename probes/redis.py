"""Redis exchanges (connect, AUTH, PING, INFO) under one wall-clock deadline, never retried.

redis-py retries with exponential back-off by default (redis-py 6+: three retries on
connection errors and time-outs), which turned a tarpit with a 5 s time-out into a 59 s
check. Clients made here never retry (``Retry(NoBackoff(), 0)``), take their socket time-outs
from the deadline, and every step runs under :func:`probes.deadline.deadline`, so a server that
accepts and says nothing, or answers garbage, ends the check within the deadline.

A password Redis refuses (``AuthenticationError``, WRONGPASS) is an answer, not an outage:
it propagates for the caller to judge. Unreachable, refused, DNS, time-out and a reply that is
not the protocol become :class:`~probes.errors.CouldNotRun` naming ``host:port`` and the step.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from probes.deadline import Deadline, deadline
from probes.errors import CouldNotRun

T = TypeVar("T")

# The library's "could not measure" exceptions: AuthenticationError (a ConnectionError
# subclass) is not among them, see _step.
# ValueError: redis-py's parser reading garbage where a reply length should be.
UNREACHABLE: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError,
                                                 redis.exceptions.InvalidResponse, ValueError)


class _WatchedConnection(redis.Connection):
    """redis-py's connection, handing its socket to the running step's deadline before every
    read (AUTH included), so the watchdog can cut a trickling server outside the main thread."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        current: Deadline | None = getattr(_ACTIVE, "deadline", None)
        if current is not None:
            current.watch(self._sock)
        return super().read_response(*args, **kwargs)


_ACTIVE = threading.local()


def client(host: str, port: int, password: str | None, timeout_s: float) -> redis.Redis:
    """A client that never retries; its reads and connection are bounded by ``timeout_s``.
    (With a pool given, redis-py takes the retry policy from the pool's connections.)"""
    pool = redis.ConnectionPool(connection_class=_WatchedConnection, host=host, port=port,
                                password=password, socket_timeout=timeout_s,
                                socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
    return redis.Redis.from_pool(pool)


def client_for(section: Any, timeout_s: float, authenticate: bool = True) -> redis.Redis:
    """:func:`client` for a profile's ``[redis]``; without ``authenticate`` (or without a
    ``password_env``) no password is sent."""
    password = (section.secret("password")
                if authenticate and "password_env" in section else None)
    return client(section["host"], section["port"], password, timeout_s)


def endpoint_of(conn: redis.Redis) -> str:
    kwargs = conn.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def _step(conn: redis.Redis, step: str, timeout_s: float, call: Callable[[], T]) -> T:
    endpoint = endpoint_of(conn)
    try:
        with deadline(timeout_s, endpoint, step) as current:
            _ACTIVE.deadline = current
            try:
                return call()
            finally:
                _ACTIVE.deadline = None
    except redis.AuthenticationError:
        raise
    except UNREACHABLE as exc:
        raise CouldNotRun(endpoint, step, f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def ping(conn: redis.Redis, timeout_s: float) -> bool:
    """Connect (AUTH when the client has a password) and PING, within ``timeout_s``."""
    return bool(_step(conn, "AUTH+PING", timeout_s, conn.ping))


def info(conn: redis.Redis, timeout_s: float, section: str | None = None) -> dict[str, Any]:
    """``INFO [section]`` within ``timeout_s``."""
    return _step(conn, f"INFO {section or ''}".strip(), timeout_s,
                 lambda: conn.info(section) if section else conn.info())


def requires_password(conn: redis.Redis, timeout_s: float) -> bool:
    """PING *without* a password: True when Redis refuses it (NOAUTH), False when it answers.

    ``conn`` must have been made without a password. Unreachable: :class:`CouldNotRun`, so the
    question "does it need a password?" is never answered from silence.
    """
    try:
        _step(conn, "PING without password", timeout_s, conn.ping)
    except redis.AuthenticationError:       # redis-py's reading of "-NOAUTH ..."
        return True
    return False
