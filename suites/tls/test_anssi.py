"""Every TLS endpoint of the profile judged against the TLS policy (ANSSI by default).

One test per (endpoint × rule) — ``test_anssi[imap-starttls-protocols]`` — so a failure names
the port, the rule, its requirement and the offending versions or suites. Every rule of an
endpoint reads the same scan, made once per run whatever the number of rules or xdist workers
(``plugins.tls_audit``); the scan's JSON is the evidence. A degraded setting (ANSSI annex A.2
suite, no TLS 1.3) is a warning, a failure under ``--strict-warnings``; a rule that does not
apply (HSTS on a mail port, a rule the policy disables for an endpoint) is skipped as such.
"""
from __future__ import annotations

from collections.abc import Callable

from plugins.endpoints import Endpoint
from plugins.outcomes import Recorder
from plugins.tls_audit import TlsCheck, report_verdict, scan_evidence
from policy.tls import TlsPolicy, evaluate_rule
from probes.tls_scan import TlsScan


def test_anssi(tls_check: TlsCheck, tls_policy: TlsPolicy,
               tls_scanner: Callable[[Endpoint], TlsScan], record: Recorder) -> None:
    endpoint = tls_check.endpoint
    scan = tls_scanner(endpoint)
    record.evidence(scan_evidence(endpoint))
    result = evaluate_rule(tls_policy, tls_check.rule_id, scan)
    report_verdict(record, result.verdict, f"{endpoint.name}: {result.message()}",
                   measured=result.measured, measure_name=f"{endpoint.name} {result.rule_id}")
