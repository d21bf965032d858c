"""sslyze scans against the hostile bench: each ends as a failed scan within its deadline.

sslyze's own time-outs are per read: a trickled handshake or banner never trips them, and a
STARTTLS reply of garbage crashes its connectivity worker so its results never come. The wait
in the calling thread (``deadline_s``) is the bound; no TLS rule may pass on such a scan.
"""
from __future__ import annotations

import time

import pytest

from policy.tls import evaluate, load_policy
from probes.tls_scan import TlsEndpoint, scan
from tests.labctl import REPO

ANSSI = load_policy(REPO / "fixtures" / "policies" / "anssi-tls.toml")
DEADLINE_S = 4.0


@pytest.mark.parametrize(("kind", "starttls"), [
    ("tarpit", None), ("garbage", None), ("garbage", "smtp"), ("smtp-slow-banner", None),
    ("smtp-endless-banner", "smtp"), ("http-header-trickle", None)])
# sslyze's worker thread dies on the garbage STARTTLS reply (UnicodeDecodeError): expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_hostile_server_ends_as_a_failed_scan_within_its_deadline(hostile, kind, starttls):
    target = hostile(kind)
    started = time.monotonic()
    result = scan(TlsEndpoint(f"hostile-{kind}", target.host, target.port, starttls=starttls),
                  timeout_s=1, deadline_s=DEADLINE_S)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + 1, f"{kind}: {elapsed:.1f}s"
    assert result.error, f"{kind}: a scan of a hostile server has no error"
    verdicts = {r.rule_id: r.verdict for r in evaluate(ANSSI, result)}
    assert "pass" not in verdicts.values() and "error" in verdicts.values(), verdicts


def test_deadline_message_names_endpoint_and_step(hostile):
    target = hostile("smtp-slow-banner")
    result = scan(TlsEndpoint("slow", target.host, target.port), timeout_s=1, deadline_s=2)
    assert result.error == (f"could not run: {target.address}: TLS scan: no complete answer "
                            "within 2 s"), result.error
