"""suites/monitoring against the real lab: green when good, red on each way monitoring breaks.

Faults: Prometheus down (everything it answers for fails), the API down (its scrape target is
down), an expected alert rule missing and an unreachable Alertmanager (profile variants: the
same lab, one setting changed). The missing rule is also where a waiver is proven on a real
failure: it turns the failure into "waived", and an expired one does not.
"""
from __future__ import annotations

import datetime as dt

import httpx

from plugins.outcomes import wait_until
from probes.monitoring import scrape_targets
from tests.labctl import run_suite
from tests.profile_variants import lab_variant

SUITE = "suites/monitoring"
T = "suites/monitoring/"
RULES_TEST = T + "test_prometheus.py::test_expected_alert_rules_loaded"
TARGETS_TEST = T + "test_prometheus.py::test_all_scrape_targets_up"
WIRING_TEST = T + "test_alerting.py::test_prometheus_sends_alerts_to_alertmanager"
PROMETHEUS = "http://127.0.0.1:10090"


def test_good_lab_passes_with_evidence(good_lab, tmp_path):
    run = run_suite(SUITE, "--evidence", tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), run.messages()
    # Grafana is not part of the lab: not configured, never passed.
    assert run.with_outcome("skipped") == {T + "test_grafana.py::test_grafana_healthy"}
    assert len(run.with_outcome("passed")) == 7, run.messages()
    version = run.results["metadata"]["target_version"]
    assert version and not version.startswith("unknown"), version
    bundle = tmp_path / "reports" / "evidence" / run.results["metadata"]["run_id"]
    assert f"| Target version | {version} |" in (bundle / "evidence.md").read_text()


def test_prometheus_down_fails_every_prometheus_check(lab_fault, tmp_path):
    lab_fault("prometheus-down")
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.returncode != 0
    must_fail = {T + "test_prometheus.py::test_prometheus_healthy_and_ready[/-/healthy]",
                 T + "test_prometheus.py::test_prometheus_healthy_and_ready[/-/ready]",
                 TARGETS_TEST, RULES_TEST,
                 T + "test_alerting.py::test_prometheus_sends_alerts_to_alertmanager"}
    assert run.failing() == must_fail, run.messages()
    # Alertmanager itself is up: its own check must not be dragged down.
    assert run.outcomes()[T + "test_alerting.py::test_alertmanager_ready_with_configuration"] == "passed"


def test_api_down_shows_as_a_down_target(lab_fault, tmp_path):
    lab_fault("api-down")
    with httpx.Client(base_url=PROMETHEUS, timeout=5) as client:
        seen = wait_until(lambda: any(t.job == "api" and t.health == "down"
                                      for t in scrape_targets(client)), timeout=30)
    assert seen.ok, f"Prometheus never saw the API down: {seen.summary()}"
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.failing() == {TARGETS_TEST}, run.messages()
    message = run.results["results"][[r["nodeid"] for r in run.results["results"]].index(
        TARGETS_TEST)]["message"]
    assert "api (127.0.0.1:10080) down" in message, message


def test_recovered_target_is_not_reported_down(lab_fault, tmp_path):
    """Right after the API comes back, Prometheus may still show its last (failed) scrape: the
    check waits for a fresh one instead of failing a healthy platform."""
    lab_fault("api-down")
    with httpx.Client(base_url=PROMETHEUS, timeout=5) as client:
        assert wait_until(lambda: any(t.job == "api" and t.health == "down"
                                      for t in scrape_targets(client)), timeout=30).ok
        lab_fault()  # back to good: the next scrape will find the API up
        run = run_suite(TARGETS_TEST, tmp_path=tmp_path)
    assert run.outcomes() == {TARGETS_TEST: "passed"}, run.messages()


def _missing_rule_profile(tmp_path):
    return lab_variant(tmp_path, "lab-missing-rule", {
        'expected_rules = ["ServiceDown"': 'expected_rules = ["BackupTooOld", "ServiceDown"'})


def test_missing_alert_rule_fails_naming_it(good_lab, tmp_path):
    run = run_suite(RULES_TEST, "--env", str(_missing_rule_profile(tmp_path)), tmp_path=tmp_path)
    assert run.failing() == {RULES_TEST}, run.messages()
    assert "expected alert rules not loaded: BackupTooOld" in run.messages()


