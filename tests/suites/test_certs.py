"""suites/certs on broken *input*: a production profile, certificate files broken one way
each, a production trust store holding a TEST root, a malformed ``[certificates]`` entry.

The lab's own certificate faults (expiring, expired, untrusted, PRODUCTION chain) are proven
with the TLS faults in tests/suites/test_tls.py, in one table for both suites. Here the lab
profile is copied and edited (tests/profile_variants.py); only the first test needs the lab
running, the others read the lab's PKI files and never touch the network.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab import pki
from plugins.profile import ENV_DIR
from tests.labctl import SuiteRun, run_suite
from tests.plugin.test_cli import pytest_run
from tests.profile_variants import lab_variant
from tests.suites.test_tls import ENDPOINTS, _explain

CERTS = "suites/certs/test_certificates.py::"
KEYS = "suites/certs/test_key_files.py::"
TRUST = f'anchors = "{ENV_DIR}/../../.lab/pki/anchors-test.pem"'
FORBIDDEN = f'forbidden_anchors = "{ENV_DIR}/../../.lab/pki/anchors-prod.pem"'


def _production(tmp_path: Path, anchors: str = "prod") -> Path:
    """The lab profile as a production one: PRODUCTION anchors, TEST forbidden (or, with
    ``anchors="test"``, a production profile wrongly trusting the TEST root)."""
    replacements = {'kind = "test"': 'kind = "production"'}
    if anchors == "prod":
        replacements |= {TRUST: TRUST.replace("anchors-test", "anchors-prod"),
                         FORBIDDEN: FORBIDDEN.replace("anchors-prod", "anchors-test")}
    return lab_variant(tmp_path, f"labprod{anchors}", replacements)


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


def test_production_trust_store_with_a_test_root_fails(tmp_path):
    good = run_suite("suites/certs/test_trust_store.py", tmp_path=tmp_path / "good")
    assert good.with_outcome("passed") == {"suites/certs/test_trust_store.py::test_trust_anchors"}
    run = run_suite("suites/certs/test_trust_store.py", "--env",
                    str(_production(tmp_path, anchors="test")), tmp_path=tmp_path / "bad")
    assert run.failing() == {"suites/certs/test_trust_store.py::test_trust_anchors"}
    assert "IGC Santé TEST anchor in a production trust store" in run.messages()


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
