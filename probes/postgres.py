"""PostgreSQL connections and queries under one wall-clock deadline, never retried.

libpq's ``connect_timeout`` is a whole number of seconds and reads ``0`` as "wait forever"
(``int(0.5)`` gave psycopg's 130 s default), and a query has no client-side bound at all. So:

- ``connect_timeout`` is the deadline rounded *up* to an integer of at least 1;
- every session carries a server-side ``statement_timeout`` of the deadline, so a query the
  server cannot finish is cancelled by the server itself;
- the connection and each query run under :func:`probes.deadline.deadline`, which also cuts a
  server that accepts and then says nothing, or trickles its answer.

Unreachable, refused, DNS, authentication refused, garbage instead of the protocol, time-outs:
:class:`~probes.errors.CouldNotRun` naming ``host:port`` and the step (``connect``, ``query``).
"""
from __future__ import annotations

import math
from typing import Any

import psycopg

from probes.deadline import deadline
from probes.errors import CouldNotRun

# The library's "could not measure" exceptions (refused, DNS, authentication, time-outs, a
# statement cancelled by statement_timeout, garbage instead of the protocol).
UNREACHABLE: tuple[type[BaseException], ...] = (psycopg.OperationalError,)


def connect_timeout(seconds: float) -> int:
    """libpq's ``connect_timeout`` for a deadline: whole seconds, rounded up, never 0."""
    return max(1, math.ceil(seconds))


def statement_timeout_ms(seconds: float) -> int:
    """The server-side bound on one statement, in ms (``0`` would mean "no limit")."""
    return max(1, math.ceil(seconds * 1000))


def endpoint_of(host: str, port: int) -> str:
    return f"{host}:{port}"


def connect(host: str, port: int, dbname: str, user: str, password: str | None,
            timeout_s: float, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection opened within ``timeout_s``, its statements bounded by the same time."""
    endpoint = endpoint_of(host, port)
    params = {"host": host, "port": port, "dbname": dbname, "user": user, "password": password,
              "connect_timeout": connect_timeout(timeout_s),
              "options": f"-c statement_timeout={statement_timeout_ms(timeout_s)}", **kwargs}
    try:
        with deadline(timeout_s, endpoint, "connect"):
            return psycopg.connect(**params)
    except UNREACHABLE as exc:
        raise CouldNotRun(endpoint, "connect", _one_line(exc)) from exc


def connect_section(section: Any, timeout_s: float) -> psycopg.Connection[Any]:
    """:func:`connect` to a profile's ``[postgres]`` (password from its ``password_env``)."""
    password = section.secret("password") if "password_env" in section else None
    return connect(section["host"], section["port"], section["dbname"], section["user"],
                   password, timeout_s)


def query_one(conn: psycopg.Connection[Any], query: str,
              timeout_s: float) -> tuple[Any, ...] | None:
    """The first row of ``query`` (a constant query of the check, never built from input),
    within ``timeout_s``."""
    endpoint = endpoint_of(conn.info.host, conn.info.port)
    try:
        with deadline(timeout_s, endpoint, "query"):
            return conn.execute(query).fetchone()
    except CouldNotRun:
        conn.close()            # the query is still in progress: nothing more can be asked
        raise
    except UNREACHABLE as exc:
        conn.close()
        raise CouldNotRun(endpoint, "query", _one_line(exc)) from exc


def fetch(section: Any, timeout_s: float, *queries: str) -> list[tuple[Any, ...] | None]:
    """Connect to ``[postgres]``, run each constant query, close: one exchange under one
    deadline of ``timeout_s`` (each step gets what is left, and a time-out names the step it
    cut)."""
    endpoint = endpoint_of(section["host"], section["port"])
    with deadline(timeout_s, endpoint, "connect") as current:
        with connect_section(section, current.remaining()) as conn:
            rows = []
            for query in queries:
                current.step = "query"
                rows.append(query_one(conn, query, current.remaining()))
            return rows


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'no detail'}"
