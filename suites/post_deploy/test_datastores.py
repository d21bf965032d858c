"""Post-deployment tests 2 and 3: PostgreSQL and Redis answer, and Redis wants a password."""
from __future__ import annotations

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


@pytest.mark.service("postgres")
@pytest.mark.requirement("SEED-POST-2")
def test_postgres_query(target, timeouts, record):
    section = target("postgres")
    with psycopg.connect(host=section["host"], port=section["port"], dbname=section["dbname"],
                         user=section["user"], password=section.secret("password"),
                         connect_timeout=int(timeouts["connect"])) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        version = conn.execute("SHOW server_version").fetchone()[0]
    record.measure("postgres_version", version)


def _redis(section, timeouts, password):
    # No retries: redis-py retries a refused command with back-off, which turns an
    # authentication refusal into seconds of waiting and adds nothing to the verdict.
    return redis.Redis(host=section["host"], port=section["port"], password=password,
                       socket_timeout=timeouts["connect"],
                       socket_connect_timeout=timeouts["connect"],
                       retry=Retry(NoBackoff(), 0))


@pytest.mark.service("redis")
@pytest.mark.requirement("SEED-POST-3")
def test_redis_ping_authenticated(target, timeouts):
    section = target("redis")
    client = _redis(section, timeouts, section.secret("password"))
    try:
        assert client.ping() is True
    finally:
        client.close()


@pytest.mark.service("redis")
@pytest.mark.requirement("SEC-REDIS-AUTH")
def test_redis_refuses_unauthenticated(target, timeouts):
    section = target("redis")
    client = _redis(section, timeouts, None)
    try:
        client.ping()
    except redis.AuthenticationError:
        return  # NOAUTH: the password is enforced
    except redis.ConnectionError as exc:
        # Not measured, so an *error* (could not run), never a pass or a plain failure.
        raise ConnectionError(f"Redis unreachable, cannot check authentication: {exc}") from exc
    finally:
        client.close()
    pytest.fail("Redis answered PING without a password")
