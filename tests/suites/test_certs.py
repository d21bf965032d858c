"""suites/certs on broken *input*: a production profile, certificate files broken one way
each, trust anchors that are not IGC Santé's, a malformed ``[certificates]`` entry.

The lab's own certificate faults (expiring, expired, untrusted, PRODUCTION chain) are proven
with the TLS faults in tests/suites/test_tls.py, in one table for both suites. Here the lab
profile is copied and edited (tests/profile_variants.py); only the first test needs the lab
running, the others read the lab's PKI files and never touch the network.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lab import pki
from plugins.profile import ENV_DIR
from tests.labctl import SuiteRun, run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import PRODUCTION, lab_variant
from tests.suites.test_tls import ENDPOINTS, _explain

CERTS = "suites/certs/test_certificates.py::"
KEYS = "suites/certs/test_key_files.py::"
TRUST = f'anchors = "{ENV_DIR}/../../.lab/pki/anchors-test.pem"'
FORBIDDEN = f'forbidden_anchors = "{ENV_DIR}/../../.lab/pki/anchors-prod.pem"'


def _production(tmp_path: Path) -> Path:
    """The lab profile as a production one: the shipped IGC Santé PRODUCTION anchors (the only
    ones a production profile may trust), the lab's TEST root forbidden."""
    return lab_variant(tmp_path, "labprod", {
        **PRODUCTION, FORBIDDEN: FORBIDDEN.replace("anchors-prod", "anchors-test")})


def test_test_chain_fails_in_a_production_profile(good_lab, tmp_path):
    run = run_suite("suites/certs", "--env", str(_production(tmp_path)), tmp_path=tmp_path)
    expected = {f"{CERTS}test_chain[wire-{e}]" for e in ENDPOINTS} | {f"{CERTS}test_chain[disk-server]"}
    assert run.failing() == expected, _explain(run, expected)
    message = next(r["message"] for r in run.results["results"]
                   if r["nodeid"] == f"{CERTS}test_chain[wire-imaps]")
    assert "builds to the forbidden anchors" in message and "anchors-test.pem" in message
    assert "LAB TEST AC RACINE IGC-SANTE ELEMENTAIRE" in message


def _files_entry(name: str, cert: Path, key: Path, chain: Path | None = None,
                 hosts: tuple[str, ...] = ("localhost",)) -> str:
    lines = ["[[certificates.files]]", f'name = "{name}"', f'cert = "{cert}"', f'key = "{key}"',
             f"hosts = {list(hosts)!r}".replace("'", '"'), "client_auth = true"]
    if chain is not None:
        lines.append(f'chain = "{chain}"')
    return "\n".join(lines) + "\n"


def _broken_files(tmp_path: Path) -> str:
    """Certificate files, each broken in exactly one way (the lab's good "server" entry stays)."""
    pki.ensure()
    variant = {v: pki.path("server", v) for v in ("good", "expiring", "expired", "untrusted",
                                                  "prod")}
    readable = tmp_path / "readable-key.pem"
    shutil.copyfile(variant["good"] / "key.pem", readable)
    os.chmod(readable, 0o644)
    return "".join([
        _files_entry("expiring", variant["expiring"] / "cert.pem", variant["expiring"] / "key.pem",
                     variant["expiring"] / "chain.pem"),
        _files_entry("expired", variant["expired"] / "cert.pem", variant["expired"] / "key.pem",
                     variant["expired"] / "chain.pem"),
        _files_entry("untrusted", variant["untrusted"] / "chain.pem",
                     variant["untrusted"] / "key.pem"),
        _files_entry("prod", variant["prod"] / "chain.pem", variant["prod"] / "key.pem"),
        _files_entry("mismatched", variant["good"] / "chain.pem", variant["expiring"] / "key.pem"),
        _files_entry("readable", variant["good"] / "chain.pem", readable),
        _files_entry("misnamed", variant["good"] / "chain.pem", variant["good"] / "key.pem",
                     hosts=("mail.autre-operateur.fr",)),
    ])


def _disk_run(tmp_path: Path, profile: Path, *args: str) -> SuiteRun:
    """The on-disk checks only: no scan, no lab process involved."""
    return run_suite("suites/certs/test_certificates.py", "suites/certs/test_key_files.py",
                     "-k", "disk or test_key_files", "--env", str(profile), *args,
                     tmp_path=tmp_path)


def test_certificate_files_broken_one_way_each(tmp_path):
    # The failure threshold lowered to 3 days, so the 5-day "expiring" certificate warns.
    profile = lab_variant(tmp_path, "labfiles", {"cert_fail_days = 7": "cert_fail_days = 3"},
                          extra=_broken_files(tmp_path))
    run = _disk_run(tmp_path / "run", profile)
    expected = {f"{CERTS}test_expiry[disk-expired]", f"{CERTS}test_chain[disk-untrusted]",
                f"{CERTS}test_chain[disk-prod]", f"{CERTS}test_hostname[disk-misnamed]",
                f"{KEYS}test_private_key_matches_certificate[mismatched]",
                f"{KEYS}test_private_key_not_world_readable[readable]"}
    assert run.failing() == expected, _explain(run, expected)
    assert run.with_outcome("warning") == {f"{CERTS}test_expiry[disk-expiring]"}, run.messages()
    assert run.with_outcome("skipped") == set(), run.messages()
    passed = run.with_outcome("passed")
    assert f"{KEYS}test_private_key_matches_certificate[server]" in passed
    assert f"{CERTS}test_key_usage[disk-server]" in passed       # serverAuth + clientAuth
    assert f"{CERTS}test_crl_distribution_point[disk-server]" in passed
    strict = _disk_run(tmp_path / "strict", profile, "--strict-warnings")
    assert strict.failing() == expected | {f"{CERTS}test_expiry[disk-expiring]"}, strict.messages()


