"""Alerts reach someone: Alertmanager answers, Prometheus sends to *that* Alertmanager, and an
alert posted to it is there to be read.

The seed routes critical alerts through Alertmanager. Prometheus listing "an Alertmanager"
proves nothing: it keeps listing one that is down, or one that is not the operator's. So the
wiring check needs Prometheus' active list to hold the profile's ``[alertmanager] url`` (same
host and port) and that Alertmanager to answer ``/-/ready``; Prometheus sending to an
Alertmanager that does not answer is a *failure* of the platform's alerting, not a check that
could not run. With ``[alertmanager] test_alert = true`` (opt-in, like the health check's
alert: it is visible in the operator's Alertmanager for a minute) a uniquely labelled alert is
posted and must be listed back by ``/api/v2/alerts``; it ends by itself (``endsAt``).
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from plugins.outcomes import wait_until
from probes.monitoring import alerting_problem, alertmanager_status, alerts, post_alert

pytestmark = [pytest.mark.requirement("SEED-MON-ALERTMANAGER")]
TEST_ALERT = "MssanteCheckTestAlert"
TEST_ALERT_LIFETIME = dt.timedelta(minutes=1)
TEST_ALERT_WAIT_S = 5


@pytest.mark.service("alertmanager")
def test_alertmanager_ready_with_configuration(alertmanager, record):
    response = alertmanager.get("/-/ready")
    assert response.status_code == 200, f"Alertmanager /-/ready answered {response.status_code}"
    status = alertmanager_status(alertmanager)
    record.measure("alertmanager_version", status.get("versionInfo", {}).get("version", "?"))
    assert (status.get("config") or {}).get("original"), (
        "Alertmanager reports no loaded configuration")


@pytest.mark.service("prometheus", "alertmanager")
def test_prometheus_sends_alerts_to_alertmanager(prometheus, alertmanager, target, record):
    url = target("alertmanager")["url"]   # not configured → skipped: nothing to be wired to
    active, problem = alerting_problem(prometheus, alertmanager, url)
    record.measure("prometheus_alertmanagers", ", ".join(active) or "none")
    assert problem is None, problem


@pytest.mark.service("alertmanager")
def test_test_alert_reaches_alertmanager(alertmanager, target, env_profile, record):
    """A uniquely labelled alert posted now is listed by Alertmanager (opt-in)."""
    section = target("alertmanager")
    if not section.get("test_alert", False):
        pytest.skip(f"not enabled in {env_profile.name}: [alertmanager] test_alert = true "
                    "posts a test alert (visible to the operator for a minute)")
    marker = uuid.uuid4().hex
    labels = {"alertname": TEST_ALERT, "severity": "none", "mssante_check_id": marker,
              "environment": env_profile.name}
    now = dt.datetime.now(dt.UTC)
    post_alert(alertmanager, labels,
               {"summary": "mssante-check test alert: ignore, it resolves by itself"},
               now, now + TEST_ALERT_LIFETIME)
    seen = wait_until(lambda: alerts(alertmanager, mssante_check_id=marker),
                      timeout=TEST_ALERT_WAIT_S, interval=0.5)
    record.measure("test_alert", f"{TEST_ALERT} mssante_check_id={marker}")
    assert seen.ok, (f"test alert {TEST_ALERT} (mssante_check_id={marker}) accepted by "
                     f"{section['url']} but not listed in /api/v2/alerts within "
                     f"{TEST_ALERT_WAIT_S} s: {seen.summary()}")
