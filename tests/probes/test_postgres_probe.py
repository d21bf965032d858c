"""probes.postgres: connection and queries under one deadline, libpq's time-out never 0.

Against the hostile bench a connection ends as CouldNotRun naming host:port and the step
within the deadline + 1 s (also in a worker thread, where libpq's own connect_timeout is the
bound); on the good lab a query answers, carries the statement_timeout, and a query slower
than the deadline is cut.
"""
from __future__ import annotations

import threading
import time

import pytest

from plugins import profile as profiles
from probes import postgres
from probes.errors import CouldNotRun

DEADLINE_S = 2.0


@pytest.mark.parametrize(("seconds", "expected"), [(0.5, 1), (1, 1), (2.1, 3), (5, 5)])
def test_connect_timeout_rounds_up_never_zero(seconds, expected):
    assert postgres.connect_timeout(seconds) == expected


def test_statement_timeout_in_ms():
    assert postgres.statement_timeout_ms(0.5) == 500
    assert postgres.statement_timeout_ms(5) == 5000


def _connect(target) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        postgres.connect(target.host, target.port, "mssante", "mssante", "not-a-password",
                         DEADLINE_S).close()
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever came out
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _assert_could_not_run(target, elapsed: float, exc: BaseException | None) -> None:
    assert isinstance(exc, CouldNotRun), f"{target.kind}: {type(exc).__name__}: {exc}"
    assert elapsed < DEADLINE_S + 1, f"{target.kind}: {elapsed:.1f}s"
    assert (exc.endpoint, exc.step) == (target.address, "connect"), exc


@pytest.mark.parametrize("kind", ["closed", "tarpit", "garbage", "smtp-slow-banner"])
def test_hostile_server_is_could_not_run_within_deadline(hostile, kind):
    target = hostile(kind)
    _assert_could_not_run(target, *_connect(target))


@pytest.mark.parametrize("kind", ["tarpit", "smtp-slow-banner"])
def test_bounded_outside_the_main_thread(hostile, kind):
    target = hostile(kind)
    outcome: list[tuple[float, BaseException | None]] = []
    worker = threading.Thread(target=lambda: outcome.append(_connect(target)), daemon=True)
    worker.start()
    worker.join(DEADLINE_S + 5)
    assert outcome, "the connection was still running in its thread"
    _assert_could_not_run(target, *outcome[0])


@pytest.fixture
def lab_postgres(good_lab):
    return profiles.load("lab").section("postgres")


def test_good_lab_answers_with_a_statement_timeout(lab_postgres):
    started = time.monotonic()
    rows = postgres.fetch(lab_postgres, 5, "SELECT 1", "SHOW statement_timeout")
    assert rows == [(1,), ("5s",)]
    assert time.monotonic() - started < 5


def test_query_slower_than_the_deadline_is_cut(lab_postgres):
    started = time.monotonic()
    with pytest.raises(CouldNotRun) as caught:
        postgres.fetch(lab_postgres, DEADLINE_S, "SELECT pg_sleep(30)")
    assert time.monotonic() - started < DEADLINE_S + 1
    assert caught.value.endpoint == f"{lab_postgres['host']}:{lab_postgres['port']}"
    assert caught.value.step == "query", caught.value


def test_wrong_password_is_could_not_run_at_connect(lab_postgres):
    with pytest.raises(CouldNotRun) as caught:
        postgres.connect(lab_postgres["host"], lab_postgres["port"], lab_postgres["dbname"],
                         lab_postgres["user"], "wrong-password-mssante-check", DEADLINE_S)
    assert caught.value.step == "connect" and "password authentication failed" in str(caught.value)
