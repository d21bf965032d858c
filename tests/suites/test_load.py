"""suites/load against the real lab: opt-in, green when good, red on a broken lab or an
impossible threshold, merged statistics with local locust workers, refused under xdist, and
refused on a production-kind profile without --confirm-prod (before anything is sent).

Every run uses a profile of seconds (``--load-run-time``, ``--load-set``), never the seed's
five minutes.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.labctl import REPO, run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import PRODUCTION, lab_variant

SUITE = "suites/load"
T = "suites/load/test_load.py::"
API, SMTP, IMAP = T + "test_api_under_load", T + "test_smtp_under_load", T + "test_imap_under_load"
SHORT = ("--load", "--load-run-time", "4s", "--load-set", "users=4",
         "--load-set", "smtp_messages=40")


def summary_of(run, scenario: str) -> dict:
    """The load summary the plugin left in the run's evidence folder."""
    evidence = run.reports_dir.parent.parent / "evidence"
    return json.loads(next(evidence.glob(f"*/load/{scenario}-summary.json")).read_text())


def step(summary: dict, name: str) -> dict:
    return next(s for s in summary["summary"]["steps"] if s["step"] == name)


def test_skipped_without_load_saying_how_to_opt_in(tmp_path):
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.returncode == 0
    assert run.with_outcome("skipped") == {API, SMTP, IMAP}, run.messages()
    assert all("pass --load" in r["message"] for r in run.results["results"])


def test_refused_under_xdist():
    proc = subprocess.run([sys.executable, "-m", "pytest", SUITE, "--env", "lab", "--load",
                           "-n", "2", "-p", "no:cacheprovider"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--load cannot run under pytest-xdist" in proc.stderr


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_production_needs_confirm_prod(tmp_path, xdist):
    """No lab needed: the refusal comes before collection, so nothing can be sent."""
    profile = lab_variant(tmp_path, "labprod", PRODUCTION)
    reports = tmp_path / "reports"
    proc = pytest_run(SUITE, "--env", str(profile), *SHORT, *xdist, "--reports-dir",
                      str(reports))
    assert proc.returncode == 4, proc.stdout + proc.stderr
    refusal = [line for line in proc.stderr.splitlines() if line.strip()]
    assert refusal == ["ERROR: --load on labprod (production) needs --confirm-prod: it puts "
                       "real load on the platform and sends real mail; nothing was sent"], refusal
    assert "collected" not in proc.stdout and not (reports / "load").exists()
    # With the confirmation the refusal is gone (collected only here: no load is sent).
    confirmed = pytest_run(SUITE, "--env", str(profile), *SHORT, "--confirm-prod",
                           "--collect-only", "-q", "--reports-dir", str(reports))
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert "3 tests collected" in confirmed.stdout


def test_good_lab_passes_with_reports_and_chart(good_lab, tmp_path):
    run = run_suite(SUITE, *SHORT, tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.with_outcome("passed") == {API, SMTP, IMAP}, run.messages()
    load_dir = next((tmp_path / "reports" / "load").iterdir())
    for scenario in ("api", "smtp", "imap"):
        for suffix in (".html", ".json", "_stats.csv", "_stats_history.csv", "_failures.csv"):
            assert (load_dir / f"{scenario}{suffix}").is_file(), f"{scenario}{suffix} missing"
        summary = summary_of(run, scenario)
        assert summary["breaches"] == [] and summary["summary"]["requests"] > 0
        chart = next((tmp_path / "reports" / "evidence").glob(f"*/load/{scenario}-latency.png"))
        assert chart.read_bytes().startswith(b"\x89PNG")
    smtp = summary_of(run, "smtp")
    assert step(smtp, "SMTP send")["requests"] == 40       # the run stops at the message count
    assert {"SMTP connect", "SMTP starttls", "SMTP auth", "SMTP send"} <= {
        s["step"] for s in smtp["summary"]["steps"]}
    results = {r["nodeid"]: r for r in run.results["results"]}
    assert "load/smtp-latency.png" in results[SMTP]["evidence"]
    measured = {m["name"]: m for m in results[SMTP]["measured"]}
    assert measured["smtp messages accepted / delivered"]["value"] == "40 / 40"
    summary_md = (run.reports_dir / "summary.md").read_text()
    for figure in ("api throughput (GET /api/v1/mailboxes)", "smtp p95 (SMTP send)",
                   "imap failures"):
        assert figure in summary_md


def test_impossible_threshold_fails_every_scenario(good_lab, tmp_path):
    run = run_suite(SUITE, "--load", "--load-run-time", "2s", "--load-set", "users=2",
                    "--load-set", "smtp_messages=10", "--load-set", "min_rps=1000000",
                    tmp_path=tmp_path)
    assert run.returncode == 1
    assert run.with_outcome("failed") == {API, SMTP, IMAP}, run.messages()
    assert all("under the minimum 1e+06" in r["message"] for r in run.results["results"])


@pytest.mark.parametrize("fault, test, breach", [
    ("api-down", API, "failure ratio 100.00%"),                # nginx answers 502
    ("smtp-no-starttls", SMTP, "throughput 0 messages/s"),       # every session stops at STARTTLS
    ("cert-untrusted", IMAP, "throughput 0 fetches/s"),          # STARTTLS fails verification
])
def test_broken_lab_fails(lab_fault, tmp_path, fault, test, breach):
    lab_fault(fault)
    run = run_suite(test, *SHORT, tmp_path=tmp_path)
    assert run.returncode == 1, run.messages()
    assert run.with_outcome("failed") == {test}, run.messages()
    assert breach in run.results["results"][0]["message"]


def test_accepted_but_undelivered_mail_fails(lab_fault, tmp_path):
    # The run's messages stay held in the lab's queue; the lab purges them when it is repaired.
    lab_fault("delivery-broken")
    run = run_suite(SMTP, *SHORT, tmp_path=tmp_path)
    assert run.with_outcome("failed") == {SMTP}, run.messages()
    assert "40 of 40 messages accepted under load were not delivered" in run.messages()


def test_two_local_workers_merge_statistics(good_lab, tmp_path):
    run = run_suite(API, SMTP, *SHORT, "--load-workers", "2", tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    load_dir = next((tmp_path / "reports" / "load").iterdir())
    for scenario in ("api", "smtp"):
        logs = sorted(p.name for p in load_dir.glob(f"{scenario}-*.log"))
        assert logs == [f"{scenario}-master.log", f"{scenario}-worker-1.log",
                        f"{scenario}-worker-2.log"]
        assert "2 workers connected" in (load_dir / f"{scenario}-master.log").read_text()
    # Each worker sends its half of the 40 messages; the master's statistics hold them all.
    assert step(summary_of(run, "smtp"), "SMTP send")["requests"] == 40
    assert summary_of(run, "api")["summary"]["requests"] > 0
