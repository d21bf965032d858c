"""`python -m lab up` returns a lab the suites can use at once: no first run that fails because
Prometheus has not scraped yet, and a clear, bounded error when something never gets ready."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from lab import control
from lab.process import LabError
from lab.services import load
from tests import labctl


class _NeverReady:
    """A stand-in service (pure unit: the wait loop's bound and message, not a daemon)."""

    name = "stuck"

    def not_ready(self, running, changed, since):
        return "target api not scraped yet"


def test_up_then_monitoring_suite_passes_at_once(good_lab, tmp_path):
    """Prometheus restarted from nothing (its data kept): `up` waits for its first scrapes,
    so the monitoring suite run right after passes every check."""
    load("prometheus").stop()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab", "up"], cwd=labctl.REPO,
                          capture_output=True, text=True, timeout=120)
    up_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "prometheus: started" in proc.stdout, proc.stdout
    assert up_s < control.READY_TIMEOUT_S + 20, f"lab up took {up_s:.1f}s"
    run = labctl.run_suite("suites/monitoring", tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), run.messages()
    # every monitoring check but Grafana's (not part of the lab): Prometheus x4, alerting x3
    assert len(run.with_outcome("passed")) == 7, run.messages()


def test_readiness_wait_is_bounded_and_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(control, "READY_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(LabError, match=r"lab not ready after 0s: stuck: target api not scraped yet"):
        control._wait_ready([_NeverReady()], frozenset(), time.time())  # noqa: SLF001 - the wait alone
    assert time.monotonic() - started < 2


def test_prometheus_readiness_sees_a_target_not_rescraped(good_lab):
    """A service that just (re)started is not 'ready' on a scrape older than the restart."""
    prometheus = load("prometheus")
    running = frozenset(s.name for s in control.selected())
    assert prometheus.not_ready(running, frozenset(), time.time() - 60) is None
    why = prometheus.not_ready(running, frozenset({"api"}), time.time() + 60)
    assert why == "target api not scraped yet", why
