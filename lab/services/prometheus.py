"""Prometheus: scrapes the reference API, Alertmanager and itself every 2 s, evaluates the lab's
alert rules.

Rules cover what the seed's monitoring chapter asks for: a target down, and a served
certificate close to expiry (the seed's 30-day SSL alert). ``--web.enable-lifecycle`` makes
``reload`` a POST to ``/-/reload`` after ``promtool`` has checked the files.

The short scrape interval is for ``lab up``: it returns only once every target has been
scraped (see :meth:`Prometheus.not_ready`), and the first scrape of a target comes at a random
offset within one interval.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab import ports
from lab.process import LabError, log_tail, run, spawn, wait_port, write_if_changed
from lab.services.base import LabContext, PidfileService

OS_USER = "prometheus"
START_TIMEOUT = 15
BASE_URL = f"http://{ports.HOST}:{ports.PROMETHEUS}"
SCRAPE_INTERVAL_S = 2
# Scrape jobs, each named after the lab service it scrapes (readiness relies on that).
SCRAPE_JOBS = {"prometheus": ports.PROMETHEUS, "api": ports.API_BACKEND,
               "alertmanager": ports.ALERTMANAGER}
NEVER_SCRAPED = "0001-01-01T00:00:00Z"


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


def get_json(url: str) -> dict:
    """GET a JSON document (one second at most); LabError if there is none."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LabError(f"GET {url}: {exc}") from exc


def scraped_at(text: str) -> float | None:
    """Epoch seconds of a Prometheus ``lastScrape`` (RFC 3339 with nanoseconds, which
    ``fromisoformat`` does not take: cut to microseconds); None if never scraped."""
    match = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text or "")
    if match is None or text.startswith(NEVER_SCRAPED[:4]):
        return None
    head, fraction, zone = match.groups()
    return dt.datetime.fromisoformat(head + (fraction or "")[:7] + zone).timestamp()


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
  scrape_interval: {SCRAPE_INTERVAL_S}s
  scrape_timeout: {SCRAPE_INTERVAL_S}s
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
""" + "".join(f"""\
  - job_name: {job}
    static_configs:
      - targets: ["{host}:{port}"]
""" for job, port in SCRAPE_JOBS.items())

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

    def not_ready(self, running: frozenset[str], changed: frozenset[str],
                  since: float) -> str | None:
        """Ready means what the monitoring suite reads is already true: every target scraped
        (up when its service runs; scraped after ``since`` when its service just started or
        stopped, so its health is the current one), the rule file loaded, and Alertmanager in
        Prometheus' active list when it runs."""
        try:
            targets = get_json(f"{BASE_URL}/api/v1/targets?state=active")["data"]["activeTargets"]
            groups = get_json(f"{BASE_URL}/api/v1/rules?type=alert")["data"]["groups"]
            managers = get_json(f"{BASE_URL}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        except (LabError, KeyError, TypeError) as exc:
            return f"API not answering: {exc}"
        pending = []
        seen = {t.get("labels", {}).get("job") for t in targets}
        pending += [f"target {job} not discovered" for job in SCRAPE_JOBS if job not in seen]
        for target in targets:
            job = target.get("labels", {}).get("job", "?")
            at = scraped_at(target.get("lastScrape", ""))
            if at is None or (job in changed and at < since):
                pending.append(f"target {job} not scraped yet")
            elif job in running and target.get("health") != "up":
                pending.append(f"target {job} {target.get('health')}: "
                               f"{target.get('lastError') or 'no error text'}")
        loaded = sum(len(group.get("rules", [])) for group in groups)
        if loaded < RULES.count("- alert:"):
            pending.append(f"{loaded} of {RULES.count('- alert:')} alert rules loaded")
        if "alertmanager" in running and not managers:
            pending.append("no active Alertmanager")
        return "; ".join(pending) or None



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
