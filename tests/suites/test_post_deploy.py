"""suites/post_deploy against the real lab: green on the good lab (Grafana reported as not
configured, never as passed), identical under xdist. What each fault makes it fail, and the
service the summary names, is the detection matrix's contract (tests/detection/expected.toml).
"""
from __future__ import annotations

from tests.labctl import run_suite

SUITE = "suites/post_deploy"
T = "suites/post_deploy/"


def test_good_lab_passes(good_lab, tmp_path):
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), run.messages()
    skipped = run.with_outcome("skipped")
    # Grafana is not part of the lab: reported as not configured, never as passed.
    assert skipped == {T + "test_monitoring.py::test_grafana_health"}, run.messages()
    summary = (run.reports_dir / "summary.md").read_text()
    assert "**Verdict : PASSED" in summary
    assert "not configured in lab" in summary


def test_same_results_under_xdist(good_lab, tmp_path):
    serial = run_suite(SUITE, tmp_path=tmp_path / "serial")
    parallel = run_suite(SUITE, "-n", "2", tmp_path=tmp_path / "xdist")
    assert parallel.outcomes() == serial.outcomes()
    assert (parallel.reports_dir / "junit.xml").exists()
    assert len(parallel.results["results"]) == len(serial.results["results"]) > 0
