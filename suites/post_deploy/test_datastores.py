"""Post-deployment tests 2 and 3: PostgreSQL and Redis answer, and Redis wants a password."""
from __future__ import annotations

import pytest

from probes import postgres
from probes import redis as redis_probe


@pytest.mark.service("postgres")
@pytest.mark.requirement("SEED-POST-2")
def test_postgres_query(target, timeouts, record):
    one, (version,) = postgres.fetch(target("postgres"), timeouts["connect"],
                                     "SELECT 1", "SHOW server_version")
    assert one == (1,)
    record.measure("postgres_version", version)


@pytest.mark.service("redis")
@pytest.mark.requirement("SEED-POST-3")
def test_redis_ping_authenticated(target, timeouts):
    with redis_probe.client_for(target("redis"), timeouts["connect"]) as client:
        assert redis_probe.ping(client, timeouts["connect"]) is True


@pytest.mark.service("redis")
@pytest.mark.requirement("SEC-REDIS-AUTH")
def test_redis_refuses_unauthenticated(target, timeouts):
    # Unreachable is could-not-run (an *error*) from the probe, never a pass or a failure.
    with redis_probe.client_for(target("redis"), timeouts["connect"],
                                authenticate=False) as client:
        assert redis_probe.requires_password(client, timeouts["connect"]), (
            "Redis answered PING without a password")
