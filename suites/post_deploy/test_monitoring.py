"""Post-deployment test 9: monitoring is up — Prometheus healthy and ready, sending its alerts
to the profile's Alertmanager, which answers ready; Grafana healthy."""
from __future__ import annotations

import pytest

from probes.http import http_client
from probes.monitoring import alerting_problem


@pytest.mark.service("prometheus")
@pytest.mark.requirement("SEED-POST-9")
@pytest.mark.parametrize("endpoint", ["/-/healthy", "/-/ready"])
def test_prometheus(target, timeouts, endpoint):
    with http_client(target("prometheus"), timeouts["http"]) as client:
        response = client.get(endpoint)
    assert response.status_code == 200, f"Prometheus {endpoint} answered {response.status_code}"


@pytest.mark.service("prometheus", "alertmanager")
@pytest.mark.requirement("SEED-POST-9")
def test_alerts_reach_the_profiles_alertmanager(target, timeouts, record):
    """Prometheus' active Alertmanager is the profile's and answers /-/ready (listing one is
    not enough: a down Alertmanager stays listed)."""
    manager = target("alertmanager")
    with http_client(target("prometheus"), timeouts["http"]) as prometheus, \
            http_client(manager, timeouts["http"]) as alertmanager:
        active, problem = alerting_problem(prometheus, alertmanager, manager["url"])
    record.measure("prometheus_alertmanagers", ", ".join(active) or "none")
    assert problem is None, problem


@pytest.mark.service("grafana")
@pytest.mark.requirement("SEED-POST-9")
def test_grafana_health(target, timeouts):
    with http_client(target("grafana"), timeouts["http"]) as client:
        response = client.get("/api/health")
    assert response.status_code == 200, f"Grafana /api/health answered {response.status_code}"
    assert response.json().get("database") == "ok", f"Grafana database: {response.json()}"
