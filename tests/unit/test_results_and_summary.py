"""Outcome merging and the markdown summary (pure units, no pytest run)."""
from __future__ import annotations

import json

from plugins.redaction import register
from plugins.results import CheckResult, counts, merge
from plugins.summary_md import render, verdict


def result(outcome_by_phase, props=()):
    r = CheckResult("suites/x/test_a.py::test_b")
    for when, outcome, longrepr in outcome_by_phase:
        merge(r, when, outcome, longrepr, 0.1, list(props))
    return r


def test_failed_call_is_failed_setup_failure_is_error():
    assert result([("setup", "passed", None), ("call", "failed", "assert 1")]).outcome == "failed"
    assert result([("setup", "failed", "boom")]).outcome == "error"


def test_unreachable_target_is_error_not_failure():
    r = result([("setup", "passed", None), ("call", "failed", "ConnectionRefusedError")],
               [("could_not_run", "ConnectionRefusedError: refused")])
    assert r.outcome == "error"


def test_skip_keeps_its_reason():
    r = result([("setup", "skipped", ("f", 1, "Skipped: not configured in lab: [grafana]"))])
    assert r.outcome == "skipped" and r.message == "not configured in lab: [grafana]"


def test_warning_is_distinct_from_pass():
    r = result([("call", "passed", None)], [("warning", "expires in 12 days")])
    assert r.outcome == "warning" and "12 days" in r.message


def test_waived_failure():
    r = result([("call", "failed", "x")], [("waiver", json.dumps({"justification": "j"}))])
    assert r.outcome == "waived"


def test_verdicts():
    ok = result([("call", "passed", None)])
    bad = result([("call", "failed", "x")])
    skip = result([("setup", "skipped", ("f", 1, "Skipped: n"))])
    assert verdict([ok]) == "PASSED"
    assert verdict([ok, bad]) == "FAILED"
    assert verdict([skip]) == "INCONCLUSIVE"
    assert counts([ok, bad, skip])["skipped"] == 1


def test_summary_shape_and_redaction():
    register("very-secret-pw-42")
    bad = result([("call", "failed", "login with very-secret-pw-42 failed")],
                 [("requirement", "SEED-POST-7"), ("service", "api"),
                  ("measured", json.dumps({"name": "api_ms", "value": 3, "unit": "ms"}))])
    text = render({"environment": "lab (test)", "started": "now"}, [bad])
    for heading in ("## Informations générales", "## Services vérifiés", "## Tests",
                    "## Métriques", "## Issues connues", "## Actions de suivi"):
        assert heading in text
    assert "| api | 1 | ❌ en échec |" in text
    assert "SEED-POST-7" in text and "api_ms" in text
    assert "very-secret-pw-42" not in text


def test_message_from_formatted_failure_text():
    text = "def test_x():\n>       assert a == b\nE       AssertionError: /health answered 502\nE       assert 502 == 200"
    r = result([("call", "failed", text)])
    assert r.message == "AssertionError: /health answered 502"


def test_refused_certificate_is_a_failure_not_could_not_run():
    """httpx wraps a certificate verification error in ConnectError (a TransportError): the
    service answered, with a certificate clients must refuse — failed, not error."""
    import ssl

    import httpx

    from plugins.reporting import could_not_run

    def wrapped(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except BaseException as exc:
                raise httpx.ConnectError(str(exc)) from exc
        except httpx.ConnectError as outer:
            return outer

    refused = ssl.SSLCertVerificationError(1, "certificate verify failed: certificate has expired")
    assert not could_not_run(wrapped(refused))
    assert not could_not_run(refused)
    assert could_not_run(wrapped(ConnectionRefusedError(111, "Connection refused")))
    assert could_not_run(TimeoutError("timed out"))
    assert not could_not_run(AssertionError("health is degraded"))
