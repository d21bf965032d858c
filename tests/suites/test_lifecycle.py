"""``--deploy`` on the real lab: the whole lifecycle with real daemons, timed.

- the good release (1.1.0, a migration) ends in success under xdist, with a report; every
  worker's tests carry the deployment id and see it through the ``deployment`` fixture
  (``deployment_probe.py``); afterwards the lab is put back (code and data);
- the broken release (1.2.0: its health check fails after deploy) rolls back by itself: the API
  serves 1.0.0 again, the database and Redis equal what they were before (fingerprints), the
  backup's deployment-info.json and the report say rolled back and why;
- a release whose deploy "succeeds" without the API serving it (1.3.0: the running API is never
  restarted) is not a deployment: the version proof fails within version_timeout_s and it
  rolls back by itself, the report saying which version the API still served;
- a deploy command past its deadline (command_timeout_s) is killed with its children and the
  release rolled back;
- post-deployment tests that fail on the workers roll the release back from the controller;
- a production profile is refused without --confirm-prod, before anything is touched (also
  under -n 2).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lab import deploy
from plugins import backups
from tests.labctl import run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import PRODUCTION, lab_variant
from tests.suites.backup_lab import lab_profile, platform_lab, served_version  # noqa: F401 - fixtures

PHASES = ["pre_deploy", "backup", "maintenance_on", "deploy", "migrations", "wait_version",
          "wait_healthy", "smoke", "maintenance_off", "post_deploy"]
# The lab's deploy command migrates by itself: no [lifecycle] migrate_command, so the phase is
# skipped (not configured) and the schema is proven by wait_version.
SKIPPED = {"lifecycle::migrations"}
PROBE = "tests/suites/deployment_probe.py"
ROLLBACK = ["rollback_maintenance_on", "rollback_code", "rollback_data", "rollback_wait_healthy",
            "rollback_verify", "rollback_maintenance_off"]


def deployment_backup() -> backups.Backup:
    """The backup the deployment took: the newest in BACKUP_DIR."""
    return backups.list_backups(backups.settings(lab_profile()).dir)[0]


def report_of(run) -> str:
    reports = list((run.reports_dir.parent.parent / "deployments").glob("deployment-*.md"))
    assert len(reports) == 1, reports
    return reports[0].read_text()


def test_good_release_deploys(platform_lab, tmp_path):
    before = backups.fingerprint(lab_profile())
    started = time.monotonic()
    run = run_suite("suites/smoke", PROBE, "--deploy", "1.1.0", "-n", "2", tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    backup = deployment_backup()
    try:
        assert run.returncode == 0, run.messages()
        outcomes = run.outcomes()
        assert [n.split("::")[1] for n in outcomes if n.startswith("lifecycle::")] == PHASES
        assert {n for n, o in outcomes.items() if o != "passed"} == SKIPPED, run.messages()
        assert served_version() == {"version": "1.1.0", "schema": "0002_mailbox_quota",
                                    "schema_expected": "0002_mailbox_quota"}
        assert backup.id != platform_lab.id and backup.read_info()["status"] == "success"
        report = report_of(run)
        assert "**Résultat : ✅ DÉPLOYÉ**" in report
        assert "Version:** 1.1.0 (précédente : v1.0.0)" in report
        assert ("Version servie par l'API après le déploiement:** 1.1.0 (schema "
                "0002_mailbox_quota, expected 0002_mailbox_quota) — déploiement prouvé" in report)
        # Under -n 2 the tests ran on workers: each carried the controller's deployment id, and
        # the probe read the deployment (version, backup) through the fixture.
        assert "Tests exécutés sous le déploiement" in report and ": 6/6" in report
        assert outcomes[PROBE + "::test_api_serves_the_deployed_version"] == "passed"
        assert "Temps de réponse moyen:" in report and "non mesuré" not in report
        print(f"good deploy: {elapsed:.1f}s")
    finally:
        deploy.rollback("1.0.0", force=True)
        backups.restore(lab_profile(), backup)
    assert served_version()["version"] == "1.0.0"
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []


def test_broken_release_rolls_back_by_itself(platform_lab, tmp_path):
    before = backups.fingerprint(lab_profile())
    started = time.monotonic()
    run = run_suite("suites/smoke", "--deploy", "1.2.0", tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.messages()
    outcomes = run.outcomes()
    lifecycle = {n.split("::")[1]: o for n, o in outcomes.items() if n.startswith("lifecycle::")}
    assert list(lifecycle) == PHASES[:7] + ROLLBACK, lifecycle
    assert lifecycle["wait_version"] == "passed" and lifecycle["wait_healthy"] == "failed"
    assert all(lifecycle[name] == "passed" for name in ROLLBACK), run.messages()
    # The API serves the old version again, and the data is exactly what it was.
    assert served_version() == {"version": "1.0.0", "schema": "0001_init",
                                "schema_expected": "0001_init"}
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []
    info = deployment_backup().read_info()
    assert info["status"] == "rolled_back" and info["version"] == "1.2.0"
    assert 'relation \\"users\\" does not exist' in info["reason"]
    report = report_of(run)
    assert ("**Résultat : ↩️ ANNULÉ — rollback automatique réussi** — Attente de santé:"
            in report)
    assert "not healthy within 10s" in report
    assert "database: 3 tables identical (rows and content checksums)" in report
    # The smoke tests after the rollback validated the old version.
    assert all(o == "passed" for n, o in outcomes.items() if n.startswith("suites/"))
    print(f"broken deploy + automatic rollback: {elapsed:.1f}s")


def test_release_not_served_rolls_back_by_itself(platform_lab, tmp_path):
    """1.3.0's deploy command exits 0 and migrates (0002), but the running API is never
    restarted: /version still says 1.0.0. That is not a deployment."""
    before = backups.fingerprint(lab_profile())
    started = time.monotonic()
    run = run_suite("suites/smoke", "--deploy", "1.3.0", tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.messages()
    outcomes = run.outcomes()
    lifecycle = {n.split("::")[1]: o for n, o in outcomes.items() if n.startswith("lifecycle::")}
    assert list(lifecycle) == PHASES[:6] + ROLLBACK, lifecycle
    assert lifecycle["deploy"] == "passed" and lifecycle["wait_version"] == "failed"
    assert all(lifecycle[name] == "passed" for name in ROLLBACK), run.messages()
    assert served_version() == {"version": "1.0.0", "schema": "0001_init",
                                "schema_expected": "0001_init"}
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []
    info = deployment_backup().read_info()
    assert info["status"] == "rolled_back" and info["version"] == "1.3.0"
    assert "the API still serves 1.0.0, not 1.3.0" in info["reason"]
    report = report_of(run)
    assert ("**Résultat : ↩️ ANNULÉ — rollback automatique réussi** — Version servie: the API "
            "still serves 1.0.0, not 1.3.0, within 10s ([lifecycle] version_timeout_s" in report)
    assert ("Version servie par l'API après le déploiement:** 1.0.0 (schema 0002_mailbox_quota, "
            "expected 0002_mailbox_quota) au lieu de 1.3.0 — le déploiement n'a pas pris effet"
            in report)
    assert "| version_timeout_s | 10 | défaut (health_timeout_s) |" in report
    # Bounded: the version wait (10 s) and the rollback, not the 120 s command time-out.
    assert elapsed < 60, elapsed
    print(f"release not served + automatic rollback: {elapsed:.1f}s")


def test_deploy_command_past_its_deadline_is_killed_and_rolled_back(platform_lab, tmp_path):
    """A deploy command that hangs (and leaves a child behind) is killed with its process
    group at command_timeout_s; the phase fails and the release is rolled back."""
    pidfile = tmp_path / "child.pid"
    hang = f"sh -c 'sleep 300 & echo $! > {pidfile}; wait'"
    profile = lab_variant(tmp_path, "labslow", {
        'deploy_command = "{python} -m lab deploy {version}"': f'deploy_command = "{hang}"',
        "command_timeout_s = 120": 'command_timeout_s = 6\n'
                                   'pre_deploy_suite = "tests/suites/deployment_probe.py"'})
    before = backups.fingerprint(lab_profile())
    started = time.monotonic()
    run = run_suite("suites/smoke", "--env", str(profile), "--deploy", "1.1.0",
                    tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.messages()
    lifecycle = {n.split("::")[1]: o for n, o in run.outcomes().items()
                 if n.startswith("lifecycle::")}
    assert list(lifecycle) == PHASES[:4] + ROLLBACK, lifecycle
    assert lifecycle["deploy"] == "failed"
    assert all(lifecycle[name] == "passed" for name in ROLLBACK), run.messages()
    report = report_of(run)
    assert "did not finish within 6s: killed (process group)" in report
    assert "| Déploiement (`deploy`) | ❌ |" in report and "| 6s |" in report
    child = int(pidfile.read_text())
    assert not os.path.exists(f"/proc/{child}") or Path(f"/proc/{child}/stat").read_text().split(
        ")")[-1].split()[0] == "Z", "the deploy command's child outlived its deadline"
    assert served_version()["version"] == "1.0.0"
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []
    assert elapsed < 60, elapsed
    print(f"deploy command past its deadline + automatic rollback: {elapsed:.1f}s")


def test_failed_post_deploy_tests_roll_back(platform_lab, lab_fault, tmp_path):
    """The rollback decision after the tests is the controller's, from the merged results of
    the workers: logins fail on the new release (auth-broken), so it goes back."""
    lab_fault("auth-broken")
    before = backups.fingerprint(lab_profile())
    started = time.monotonic()
    run = run_suite("suites/post_deploy/test_api.py", "--deploy", "1.1.0", "-n", "2",
                    tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.messages()
    lifecycle = {n.split("::")[1]: o for n, o in run.outcomes().items()
                 if n.startswith("lifecycle::")}
    assert list(lifecycle) == PHASES + ROLLBACK, lifecycle
    assert lifecycle["post_deploy"] == "failed"
    assert all(lifecycle[name] == "passed" for name in ROLLBACK), run.messages()
    assert served_version()["version"] == "1.0.0"
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []
    assert "post-deploy tests failed" in report_of(run)
    assert deployment_backup().read_info()["status"] == "rolled_back"
    print(f"post-deploy failure + automatic rollback: {elapsed:.1f}s")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_production_needs_confirm_prod(tmp_path, xdist):
    profile = lab_variant(tmp_path, "labprod", PRODUCTION)
    proc = pytest_run("suites/smoke", "--env", str(profile), "--deploy", "1.1.0", *xdist,
                      env={"BACKUP_DIR": str(tmp_path / "backups")})
    assert proc.returncode == 4
    assert "needs --confirm-prod: nothing was touched" in proc.stderr
    assert not (tmp_path / "backups").exists()