def _home_made_ca(folder: Path) -> Path:
    """A CA anyone can make, whose name says what it is: not IGC Santé."""
    from tests.unit.test_igc_sante import make_ca, pem

    path = folder / "home-made-anchors.pem"
    path.write_bytes(pem(make_ca("not IGC Sante", "LAB Home", ("IGC-SANTE TEST",))))
    return path


STORE = "suites/certs/test_trust_store.py"
ANCHORS_CHECK = f"{STORE}::test_trust_anchors"


def test_trust_anchors_must_be_igc_sante_unless_declared_self_made(tmp_path):
    """Issue 13 item 4. The lab declares its anchors self-made: the check passes and every
    report header says chains are checked against non-IGC anchors. A test profile that does
    not declare them fails on a home-made CA named "not IGC Sante" and on the lab's own
    TEST-shaped root; a production profile trusting anything but IGC Santé PRODUCTION is
    refused before anything runs; the shipped PRODUCTION anchors pass."""
    proc = pytest_run(STORE, "--env", "lab", "--evidence", "--reports-dir", str(tmp_path / "lab"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("mssante trust anchors: self-made anchors, not IGC Santé: chains are checked "
            "against non-IGC anchors") in proc.stdout
    run_dir = tmp_path / "lab" / "runs" / "latest"
    note = "chains are checked against non-IGC anchors"
    results = json.loads((run_dir / "results.json").read_text())
    assert note in results["metadata"]["trust_anchors"]
    assert f"**Ancres de confiance:** self-made anchors, not IGC Santé: {note}" in (
        run_dir / "summary.md").read_text()
    (bundle,) = (tmp_path / "lab" / "evidence").iterdir()
    assert f"| Trust anchors | self-made anchors, not IGC Santé: {note}" in (
        bundle / "evidence.md").read_text()
    assert f"Trust anchors</td><td>self-made anchors, not IGC Santé: {note}" in (
        bundle / "evidence.html").read_text()

    home = lab_variant(tmp_path, "labhome", {
        TRUST: f'anchors = "{_home_made_ca(tmp_path)}"', "self_made = true": "self_made = false"})
    run = run_suite(STORE, "--env", str(home), tmp_path=tmp_path / "home")
    assert run.failing() == {ANCHORS_CHECK}, run.messages()
    assert ("not IGC Sante: not the IGC Santé TEST hierarchy (subject CN=not IGC Sante,"
            "OU=IGC-SANTE TEST,O=LAB Home,C=FR; expected OU=IGC-SANTE TEST and O=ASIP-SANTE)"
            in run.messages()), run.messages()
    undeclared = lab_variant(tmp_path, "labundeclared", {"self_made = true": "self_made = false"})
    run = run_suite(STORE, "--env", str(undeclared), tmp_path=tmp_path / "undeclared")
    assert run.failing() == {ANCHORS_CHECK}, run.messages()
    assert "LAB TEST AC RACINE IGC-SANTE ELEMENTAIRE: not the IGC Santé TEST hierarchy" in (
        run.messages())

    production = run_suite(STORE, "--env", str(_production(tmp_path)),
                           tmp_path=tmp_path / "production")
    assert production.with_outcome("passed") == {ANCHORS_CHECK}, production.messages()
    for anchors in ("anchors-test", "anchors-prod"):    # the lab's TEST and PRODUCTION roots
        wrong = lab_variant(tmp_path, f"labprod-{anchors}", {
            'kind = "test"': 'kind = "production"', "self_made = true": "self_made = false",
            TRUST: TRUST.replace("anchors-test", anchors)})
        proc = pytest_run(STORE, "--env", str(wrong))
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        assert proc.returncode == 4 and len(lines) == 1, proc.stdout + proc.stderr
        assert (f"{wrong}: [trust] key 'anchors' must be exactly the IGC Santé PRODUCTION "
                "anchors (by SHA-256 fingerprint)") in lines[0], lines[0]


def test_bad_certificate_files_entry_is_one_usage_error_line(tmp_path):
    profile = lab_variant(tmp_path, "labbad", extra='[[certificates.files]]\nname = "x"\n'
                                                    'cert = "c.pem"\n')
    proc = pytest_run("suites/certs", "--env", str(profile))
    assert proc.returncode == 4
    assert f"ERROR: {profile}: [certificates] files #2: missing key 'key'" in proc.stderr
    unknown = lab_variant(tmp_path, "labbad2", extra='[[certificates.files]]\nname = "x"\n'
                                                     'cert = "c"\nkey = "k"\nmode = 600\n')
    proc = pytest_run("suites/certs", "--env", str(unknown))
    assert proc.returncode == 4 and "#2: unknown key 'mode'" in proc.stderr
