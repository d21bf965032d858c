"""``--deploy`` on the real lab: the whole lifecycle with real daemons, timed.

- the good release (1.1.0, a migration) ends in success under xdist, with a report; every
  worker's tests carry the deployment id and see it through the ``deployment`` fixture
  (``deployment_probe.py``); afterwards the lab is put back (code and data);
- the broken release (1.2.0: its health check fails after deploy) rolls back by itself: the API
  serves 1.0.0 again, the database and Redis equal what they were before (fingerprints), the
  backup's deployment-info.json and the report say rolled back and why;
- post-deployment tests that fail on the workers roll the release back from the controller;
- a production profile is refused without --confirm-prod, before anything is touched.
"""
from __future__ import annotations

import time

from lab import deploy
from plugins import backups
from tests.labctl import run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import lab_variant
from tests.suites.backup_lab import lab_profile, platform_lab, served_version  # noqa: F401

PHASES = ["pre_deploy", "backup", "maintenance_on", "deploy", "migrations", "wait_healthy",
          "smoke", "maintenance_off", "post_deploy"]
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
        assert set(outcomes.values()) == {"passed"}, run.messages()
        assert served_version() == {"version": "1.1.0", "schema": "0002_mailbox_quota",
                                    "schema_expected": "0002_mailbox_quota"}
        assert backup.id != platform_lab.id and backup.read_info()["status"] == "success"
        report = report_of(run)
        assert "**Résultat : ✅ DÉPLOYÉ**" in report
        assert "Version:** 1.1.0 (précédente : v1.0.0)" in report
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
    assert list(lifecycle) == PHASES[:6] + ROLLBACK, lifecycle
    assert lifecycle["wait_healthy"] == "failed"
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


def test_production_needs_confirm_prod(tmp_path):
    profile = lab_variant(tmp_path, "labprod", {'kind = "test"': 'kind = "production"'})
    proc = pytest_run("suites/smoke", "--env", str(profile), "--deploy", "1.1.0",
                      env={"BACKUP_DIR": str(tmp_path / "backups")})
    assert proc.returncode == 4
    assert "needs --confirm-prod: nothing was touched" in proc.stderr
    assert not (tmp_path / "backups").exists()

