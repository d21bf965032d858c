"""suites/tls and suites/certs against the real lab, run together as a user runs them
(``pytest suites/tls suites/certs --env lab``).

The table below is the contract: for each TLS or certificate fault of the lab, *exactly* these
tests fail (or error) — a fault that broke one more test, or one fewer, fails here. Known lab
behaviour it encodes: under ``tls-legacy`` OpenSSL also offers the SHA-1 CBC suites on TLS 1.2
(there is no per-version list), so the TLS 1.2 suite rule fails too; ``weak-ciphers`` adds
static-RSA suites, so forward secrecy fails as well. Certificate faults change what every port
serves, not the files declared on disk, so only the ``wire-*`` sources fail.

Also here: one scan per endpoint per run, counted under xdist; the scan JSON as evidence; the
``--tls-policy`` option; and the cross-check with testssl.sh on the TLS faults (our verdicts on
protocols and suites, computed from testssl.sh's findings by the same policy, are identical).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab import pki
from plugins import profile as profiles
from plugins.endpoints import tls_endpoints
from plugins.tls_audit import scan_target
from policy.tls import evaluate_rule, load_policy
from probes.testssl import TestsslFindings, run_testssl
from probes.tls_scan import PROTOCOLS, AcceptedSuite, TlsEndpoint, TlsScan, scan
from tests.labctl import SuiteRun, run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import lab_variant

SUITES = ("suites/tls", "suites/certs")
ENDPOINTS = ("https-api", "https-front", "smtp-mx", "smtp-submission", "imap-starttls", "imaps")
MAIL_ENDPOINTS = ("smtp-mx", "smtp-submission", "imap-starttls", "imaps")


MAIL_WITHOUT_MX = tuple(e for e in ENDPOINTS if e != "smtp-mx")


def anssi(rule: str, endpoints: tuple[str, ...] = ENDPOINTS) -> set[str]:
    return {f"suites/tls/test_anssi.py::test_anssi[{e}-{rule}]" for e in endpoints}


def wire(check: str) -> set[str]:
    """A suites/certs check on the chain every endpoint sends."""
    return {f"suites/certs/test_certificates.py::{check}[wire-{e}]" for e in ENDPOINTS}


# cert-expiring serves a certificate with lab.pki.EXPIRING_DAYS left (5 today): under the lab
# profile's 7-day failure threshold it fails, between 7 and 30 days it would warn.
# test_cert_expiring_is_a_warning_above_the_fail_threshold shows the warning path either way.
EXPIRING_FAILS = pki.EXPIRING_DAYS < profiles.load("lab").threshold("cert_fail_days")
# fault -> the tests of suites/tls + suites/certs that fail or error, nothing more, nothing less.
EXPECTED_FAILING: dict[str, set[str]] = {
    # The lab's MX port (client certificate required) still refuses TLS 1.0/1.1 under this
    # fault: OpenSSL inside Postfix aborts those handshakes ("no suitable signature algorithm"),
    # so the MX protocols rule rightly passes there; the SHA-1 CBC suites still show on TLS 1.2.
    "tls-legacy": anssi("protocols", MAIL_WITHOUT_MX) | anssi("cipher_suites_tls12"),
    "weak-ciphers": anssi("cipher_suites_tls12") | anssi("forward_secrecy")
    | anssi("robot", ("smtp-mx",)),
    "cert-expiring": wire("test_expiry") if EXPIRING_FAILS else set(),
    "cert-expired": wire("test_expiry"),
    "cert-untrusted": wire("test_chain"),
    "cert-prod-root": wire("test_chain"),
}
# fault -> the tests that pass with a warning (each fails under --strict-warnings).
EXPECTED_WARNING: dict[str, set[str]] = {} if EXPIRING_FAILS else {
    "cert-expiring": wire("test_expiry")}
# fault -> the tests among those that are reported as *error* (could not run), not failed.
# ROBOT needs complete RSA key-exchange handshakes with forged padding, which sslyze cannot do
# on a port that requires a client certificate (sslyze issue #484): once weak-ciphers offers
# RSA key exchange, the MX's ROBOT verdict cannot be measured — an error, never a pass.
EXPECTED_ERROR: dict[str, set[str]] = {"weak-ciphers": anssi("robot", ("smtp-mx",))}
# fault -> (a failing test, what its one-line message must say): port, requirement, what was
# seen and the offending items an operator must remove.
EXPECTED_MESSAGE: dict[str, tuple[str, tuple[str, ...]]] = {
    "tls-legacy": ("suites/tls/test_anssi.py::test_anssi[imap-starttls-protocols]",
                   ("imap-starttls: [ANSSI-TLS-2.1] ", "FAIL — TLSv1.0, TLSv1.1 accepted",
                    "offending: TLSv1.0, TLSv1.1")),
    "weak-ciphers": ("suites/tls/test_anssi.py::test_anssi[smtp-submission-cipher_suites_tls12]",
                     ("smtp-submission: [ANSSI-TLS-A.1-TLS12] ", "offending: ",
                      "TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")),
    **({"cert-expiring": ("suites/certs/test_certificates.py::test_expiry[wire-smtp-mx]",
                          ("wire-smtp-mx: expiry: FAIL", "mail.lab.mssante.fr: expires in ",
                           "days (< 7)"))} if EXPIRING_FAILS else {}),
    "cert-expired": ("suites/certs/test_certificates.py::test_expiry[wire-imaps]",
                     ("wire-imaps: expiry: FAIL", "mail.lab.mssante.fr: expired on")),
    "cert-untrusted": ("suites/certs/test_certificates.py::test_chain[wire-smtp-mx]",
                       ("wire-smtp-mx: chain: FAIL — no chain to ", "anchors-test.pem",
                        "LAB Foreign Untrusted CA")),
    "cert-prod-root": ("suites/certs/test_certificates.py::test_chain[wire-https-api]",
                       ("wire-https-api: chain: FAIL — builds to the forbidden anchors ",
                        "anchors-prod.pem", "LAB AC RACINE IGC-SANTE ELEMENTAIRE")),
}
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
    return sorted(zip(lines[1::2], lines[0::2]))


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


@pytest.mark.parametrize("fault", sorted(EXPECTED_FAILING))
def test_fault_fails_exactly_the_expected_tests(lab_fault, tmp_path, fault):
    lab_fault(fault)
    run = run_audit(tmp_path / "run")
    assert run.failing() == EXPECTED_FAILING[fault], _explain(run, EXPECTED_FAILING[fault])
    assert run.with_outcome("error") == EXPECTED_ERROR.get(fault, set()), run.messages()
    assert run.with_outcome("warning") == EXPECTED_WARNING.get(fault, set()), run.messages()
    assert (run.returncode == 0) == (not EXPECTED_FAILING[fault]), run.messages()
    if fault in EXPECTED_MESSAGE:
        nodeid, fragments = EXPECTED_MESSAGE[fault]
        message = next(r["message"] for r in run.results["results"] if r["nodeid"] == nodeid)
        assert all(f in message for f in fragments), message
    if fault in EXPECTED_WARNING:
        strict = run_audit(tmp_path / "strict", "--strict-warnings")
        assert strict.failing() == EXPECTED_WARNING[fault], _explain(strict, EXPECTED_WARNING[fault])


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


# --- cross-check with testssl.sh -------------------------------------------------------------

# testssl.sh (Debian 3.0.8) cannot present a client certificate: the MX is not cross-checked.
CROSS_CHECKED = ("https-api", "smtp-submission", "imap-starttls")
COMPARED_RULES = ("protocols", "cipher_suites_tls12", "cipher_suites_tls13", "forward_secrecy")


def _as_scan(endpoint: TlsEndpoint, found: TestsslFindings) -> TlsScan:
    """testssl.sh's findings in the shape the policy engine judges (names only: the rules
    compared here read nothing else)."""
    return TlsScan(endpoint, datetime.now(timezone.utc), found.duration_s, protocols={
        p: tuple(AcceptedSuite(n, n, None, None, None) for n in found.suites.get(p, ()))
        for p in PROTOCOLS})


@pytest.mark.parametrize("fault", ["tls-legacy", "weak-ciphers"])
def test_verdicts_agree_with_testssl(lab_fault, fault):
    lab_fault(fault)
    lab = profiles.load("lab")
    policy = load_policy(lab.path_of("policy", "tls"))
    endpoints = {e.name: scan_target(e) for e in tls_endpoints(lab) if e.name in CROSS_CHECKED}
    with ThreadPoolExecutor(len(endpoints)) as pool:
        testssl = dict(zip(endpoints, pool.map(
            lambda e: run_testssl(e.host, e.port, e.starttls, timeout_s=240), endpoints.values())))
    failures = 0
    for name, endpoint in endpoints.items():
        found = testssl[name]
        assert found.error is None, f"{name}: testssl.sh: {found.error}"
        ours = scan(endpoint)
        assert ours.error is None, f"{name}: {ours.error}"
        assert ours.accepted_protocols == found.protocols, name
        for version in found.protocols:
            assert {s.name for s in ours.protocols[version]} == set(found.suites[version]), \
                f"{name} {version}"
        theirs = _as_scan(endpoint, found)
        for rule in COMPARED_RULES:
            a, b = evaluate_rule(policy, rule, ours), evaluate_rule(policy, rule, theirs)
            assert (a.verdict, sorted(a.offending)) == (b.verdict, sorted(b.offending)), \
                f"{name} {rule}: sslyze {a.message()} / testssl.sh {b.message()}"
            failures += a.verdict == "fail"
    assert failures >= 2 * len(endpoints), "the fault was not seen at all"
