"""The hostile-target bench (issue 14 item 10): every endpoint of a profile points at one
misbehaving loopback server (tests/support/hostile.py), and ``suites/smoke``,
``suites/post_deploy`` and ``python -m plugins.healthcheck`` must each finish within (number
of checks × (deadline + 1 s)) after start-up (the health check: its side-by-side round and
its alert) with no check passed: every one *error* (could not run) or *failed* (a refused
certificate: the self-signed one, or the bench leaf, which expires within cert_fail_days),
none hanging until pytest-timeout. JUnit must agree with results.json, and the health check
must write its status file. No lab needed.

The deadlines are the profile's ``connect_timeout_s`` and ``http_timeout_s``, 2 s here to keep
the bench quick; ``MSSANTE_BENCH_DEADLINE_S=5`` runs it with the lab profile's 5 s, as the
issue's "Done when" table is measured. Each run prints one ``BENCH`` line (kind, run, wall
time, outcomes): ``pytest tests/plugin/test_hostile_targets.py -s -q`` shows the table.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.labctl import REPO
from tests.profile_variants import lab_variant
from tests.support.hostile import KINDS, Target, bench_ca

DEADLINE_S = float(os.environ.get("MSSANTE_BENCH_DEADLINE_S", "2"))
STARTUP_S = 10.0        # interpreter, plugin and collection before the first check starts
NOT_A_RUN = ("skipped",)  # "not configured in <env>" measures nothing and passes nothing
# The lab profile's secrets, set to values of our own: the bench needs no lab.
SECRETS = ("MSSANTE_LAB_DB_PASSWORD", "MSSANTE_LAB_REDIS_PASSWORD", "MSSANTE_LAB_ADMIN_PASSWORD",
           "MSSANTE_LAB_MEDECIN_PASSWORD", "MSSANTE_LAB_SECRETARIAT_PASSWORD",
           "MSSANTE_LAB_BACKUP_HMAC_KEY")
SUITES = ("smoke", "post_deploy")
HEALTH_ROUNDS = 3       # its probes side by side, then the alert post, and one to spare
HANG_S = 300            # a run still going then has hung (pytest-timeout's own per-check bound)


def hostile_profile(tmp_path: Path, plain: Target, tls: Target, seconds: float) -> Path:
    """lab.toml with every endpoint at the hostile servers: ``https://`` URLs and implicit
    TLS at ``tls``, the rest at ``plain``; every ``ca_file`` is the bench CA (so the misbehaviour
    behind a verified handshake is reached); both deadlines ``seconds``."""
    at = {"plain": f'host = "{plain.host}"\nport = {plain.port}',
          "tls": f'host = "{tls.host}"\nport = {tls.port}'}
    path = lab_variant(tmp_path, "hostile", {
        'url = "https://localhost:10443"': f'url = "https://{tls.address}"',
        'url = "https://localhost:10444"': f'url = "https://{tls.address}"',
        'host = "localhost"\nport = 10587': at["plain"],
        'host = "localhost"\nport = 10025': at["plain"],
        'host = "localhost"\nport = 10143': at["plain"],
        'host = "localhost"\nport = 10993': at["tls"],
        'host = "127.0.0.1"\nport = 10432': at["plain"],
        'host = "127.0.0.1"\nport = 10379': at["plain"],
        'url = "http://127.0.0.1:10090"': f'url = "http://{plain.address}"',
        'url = "http://127.0.0.1:10093"': f'url = "http://{plain.address}"',
        "http_timeout_s = 5": f"http_timeout_s = {seconds:g}",
        "connect_timeout_s = 5": f"connect_timeout_s = {seconds:g}",
    })
    text = path.read_text()
    anchors = next(line for line in text.splitlines() if line.startswith("ca_file = "))
    path.write_text(text.replace(anchors, f'ca_file = "{bench_ca().ca}"'))
    return path


@dataclass
class Run:
    name: str
    wall_s: float
    returncode: int
    outcomes: Counter[str]
    output: str
    sequential: int     # deadlines one after another: a suite's checks; the health check's round

    @property
    def bound_s(self) -> float:
        """(sequential deadlines × (deadline + 1 s)) once the interpreter has started."""
        return STARTUP_S + self.sequential * (DEADLINE_S + 1)

    def line(self, kind: str) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items()))
        return f"BENCH {kind:20} {self.name:12} {self.wall_s:6.1f} s  {counts}"


def _environ() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "MSSANTE_ENV"}
    environ["PYTHONPATH"] = str(REPO)
    environ.update({name: f"Zq8{index}vK2mW9xT" for index, name in enumerate(SECRETS)})
    return environ


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    ended: float | None = None


def _start(tmp_path: Path, name: str, *args: str) -> Started:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=_environ(), stdout=out,
                                stderr=subprocess.STDOUT)
    return Started(name, proc, log)


def _wait(started: list[Started], since: float) -> None:
    """Wait for every process, noting when each ended; kill what is still running at HANG_S."""
    limit = since + HANG_S
    while any(s.ended is None for s in started) and time.monotonic() < limit:
        for entry in started:
            if entry.ended is None and entry.proc.poll() is not None:
                entry.ended = time.monotonic()
        time.sleep(0.05)
    hung = [s for s in started if s.ended is None]
    for entry in hung:
        entry.proc.kill()
        entry.proc.wait()
    assert not hung, f"still running after {HANG_S} s: " + "; ".join(
        f"{s.name}: {s.log.read_text()[-1500:]}" for s in hung)


def _suite_run(entry: Started, since: float, reports: Path) -> Run:
    output = entry.log.read_text()
    results_files = sorted((reports / "runs").glob("*/results.json"))
    assert results_files, (f"{entry.name} wrote no results (exit {entry.proc.returncode}):\n"
                           f"{output[-3000:]}")
    run_dir = results_files[-1].parent
    results = json.loads(results_files[-1].read_text())["results"]
    run = Run(entry.name, (entry.ended or since) - since, entry.proc.returncode,
              Counter(r["outcome"] for r in results), output, sequential=len(results))
    junit = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert junit is not None
    assert (int(junit.get("errors", 0)), int(junit.get("failures", 0))) == (
        run.outcomes["error"], run.outcomes["failed"]), (
        f"JUnit and results.json disagree: {junit.attrib} vs {dict(run.outcomes)}")
    return run


def _health_run(entry: Started, since: float, status_file: Path) -> Run:
    output = entry.log.read_text()
    assert status_file.is_file(), f"no {status_file.name} written:\n{output[-3000:]}"
    services = json.loads(status_file.read_text()).get("services", [])
    outcomes: Counter[str] = Counter(
        "passed" if s.get("ok") is True else "error" if s.get("ok") is False else "skipped"
        for s in services)
    return Run("healthcheck", (entry.ended or since) - since, entry.proc.returncode, outcomes,
               output, sequential=HEALTH_ROUNDS)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", KINDS)
def test_every_check_ends_error_or_failed_within_its_deadlines(kind, hostile, tmp_path):
    plain = hostile(kind)
    tls = plain if kind == "tls-self-signed" else hostile(kind, tls=True)
    profile = hostile_profile(tmp_path, plain, tls, DEADLINE_S)
    status_file = tmp_path / "health-status.json"
    since = time.monotonic()
    suites = [_start(tmp_path, suite, "-m", "pytest", f"suites/{suite}", "--env", str(profile),
                     "--reports-dir", str(tmp_path / suite), "-p", "no:cacheprovider", "-q",
                     "--tb=line", "-rA")
              for suite in SUITES]
    health = _start(tmp_path, "healthcheck", "-m", "plugins.healthcheck", "--env", str(profile),
                    "--output", str(status_file))
    _wait([*suites, health], since)
    runs = [_suite_run(entry, since, tmp_path / entry.name) for entry in suites]
    runs.append(_health_run(health, since, status_file))
    problems = []
    for run in runs:
        print(run.line(kind))
        passed = {k: n for k, n in run.outcomes.items() if k not in ("error", "failed", *NOT_A_RUN)}
        if passed or run.returncode == 0:
            problems.append(f"{run.name}: exit {run.returncode}, {dict(run.outcomes)}:\n"
                            f"{run.output[-2500:]}")
        if run.wall_s > run.bound_s:
            problems.append(f"{run.name}: {run.wall_s:.1f} s, over its bound of "
                            f"{run.bound_s:.0f} s")
    assert not problems, "\n\n".join(problems)
