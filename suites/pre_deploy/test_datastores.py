"""Checklist item 6: PostgreSQL accepts the application's credentials and answers a query.

The backup taken right after this checklist needs the same connection (pg_dump).
"""
from __future__ import annotations

import pytest

from plugins import backups


@pytest.mark.service("postgres")
@pytest.mark.requirement("SEED-TECH-6")
def test_postgres_reachable(env_profile, timeouts, record):
    with backups.pg_connect(env_profile, timeouts["connect"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        record.measure("postgres server version", conn.info.server_version)
