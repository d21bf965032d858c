"""Prometheus: scrapes the reference API and itself every 5 s, evaluates the lab's alert rules.

Rules cover what the seed's monitoring chapter asks for: a target down, and a served
certificate close to expiry (the seed's 30-day SSL alert). ``--web.enable-lifecycle`` makes
``reload`` a POST to ``/-/reload`` after ``promtool`` has checked the files.
"""
from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab import ports
from lab.process import (LabError, log_tail, run, spawn, wait_port,
                         write_if_changed)
from lab.services.base import LabContext, PidfileService

OS_USER = "prometheus"
START_TIMEOUT = 15
BASE_URL = f"http://{ports.HOST}:{ports.PROMETHEUS}"


def wait_ready(url: str, timeout: float) -> bool:
    """Poll an HTTP readiness endpoint (``/-/ready``) until it answers 200 or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def post(url: str) -> None:
    """POST with an empty body (the lifecycle reload endpoints); LabError unless 200."""
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise LabError(f"POST {url} failed: {exc}") from exc


class Prometheus(PidfileService):
    name = "prometheus"
    ports = {"prometheus": ports.PROMETHEUS}
    packages = ("prometheus",)
    commands = ("prometheus", "promtool")

    @property
    def conf(self) -> Path:
        return self.dir / "prometheus.yml"

    @property
    def pidfile(self) -> Path:
        return self.dir / "prometheus.pid"

    @property
    def log(self) -> Path:
        return self.dir / "prometheus.log"

    def wanted(self, ctx: LabContext) -> bool:
        return not ctx.has("prometheus-down")

    def configure(self, ctx: LabContext) -> bool:
        changed = write_if_changed(self.conf, self._config(), 0o644)
        changed |= write_if_changed(self.dir / "rules.yml", RULES, 0o644)
        return changed

    def _config(self) -> str:
        host = ports.HOST
        return f"""\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` (POST /-/reload).
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
  external_labels:
    environment: lab

rule_files:
  - {self.dir / "rules.yml"}

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{host}:{ports.ALERTMANAGER}"]

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["{host}:{ports.PROMETHEUS}"]
  - job_name: api
    metrics_path: /metrics
    static_configs:
      - targets: ["{host}:{ports.API_BACKEND}"]
  - job_name: alertmanager
    static_configs:
      - targets: ["{host}:{ports.ALERTMANAGER}"]
"""

    def _check(self) -> None:
        result = run(["promtool", "check", "config", str(self.conf)], timeout=30, check=False)
        if result.returncode != 0:
            message = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise LabError(f"prometheus configuration is invalid: {message}")

    def start(self, ctx: LabContext) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, OS_USER, OS_USER)
        self._check()
        spawn(["prometheus", f"--config.file={self.conf}", f"--storage.tsdb.path={data}",
               f"--web.listen-address={ports.HOST}:{ports.PROMETHEUS}",
               "--web.enable-lifecycle", "--storage.tsdb.retention.time=7d",
               "--log.level=warn"], self.log, self.pidfile, user=OS_USER, cwd=self.dir)
        if not (wait_port(ports.PROMETHEUS, START_TIMEOUT)
                and wait_ready(f"{BASE_URL}/-/ready", START_TIMEOUT)):
            self.stop()
            raise LabError(f"prometheus did not become ready: {log_tail(self.log)}")

    def reload(self) -> None:
        self._check()
        post(f"{BASE_URL}/-/reload")



RULES = """\
# Rendered by `python -m lab up`. Alert rules of the lab (the seed's "Alertes critiques").
groups:
  - name: mssante-lab
    rules:
      - alert: ServiceDown
        expr: up == 0
        for: 15s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.job }} ({{ $labels.instance }}) does not answer its scrape"
      - alert: CertificateExpiringSoon
        expr: mssante_certificate_expiry_timestamp_seconds - time() < 30 * 86400
        labels:
          severity: warning
        annotations:
          summary: "cert on {{ $labels.endpoint }} expires in {{ $value | humanizeDuration }}"
      - alert: CertificateExpired
        expr: mssante_certificate_expiry_timestamp_seconds - time() <= 0
        labels:
          severity: critical
        annotations:
          summary: "certificate on {{ $labels.endpoint }} has expired"
      - alert: ApiHighErrorRate
        expr: >
          sum(rate(http_requests_total{job="api",status=~"5.."}[1m]))
          / sum(rate(http_requests_total{job="api"}[1m])) > 0.05
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "more than 5% of API requests fail with 5xx"
"""
