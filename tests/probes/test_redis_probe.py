"""probes.redis: AUTH/PING/INFO under one deadline, one connection attempt, no back-off.

Against the hostile bench PING ends as CouldNotRun naming host:port and the step within the
deadline + 1 s, in the main thread and in a worker thread, after exactly one connection (no
retry); "does Redis need a password?" is never answered from silence; on the good lab PING
with the password answers, without it is refused, and a wrong password is a refusal, not an
outage.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from plugins import profile as profiles
from probes import redis as redis_probe
from probes.errors import CouldNotRun
from tests.support.hostile import HostileServer

DEADLINE_S = 2.0


def _ping(target, password: str | None = "not-the-password") -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        with redis_probe.client(target.host, target.port, password, DEADLINE_S) as client:
            if password is None:
                redis_probe.requires_password(client, DEADLINE_S)
            else:
                redis_probe.ping(client, DEADLINE_S)
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever came out
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _assert_could_not_run(target, elapsed: float, exc: BaseException | None, step: str) -> None:
    assert isinstance(exc, CouldNotRun), f"{target.kind}: {type(exc).__name__}: {exc}"
    assert elapsed < DEADLINE_S + 1, f"{target.kind}: {elapsed:.1f}s"
    assert (exc.endpoint, exc.step) == (target.address, step), exc


@pytest.mark.parametrize("kind", ["closed", "tarpit", "garbage", "smtp-slow-banner"])
def test_hostile_server_is_could_not_run_within_deadline(hostile, kind):
    target = hostile(kind)
    _assert_could_not_run(target, *_ping(target), "AUTH+PING")


@pytest.mark.parametrize("kind", ["tarpit", "garbage"])
def test_password_question_is_never_answered_from_silence(hostile, kind):
    target = hostile(kind)
    _assert_could_not_run(target, *_ping(target, password=None), "PING without password")


@pytest.mark.parametrize("kind", ["tarpit", "smtp-slow-banner"])
def test_bounded_outside_the_main_thread(hostile, kind):
    target = hostile(kind)
    outcome: list[tuple[float, BaseException | None]] = []
    worker = threading.Thread(target=lambda: outcome.append(_ping(target)), daemon=True)
    worker.start()
    worker.join(DEADLINE_S + 5)
    assert outcome, "PING was still running in its thread"
    _assert_could_not_run(target, *outcome[0], "AUTH+PING")


def test_tarpit_is_tried_once():
    """redis-py 6+ retries three times with back-off by default; the probe never does."""
    server = HostileServer("tarpit")
    with server as target:
        elapsed, exc = _ping(target)
        time.sleep(0.3)                  # a retry would have connected again by now
        assert server.accepted == 1, f"{server.accepted} connections"
    assert isinstance(exc, CouldNotRun) and elapsed < DEADLINE_S + 1


@pytest.fixture
def lab_redis(good_lab):
    return profiles.load("lab").section("redis")


def test_good_lab_ping_info_and_password_enforced(lab_redis):
    with redis_probe.client_for(lab_redis, 5) as client:
        assert redis_probe.ping(client, 5) is True
        assert redis_probe.info(client, 5, "server")["redis_version"]
    with redis_probe.client_for(lab_redis, 5, authenticate=False) as client:
        assert redis_probe.requires_password(client, 5) is True


def test_wrong_password_is_a_refusal_not_an_outage(lab_redis):
    with redis_probe.client(lab_redis["host"], lab_redis["port"], "wrong-password-mssante-check",
                            DEADLINE_S) as client:
        with pytest.raises(redis.AuthenticationError):
            redis_probe.ping(client, DEADLINE_S)
