"""Grafana, where the profile declares one: the seed's dashboards need its database."""
from __future__ import annotations

import pytest

from probes.monitoring import grafana_health


@pytest.mark.service("grafana")
@pytest.mark.requirement("SEED-MON-GRAFANA")
def test_grafana_healthy(grafana, record):
    health = grafana_health(grafana)
    record.measure("grafana_version", health.get("version", "?"))
    assert health.get("database") == "ok", f"Grafana database is {health.get('database')!r}"
