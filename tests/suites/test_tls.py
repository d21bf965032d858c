"""suites/tls and suites/certs against the real lab, run together as a user runs them
(``pytest suites/tls suites/certs --env lab``).

What each TLS and certificate fault makes these suites fail is the detection matrix's
contract (``tests/detection/expected.toml``), and the cross-check with testssl.sh lives there
too. Here: the good lab passes with one scan per endpoint as evidence, counted under xdist; the
warning path of a certificate close to expiry; and the ``--tls-policy`` option.
"""
from __future__ import annotations

import json
from pathlib import Path

from plugins import profile as profiles
from tests.labctl import SuiteRun, run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import lab_variant

SUITES = ("suites/tls", "suites/certs")
ENDPOINTS = ("https-api", "https-front", "smtp-mx", "smtp-submission", "imap-starttls", "imaps")
MAIL_ENDPOINTS = ("smtp-mx", "smtp-submission", "imap-starttls", "imaps")


def anssi(rule: str, endpoints: tuple[str, ...] = ENDPOINTS) -> set[str]:
    return {f"suites/tls/test_anssi.py::test_anssi[{e}-{rule}]" for e in endpoints}


def wire(check: str) -> set[str]:
    """A suites/certs check on the chain every endpoint sends."""
    return {f"suites/certs/test_certificates.py::{check}[wire-{e}]" for e in ENDPOINTS}


# HSTS means nothing on a mail port: reported as not applicable, never as passed.
GOOD_SKIPPED = anssi("hsts", MAIL_ENDPOINTS)

# A plugin loaded into the suite's process (and every xdist worker) that logs each real scan.
SCAN_COUNTER = '''
import os
import probes.tls_scan as tls_scan

_scan = tls_scan.scan

def _counted(endpoint, *args, **kwargs):
    with open(os.environ["MSSANTE_SCAN_LOG"], "a") as log:
        log.write(f"{os.getpid()} {endpoint.name}\\n")
    return _scan(endpoint, *args, **kwargs)

tls_scan.scan = _counted
'''


def run_audit(tmp_path: Path, *args: str, count_scans: bool = False) -> SuiteRun:
    """Both suites on the lab; with ``count_scans``, ``tmp_path/scans.log`` lists every scan."""
    env = None
    if count_scans:
        (tmp_path / "count_scans.py").write_text(SCAN_COUNTER)
        env = {"PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[2]}",
               "MSSANTE_SCAN_LOG": str(tmp_path / "scans.log")}
        args = (*args, "-p", "count_scans")
    return run_suite(*SUITES, *args, tmp_path=tmp_path, env=env)


def _scans_logged(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "scans.log").read_text().split()
    return sorted(zip(lines[1::2], lines[0::2], strict=False))


def _explain(run: SuiteRun, expected: set[str]) -> str:
    failing = run.failing()
    return (f"unexpectedly failing: {sorted(failing - expected)}\n"
            f"expected to fail but did not: {sorted(expected - failing)}\n{run.messages()}")


def test_good_lab_passes_with_one_scan_per_endpoint_as_evidence(good_lab, tmp_path):
    run = run_audit(tmp_path, count_scans=True)
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), _explain(run, set())
    assert run.with_outcome("warning") == set(), run.messages()
    assert run.with_outcome("skipped") == GOOD_SKIPPED, run.messages()
    assert [name for name, _ in _scans_logged(tmp_path)] == sorted(ENDPOINTS)
    evidence = tmp_path / "reports" / "evidence" / run.results["metadata"]["run_id"] / "tls"
    for name in ENDPOINTS:
        record = json.loads((evidence / f"{name}.json").read_text())
        assert record["error"] is None and record["sslyze"]["server_scan_results"], name
    protocols = next(r for r in run.results["results"]
                     if r["nodeid"] == "suites/tls/test_anssi.py::test_anssi[imaps-protocols]")
    assert protocols["evidence"] == ["tls/imaps.json"]
    assert protocols["requirements"] == ["ANSSI-TLS-2.1"]
    assert protocols["measured"][0]["value"] == "accepted: TLSv1.2, TLSv1.3"


def _collected(tmp_path: Path) -> list[str]:
    """Test ids of both suites, from a collection-only run."""
    proc = pytest_run(*SUITES, "--env", "lab", "--collect-only", "-q",
                      "--reports-dir", str(tmp_path / "collect"))
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_xdist_workers_share_the_scans(good_lab, tmp_path):
    run = run_audit(tmp_path, "-n", "2", count_scans=True)
    assert run.returncode == 0, run.messages()
    assert run.with_outcome("skipped") == GOOD_SKIPPED, run.messages()
    assert len(run.results["results"]) == len(_collected(tmp_path)) > 100
    scans = _scans_logged(tmp_path)
    assert [name for name, _ in scans] == sorted(ENDPOINTS), scans     # once each, not per worker


def test_cert_expiring_is_a_warning_above_the_fail_threshold(lab_fault, tmp_path):
    """EXPIRING_DAYS (5) left, failure threshold lowered to 3 in a profile copy: a warning
    the reports show, and a failure under --strict-warnings."""
    lab_fault("cert-expiring")
    profile = lab_variant(tmp_path, "labwarn", {"cert_fail_days = 7": "cert_fail_days = 3"})
    run = run_audit(tmp_path / "run", "--env", str(profile))
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), _explain(run, set())
    assert run.with_outcome("warning") == wire("test_expiry"), run.messages()
    warning = "wire-imaps: expiry: WARN"
    assert "**Verdict : PASSED WITH WARNINGS" in (run.reports_dir / "summary.md").read_text()
    for report in ("summary.md", "results.json", "junit.xml"):
        assert warning in (run.reports_dir / report).read_text(), report
    strict = run_audit(tmp_path / "strict", "--env", str(profile), "--strict-warnings")
    assert strict.failing() == wire("test_expiry"), _explain(strict, wire("test_expiry"))
    assert "warning (--strict-warnings): wire-imaps: expiry: WARN" in strict.messages()


# --- options ---------------------------------------------------------------------------------

def test_tls_policy_option_replaces_the_profile_policy(tmp_path):
    relaxed = tmp_path / "relaxed.toml"
    relaxed.write_text(Path(profiles.ENV_DIR.parent / "policies" / "anssi-tls.toml").read_text()
                       + '\n[endpoints.imaps]\ndisable = ["protocols"]\n')
    proc = pytest_run("suites/tls", "--env", "lab", "--tls-policy", str(relaxed),
                      "--collect-only", "--reports-dir", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    assert f"TLS policy: ANSSI TLS v1.2 (ANSSI-PA-035) from {relaxed} [command line " \
           f"(--tls-policy)]" in proc.stdout


def test_bad_policy_is_one_usage_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nname = "x"\n[rules.protocols]\nrequirement = "ANSSI-TLS-2.1"\n'
                   'title = "t"\nallowed = ["TLSv1.4"]\n')
    proc = pytest_run("suites/tls", "--env", "lab", "--tls-policy", str(bad))
    assert proc.returncode == 4
    assert f"ERROR: {bad}: rules.protocols.allowed: unknown protocol 'TLSv1.4'" in proc.stderr
    assert "collected" not in proc.stdout
