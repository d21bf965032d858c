"""Post-deployment test 9: monitoring is up — Prometheus healthy and ready, Grafana healthy."""
from __future__ import annotations

import pytest

from probes.http import http_client


@pytest.mark.service("prometheus")
@pytest.mark.requirement("SEED-POST-9")
@pytest.mark.parametrize("endpoint", ["/-/healthy", "/-/ready"])
def test_prometheus(target, timeouts, endpoint):
    with http_client(target("prometheus"), timeouts["http"]) as client:
        response = client.get(endpoint)
    assert response.status_code == 200, f"Prometheus {endpoint} answered {response.status_code}"


@pytest.mark.service("grafana")
@pytest.mark.requirement("SEED-POST-9")
def test_grafana_health(target, timeouts):
    with http_client(target("grafana"), timeouts["http"]) as client:
        response = client.get("/api/health")
    assert response.status_code == 200, f"Grafana /api/health answered {response.status_code}"
    assert response.json().get("database") == "ok", f"Grafana database: {response.json()}"
