"""Alertmanager: receives the lab Prometheus' alerts; routes them to a null receiver.

The seed routes alerts to e-mail, PagerDuty and Slack; the lab has none of those, so the
route tree keeps the seed's grouping but ends in a receiver that sends nothing. Alerts are
still visible in Alertmanager's API, which is what the monitoring suite checks. Clustering
is disabled (``--cluster.listen-address=``): one instance, no gossip port.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from lab import ports
from lab.process import LabError, log_tail, run, spawn, wait_port, write_if_changed
from lab.services.base import LabContext, PidfileService
from lab.services.prometheus import post, wait_ready

OS_USER = "prometheus"
START_TIMEOUT = 15
BINARY = "/usr/bin/prometheus-alertmanager"
BASE_URL = f"http://{ports.HOST}:{ports.ALERTMANAGER}"

CONFIG = """\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` (POST /-/reload).
global:
  resolve_timeout: 5m

route:
  group_by: ["alertname", "severity"]
  group_wait: 10s
  group_interval: 10s
  repeat_interval: 12h
  receiver: lab-null

receivers:
  # The lab sends no notification anywhere; alerts stay readable at /api/v2/alerts.
  - name: lab-null
"""


class Alertmanager(PidfileService):
    name = "alertmanager"
    ports = {"alertmanager": ports.ALERTMANAGER}
    packages = ("prometheus-alertmanager",)
    commands = (BINARY, "amtool")

    @property
    def conf(self) -> Path:
        return self.dir / "alertmanager.yml"

    @property
    def pidfile(self) -> Path:
        return self.dir / "alertmanager.pid"

    @property
    def log(self) -> Path:
        return self.dir / "alertmanager.log"

    def wanted(self, ctx: LabContext) -> bool:
        # alertmanager-down: stopped, while Prometheus' configuration still sends to it.
        return not ctx.has("alertmanager-down")

    def configure(self, ctx: LabContext) -> bool:
        return write_if_changed(self.conf, CONFIG, 0o644)

    def _check(self) -> None:
        result = run(["amtool", "check-config", str(self.conf)], timeout=30, check=False)
        if result.returncode != 0:
            message = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise LabError(f"alertmanager configuration is invalid: {message}")

    def start(self, ctx: LabContext) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, OS_USER, OS_USER)
        self._check()
        spawn([BINARY, f"--config.file={self.conf}", f"--storage.path={data}",
               f"--web.listen-address={ports.HOST}:{ports.ALERTMANAGER}",
               "--cluster.listen-address=", "--log.level=warn"],
              self.log, self.pidfile, user=OS_USER, cwd=self.dir)
        if not (wait_port(ports.ALERTMANAGER, START_TIMEOUT)
                and wait_ready(f"{BASE_URL}/-/ready", START_TIMEOUT)):
            self.stop()
            raise LabError(f"alertmanager did not become ready: {log_tail(self.log)}")

    def reload(self) -> None:
        self._check()
        post(f"{BASE_URL}/-/reload")

    def not_ready(self, running: frozenset[str], changed: frozenset[str],
                  since: float) -> str | None:
        return None if wait_ready(f"{BASE_URL}/-/ready", 0.5) else "/-/ready does not answer 200"
