"""An outside opinion on the TLS faults: testssl.sh, run on the same ports, must find the same
protocol versions and cipher suites as our sslyze scans, and the ANSSI policy must judge both
findings alike. Every disagreement is listed with both tools' findings, then the test fails.

testssl.sh (Debian 3.0.8) cannot present a client certificate, so the MX port (which requires
one) is not cross-checked; the good lab is the baseline both tools must also agree on.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from plugins import profile as profiles
from plugins.endpoints import tls_endpoints
from plugins.tls_audit import scan_target
from policy.tls import evaluate_rule, load_policy
from probes.testssl import TestsslFindings, run_testssl
from probes.tls_scan import PROTOCOLS, AcceptedSuite, TlsEndpoint, TlsScan, scan
from tests.detection.expected import GOOD

CROSS_CHECKED = ("https-api", "smtp-submission", "imap-starttls")
COMPARED_RULES = ("protocols", "cipher_suites_tls12", "cipher_suites_tls13", "forward_secrecy")
# lab state → how many (endpoint × rule) verdicts must be "fail" (the fault must be seen at all).
STATES = {GOOD: 0, "tls-legacy": 2 * len(CROSS_CHECKED), "weak-ciphers": 2 * len(CROSS_CHECKED)}


def _as_scan(endpoint: TlsEndpoint, found: TestsslFindings) -> TlsScan:
    """testssl.sh's findings in the shape the policy engine judges (names only: the rules
    compared here read nothing else)."""
    return TlsScan(endpoint, datetime.now(UTC), found.duration_s, protocols={
        p: tuple(AcceptedSuite(n, n, None, None, None) for n in found.suites.get(p, ()))
        for p in PROTOCOLS})


def _findings(scan_: TlsScan) -> dict[str, list[str]]:
    return {p: sorted(s.name for s in scan_.protocols[p]) for p in scan_.accepted_protocols}


def disagreements(name: str, ours: TlsScan, theirs: TestsslFindings, policy) -> list[str]:
    """Each way sslyze's and testssl.sh's findings (and the verdicts on them) differ."""
    found: list[str] = []
    if ours.accepted_protocols != theirs.protocols:
        found.append(f"{name}: protocols: sslyze {list(ours.accepted_protocols)} / "
                     f"testssl.sh {list(theirs.protocols)}")
    for version in sorted(set(ours.accepted_protocols) | set(theirs.protocols)):
        a = {s.name for s in ours.protocols.get(version, ())}
        b = set(theirs.suites.get(version, ()))
        if a != b:
            found.append(f"{name} {version}: only sslyze {sorted(a - b)}; "
                         f"only testssl.sh {sorted(b - a)}")
    as_scan = _as_scan(ours.endpoint, theirs)
    for rule in COMPARED_RULES:
        a, b = evaluate_rule(policy, rule, ours), evaluate_rule(policy, rule, as_scan)
        if (a.verdict, sorted(a.offending)) != (b.verdict, sorted(b.offending)):
            found.append(f"{name} {rule}: sslyze {a.message()} / testssl.sh {b.message()}")
    return found


@pytest.mark.parametrize("state", list(STATES))
def test_testssl_finds_what_sslyze_finds(state, lab_state):
    lab_state(state)
    lab = profiles.load("lab")
    policy = load_policy(lab.path_of("policy", "tls"))
    endpoints = {e.name: scan_target(e) for e in tls_endpoints(lab) if e.name in CROSS_CHECKED}
    assert sorted(endpoints) == sorted(CROSS_CHECKED)
    with ThreadPoolExecutor(2 * len(endpoints)) as pool:
        theirs = dict(zip(endpoints, pool.map(
            lambda e: run_testssl(e.host, e.port, e.starttls, timeout_s=240), endpoints.values()), strict=True))
        ours = dict(zip(endpoints, pool.map(scan, endpoints.values()), strict=True))
    problems, failing = [], 0
    for name in endpoints:
        if theirs[name].error or ours[name].error:
            problems.append(f"{name}: testssl.sh error {theirs[name].error!r}, "
                            f"sslyze error {ours[name].error!r}")
            continue
        problems += disagreements(name, ours[name], theirs[name], policy)
        failing += sum(evaluate_rule(policy, rule, ours[name]).verdict == "fail"
                       for rule in COMPARED_RULES)
    both = "\n".join(f"  {n}: sslyze {_findings(ours[n])}\n  {n}: testssl.sh "
                     f"{ {p: sorted(theirs[n].suites.get(p, ())) for p in theirs[n].protocols} }"
                     for n in endpoints)
    assert not problems, "\n".join(problems) + "\n--- both tools' findings:\n" + both
    assert failing >= STATES[state] and (failing == 0) == (state == GOOD), (
        f"{state}: {failing} failing verdicts, expected at least {STATES[state]}\n{both}")
