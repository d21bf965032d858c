"""``python -m plugins.healthcheck``: the seed's cron health check, run as a user runs it.

Healthy on the good lab, "degraded" when the API is down, an alert really posted to the lab's
Alertmanager (and read back from it) when errors reach the threshold, and a failed alert
recorded rather than lost.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from probes.monitoring import alerts
from tests.labctl import REPO
from tests.profile_variants import lab_variant

ALERTMANAGER = "http://127.0.0.1:10093"
# Service addresses of the lab profile, each replaced by a closed port to make it fail.
DEAD_SERVICES = {'url = "https://localhost:10443"': 'url = "https://localhost:9"',
                 'url = "https://localhost:10444"': 'url = "https://localhost:9"',
                 '[smtp.submission]\nhost = "localhost"\nport = 10587':
                     '[smtp.submission]\nhost = "localhost"\nport = 9',
                 '[imap]\nhost = "localhost"\nport = 10143': '[imap]\nhost = "localhost"\nport = 9'}


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugins.healthcheck", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_good_lab_is_healthy(good_lab, tmp_path):
    output = tmp_path / "health-status.json"
    proc = healthcheck("--env", "lab", "--output", str(output))
    status = json.loads(output.read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (status["status"], status["errors"]) == ("healthy", 0), status
    assert dt.datetime.fromisoformat(status["timestamp"]).tzinfo is not None
    assert [s["service"] for s in status["services"]] == ["API", "Frontend", "SMTP", "IMAP"]
    assert all(s["ok"] for s in status["services"]), status
    assert status["alert"] is None


def test_api_down_is_degraded(lab_fault, tmp_path):
    lab_fault("api-down")
    output = tmp_path / "health-status.json"
    proc = healthcheck("--env", "lab", "--output", str(output))
    status = json.loads(output.read_text())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (status["status"], status["errors"]) == ("degraded", 1), status
    api = status["services"][0]
    assert api["service"] == "API" and api["ok"] is False and "502" in api["detail"], api
    assert status["alert"] is None, "1 error is under the default threshold of 3"
    assert "API: ERREUR" in proc.stdout


def test_alert_posted_when_errors_reach_threshold(good_lab, tmp_path):
    """Four services unreachable (profile pointing at closed ports) ≥ 3: a real alert."""
    name = f"hc-{uuid.uuid4().hex[:8]}"
    profile = lab_variant(tmp_path, name, DEAD_SERVICES)
    output = tmp_path / "health-status.json"
    proc = healthcheck("--env", str(profile), "--output", str(output))
    status = json.loads(output.read_text())
    assert proc.returncode == 1
    assert (status["status"], status["errors"]) == ("degraded", 4), status
    assert status["alert"]["sent"] is True, status["alert"]
    assert "Alerte envoyée" in proc.stdout
    with httpx.Client(base_url=ALERTMANAGER, timeout=5) as client:
        received = alerts(client, environment=name, source="mssante-check-healthcheck")
    assert len(received) == 1, received
    assert received[0]["labels"]["alertname"] == "ServiceDown"
    assert received[0]["annotations"]["summary"] == "4 services en erreur: API, Frontend, SMTP, IMAP"


def test_threshold_and_output_from_profile(tmp_path):
    profile = lab_variant(tmp_path, "hc-profile-threshold", DEAD_SERVICES,
                          extra='[healthcheck]\nerror_threshold = 5\noutput = "status/hs.json"\n')
    proc = healthcheck("--env", str(profile))
    status = json.loads((tmp_path / "status" / "hs.json").read_text())
    assert proc.returncode == 1
    assert (status["errors"], status["alert_threshold"], status["alert"]) == (4, 5, None)


def test_unreachable_alertmanager_is_recorded(tmp_path):
    profile = lab_variant(tmp_path, "hc-no-alertmanager", {
        **DEAD_SERVICES, 'url = "http://127.0.0.1:10093"': 'url = "http://127.0.0.1:9"'})
    output = tmp_path / "health-status.json"
    proc = healthcheck("--env", str(profile), "--output", str(output), "--threshold", "1")
    status = json.loads(output.read_text())
    assert proc.returncode == 1
    assert status["alert"]["sent"] is False and "ConnectError" in status["alert"]["error"]
    assert "alerte NON envoyée" in proc.stderr


def test_usage_errors_are_one_line():
    proc = healthcheck()
    assert proc.returncode == 2 and "no environment: pass --env NAME" in proc.stderr
    proc = healthcheck("--env", "nowhere")
    assert proc.returncode == 4                  # a bad profile: as pytest, exit 4
    assert proc.stderr.count("\n") == 1 and "nowhere.toml" in proc.stderr


def _pointed_at(target, alertmanager) -> dict[str, str]:
    """Every service of the lab profile, and Alertmanager, at hostile loopback servers."""
    where = f'host = "{target.host}"\nport = {target.port}'
    return {'url = "https://localhost:10443"': f'url = "{target.url}"',
            'url = "https://localhost:10444"': f'url = "{target.url}"',
            '[smtp.submission]\nhost = "localhost"\nport = 10587': f"[smtp.submission]\n{where}",
            '[imap]\nhost = "localhost"\nport = 10143': f"[imap]\n{where}",
            'url = "http://127.0.0.1:10093"': f'url = "{alertmanager.url}"'}


@pytest.mark.parametrize("kind", ["tarpit", "http-header-trickle"])
def test_hostile_targets_end_in_time_with_a_status_file(hostile, tmp_path, kind):
    """Silent or trickling targets, and a silent Alertmanager: each probe and the alert post
    are cut at their deadline (5 s in the lab profile), the status file is written."""
    profile = lab_variant(tmp_path, f"hc-{kind}", _pointed_at(hostile(kind), hostile("tarpit")))
    output = tmp_path / "health-status.json"
    started = time.monotonic()
    proc = healthcheck("--env", str(profile), "--output", str(output), "--threshold", "1")
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"health check took {elapsed:.1f}s"
    status = json.loads(output.read_text())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (status["status"], status["errors"]) == ("degraded", 4), status
    assert not any(s["ok"] for s in status["services"]), status["services"]
    assert all("could not run" in s["detail"] for s in status["services"]), status["services"]
    assert status["alert"]["sent"] is False
    assert "no complete answer within 5 s" in status["alert"]["error"], status["alert"]