def _waiver_file(tmp_path, expires: dt.date):
    path = tmp_path / "waivers.toml"
    path.write_text(f'[[waiver]]\nid = "SEED-MON-RULES"\n'
                    f'justification = "Backup alerting arrives with ticket OPS-42"\n'
                    f'approver = "Jeanne Martin, RSSI"\nexpires = {expires.isoformat()}\n')
    return path


def test_waiver_turns_the_real_failure_into_waived(good_lab, tmp_path):
    profile = _missing_rule_profile(tmp_path)
    waivers = _waiver_file(tmp_path, dt.date.today() + dt.timedelta(days=30))
    run = run_suite(RULES_TEST, "--env", str(profile), "--waivers", str(waivers),
                    "--evidence", tmp_path=tmp_path)
    assert run.outcomes() == {RULES_TEST: "waived"}, run.messages()
    assert run.results["results"][0]["waiver"]["approver"] == "Jeanne Martin, RSSI"
    assert run.returncode == 0, "every failure is waived: the CI gate passes"
    assert 'name="waiver"' in (run.reports_dir / "junit.xml").read_text()
    bundle = tmp_path / "reports" / "evidence" / run.results["metadata"]["run_id"]
    assert "| SEED-MON-RULES |" in (bundle / "evidence.md").read_text()
    assert "| applied<br>`" + RULES_TEST in (bundle / "evidence.md").read_text()


def test_expired_waiver_does_not_apply(good_lab, tmp_path):
    profile = _missing_rule_profile(tmp_path)
    expired_on = dt.date.today() - dt.timedelta(days=1)
    waivers = _waiver_file(tmp_path, expired_on)
    run = run_suite(RULES_TEST, "--env", str(profile), "--waivers", str(waivers),
                    tmp_path=tmp_path)
    assert run.outcomes() == {RULES_TEST: "failed"}, run.messages()
    assert run.returncode == 1
    assert f"waiver SEED-MON-RULES (approved by Jeanne Martin, RSSI) expired on {expired_on}" in (
        run.results["results"][0]["warnings"][0])


def test_unreachable_alertmanager_is_an_error(good_lab, tmp_path):
    """The profile names an Alertmanager nobody answers on: the checks that talk to it cannot
    run (errors); Prometheus sending to another one (the lab's) is a failure of the wiring."""
    profile = lab_variant(tmp_path, "lab-no-alertmanager", {
        'url = "http://127.0.0.1:10093"': 'url = "http://127.0.0.1:9"'})
    run = run_suite(SUITE, "--env", str(profile), tmp_path=tmp_path)
    direct = {T + "test_alerting.py::test_alertmanager_ready_with_configuration",
              T + "test_alerting.py::test_test_alert_reaches_alertmanager"}
    assert run.failing() == direct | {WIRING_TEST}, run.messages()
    assert run.with_outcome("error") == direct, run.messages()
    assert ("Prometheus sends its alerts to http://127.0.0.1:10093/api/v2/alerts, not to the "
            "profile's Alertmanager http://127.0.0.1:9") in run.messages()


def test_alertmanager_down_fails_the_alerting_checks(lab_fault, tmp_path):
    """Prometheus still lists the stopped Alertmanager: listing it no longer passes."""
    lab_fault("alertmanager-down")
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.outcomes()[WIRING_TEST] == "failed", run.messages()
    assert "which does not answer" in run.messages()
    assert {T + "test_alerting.py::test_alertmanager_ready_with_configuration",
            T + "test_alerting.py::test_test_alert_reaches_alertmanager"} <= run.failing()
    assert run.returncode != 0


def test_test_alert_is_opt_in(good_lab, tmp_path):
    profile = lab_variant(tmp_path, "lab-no-test-alert", {"test_alert = true": "test_alert = false"})
    run = run_suite(T + "test_alerting.py", "--env", str(profile), tmp_path=tmp_path)
    check = T + "test_alerting.py::test_test_alert_reaches_alertmanager"
    assert run.outcomes()[check] == "skipped", run.messages()
    assert "not enabled in lab-no-test-alert: [alertmanager] test_alert" in run.messages()
