"""Checklist item 6: PostgreSQL accepts the application's credentials and answers a query.

The backup taken right after this checklist needs the same connection (pg_dump).
"""
from __future__ import annotations

import pytest

from probes import postgres


@pytest.mark.service("postgres")
@pytest.mark.requirement("SEED-TECH-6")
def test_postgres_reachable(env_profile, timeouts, record):
    one, (version,) = postgres.fetch(env_profile.section("postgres"), timeouts["connect"],
                                     "SELECT 1", "SHOW server_version_num")
    assert one == (1,)
    record.measure("postgres server version", int(version))
