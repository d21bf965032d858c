"""Alerts reach someone: Alertmanager answers and Prometheus actually sends to it.

The seed routes critical alerts through Alertmanager; an Alertmanager that is up but not
wired to Prometheus receives nothing, so both ends are checked.
"""
from __future__ import annotations

import pytest

from probes.monitoring import active_alertmanagers, alertmanager_status

pytestmark = [pytest.mark.requirement("SEED-MON-ALERTMANAGER")]


@pytest.mark.service("alertmanager")
def test_alertmanager_ready_with_configuration(alertmanager, record):
    response = alertmanager.get("/-/ready")
    assert response.status_code == 200, f"Alertmanager /-/ready answered {response.status_code}"
    status = alertmanager_status(alertmanager)
    record.measure("alertmanager_version", status.get("versionInfo", {}).get("version", "?"))
    assert (status.get("config") or {}).get("original"), "Alertmanager reports no loaded configuration"


@pytest.mark.service("prometheus", "alertmanager")
def test_prometheus_sends_alerts_to_alertmanager(prometheus, target):
    target("alertmanager")  # not configured → skipped: nothing to be wired to
    urls = active_alertmanagers(prometheus)
    assert urls, "Prometheus has no active Alertmanager: its alerts go nowhere"
