"""The TLS policy engine on hand-built scans: every rule can pass, warn, fail or error.

Pure units (no network): a scan is a ``TlsScan`` built here, the policy is the shipped ANSSI
file, so these tests also prove the file says what the engine expects.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policy.tls import PolicyError, RuleResult, TlsPolicy, evaluate, evaluate_rule, load_policy
from probes.tls_scan import AcceptedSuite, CertificateFacts, Hsts, TlsEndpoint, TlsScan

ANSSI = Path(__file__).resolve().parents[2] / "fixtures" / "policies" / "anssi-tls.toml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def suite(name: str, kex: str | None = "ECDH", bits: int | None = 253,
          group: str | None = "x25519") -> AcceptedSuite:
    return AcceptedSuite(name, name.lower(), kex, bits, group)


def cert(subject: str, issuer: str, sig: str | None = "sha256", algorithm: str = "RSA",
         bits: int = 2048) -> CertificateFacts:
    return CertificateFacts(pem="", subject=subject, issuer=issuer, key_algorithm=algorithm,
                            key_bits=bits, curve=None, signature_hash=sig,
                            signature_algorithm=f"{sig}WithRSAEncryption",
                            not_after=datetime(2027, 1, 1, tzinfo=UTC),
                            fingerprint_sha256=f"{subject}|{issuer}|{sig}|{bits}")


GOOD_TLS12 = (suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
              suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"))
GOOD_TLS13 = (suite("TLS_AES_256_GCM_SHA384"), suite("TLS_AES_128_GCM_SHA256"))
GOOD_CHAIN = (cert("CN=api.lab", "CN=LAB AC"), cert("CN=LAB AC", "CN=LAB ROOT", bits=4096))
HTTPS = TlsEndpoint("https-api", "localhost", 10443, http=True)
SMTP = TlsEndpoint("smtp-mx", "localhost", 10025, starttls="smtp")


def good_scan(endpoint: TlsEndpoint = HTTPS, **changes: object) -> TlsScan:
    """What a well-configured ANSSI endpoint looks like; tests change one thing at a time."""
    base = TlsScan(
        endpoint=endpoint, started_at=NOW, duration_s=2.0, client_auth="DISABLED",
        protocols={"SSLv2": (), "SSLv3": (), "TLSv1.0": (), "TLSv1.1": (),
                   "TLSv1.2": GOOD_TLS12, "TLSv1.3": GOOD_TLS13},
        groups=("x25519", "secp256r1", "secp384r1"), certificate_chains=(GOOD_CHAIN,),
        compression=False, secure_renegotiation=True, client_renegotiation=False,
        fallback_scsv=True, heartbleed=False, robot="NOT_VULNERABLE_RSA_NOT_SUPPORTED",
        ccs_injection=False, extended_master_secret=True, early_data=False,
        hsts=Hsts(63072000, True, False) if endpoint.http else None)
    return dataclasses.replace(base, **changes)


def with_tls12(*extra: AcceptedSuite) -> dict[str, tuple[AcceptedSuite, ...]]:
    return {**good_scan().protocols, "TLSv1.2": GOOD_TLS12 + extra}


@pytest.fixture(scope="module")
def anssi() -> TlsPolicy:
    return load_policy(ANSSI)


def verdicts(results: list[RuleResult]) -> dict[str, str]:
    return {r.rule_id: r.verdict for r in results}


def test_good_endpoint_passes_every_rule(anssi: TlsPolicy) -> None:
    results = evaluate(anssi, good_scan())
    assert [r.rule_id for r in results] == list(anssi.rule_ids)
    assert {r.rule_id: r.verdict for r in results if r.verdict != "pass"} == {}
    assert all(r.endpoint == "https-api" and r.requirement for r in results)


def test_every_rule_cites_a_catalogued_requirement(anssi: TlsPolicy) -> None:
    from plugins.requirements import load_catalogue

    catalogue = load_catalogue()
    assert [r.requirement for r in anssi.rules if r.requirement not in catalogue] == []


def test_tls10_accepted_fails_protocols(anssi: TlsPolicy) -> None:
    legacy = (suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),)
    scan = good_scan(protocols={**good_scan().protocols, "TLSv1.0": legacy, "TLSv1.1": legacy})
    result = evaluate_rule(anssi, "protocols", scan)
    assert result.verdict == "fail"
    assert result.offending == ["TLSv1.0", "TLSv1.1"]
    assert "TLSv1.0, TLSv1.1 accepted" in result.measured
    # the SHA-1 CBC suite they need is outside both annex lists
    suites = evaluate_rule(anssi, "cipher_suites_tls12", scan)
    assert (suites.verdict, suites.offending) == ("fail", ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])


def test_no_tls13_is_a_warning(anssi: TlsPolicy) -> None:
    scan = good_scan(protocols={**good_scan().protocols, "TLSv1.3": ()})
    assert evaluate_rule(anssi, "protocols", scan).verdict == "warn"
    assert evaluate_rule(anssi, "cipher_suites_tls13", scan).verdict == "not_applicable"


def test_cbc_sha256_suite_is_degraded_warning(anssi: TlsPolicy) -> None:
    scan = good_scan(protocols=with_tls12(suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")))
    result = evaluate_rule(anssi, "cipher_suites_tls12", scan)
    assert result.verdict == "warn"
    assert result.offending == ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"]
    assert verdicts(evaluate(anssi, scan))["forward_secrecy"] == "pass"


def test_static_rsa_key_exchange_fails(anssi: TlsPolicy) -> None:
    static = suite("TLS_RSA_WITH_AES_256_GCM_SHA384", kex=None, bits=None, group=None)
    results = verdicts(evaluate(anssi, good_scan(protocols=with_tls12(static))))
    assert results["forward_secrecy"] == "fail"
    assert results["cipher_suites_tls12"] == "fail"
    fs = evaluate_rule(anssi, "forward_secrecy", good_scan(protocols=with_tls12(static)))
    assert fs.offending == ["TLS_RSA_WITH_AES_256_GCM_SHA384"]


def test_tls13_ccm8_is_outside_annex(anssi: TlsPolicy) -> None:
    protocols = {**good_scan().protocols,
                 "TLSv1.3": GOOD_TLS13 + (suite("TLS_AES_128_CCM_8_SHA256"),)}
    result = evaluate_rule(anssi, "cipher_suites_tls13", good_scan(protocols=protocols))
    assert (result.verdict, result.offending) == ("fail", ["TLS_AES_128_CCM_8_SHA256"])


def test_small_dh_group_and_foreign_curve_fail(anssi: TlsPolicy) -> None:
    dhe = suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", kex="DH", bits=1024, group=None)
    scan = good_scan(protocols=with_tls12(dhe), groups=("x25519", "secp224r1"))
    result = evaluate_rule(anssi, "key_exchange", scan)
    assert result.verdict == "fail"
    assert result.offending == ["secp224r1", "DHE 1024 bits"]
    assert "DHE: 1024 bits" in result.measured


def test_sha1_signature_fails_but_self_signed_root_is_not_judged(anssi: TlsPolicy) -> None:
    sha1_leaf = (cert("CN=api.lab", "CN=LAB AC", sig="sha1"), GOOD_CHAIN[1])
    result = evaluate_rule(anssi, "certificate_signature",
                           good_scan(certificate_chains=(sha1_leaf,)))
    assert result.verdict == "fail"
    assert result.offending == ["CN=api.lab: sha1WithRSAEncryption"]
    with_root = GOOD_CHAIN + (cert("CN=LAB ROOT", "CN=LAB ROOT", sig="sha1"),)
    assert evaluate_rule(anssi, "certificate_signature",
                         good_scan(certificate_chains=(with_root,))).verdict == "pass"


@pytest.mark.parametrize(("algorithm", "bits", "verdict"), [
    ("RSA", 1024, "fail"), ("RSA", 2048, "pass"), ("EC", 256, "pass"), ("EC", 224, "fail"),
    ("DSA", 2048, "fail"),
])
def test_certificate_key_sizes(anssi: TlsPolicy, algorithm: str, bits: int, verdict: str) -> None:
    chain = (cert("CN=api.lab", "CN=LAB AC", algorithm=algorithm, bits=bits), GOOD_CHAIN[1])
    result = evaluate_rule(anssi, "certificate_key", good_scan(certificate_chains=(chain,)))
    assert result.verdict == verdict


@pytest.mark.parametrize(("change", "rule_id"), [
    ({"compression": True}, "compression"),
    ({"secure_renegotiation": False}, "secure_renegotiation"),
    ({"fallback_scsv": False}, "fallback_scsv"),
    ({"heartbleed": True}, "heartbleed"),
    ({"robot": "VULNERABLE_STRONG_ORACLE"}, "robot"),
    ({"ccs_injection": True}, "ccs_injection"),
    ({"extended_master_secret": False}, "extended_master_secret"),
    ({"early_data": True}, "early_data"),
])
def test_each_server_flaw_fails_its_rule_only(anssi: TlsPolicy, change: dict[str, object],
                                              rule_id: str) -> None:
    failing = {k: v for k, v in verdicts(evaluate(anssi, good_scan(**change))).items()
               if v != "pass"}
    assert failing == {rule_id: "fail"}


def test_robot_inconclusive_is_a_warning(anssi: TlsPolicy) -> None:
    result = evaluate_rule(anssi, "robot", good_scan(robot="UNKNOWN_INCONSISTENT_RESULTS"))
    assert result.verdict == "warn"


def test_hsts(anssi: TlsPolicy) -> None:
    missing = evaluate_rule(anssi, "hsts", good_scan(hsts=None))
    assert (missing.verdict, missing.measured) == ("fail", "no Strict-Transport-Security header")
    short = evaluate_rule(anssi, "hsts", good_scan(hsts=Hsts(300, True, False)))
    assert (short.verdict, short.offending) == ("fail", ["max-age below 31536000"])
    assert evaluate_rule(anssi, "hsts", good_scan(SMTP)).verdict == "not_applicable"
    broken = evaluate_rule(anssi, "hsts", good_scan(http_error="ConnectionResetError: reset"))
    assert broken.verdict == "error"


def test_failed_scan_is_an_error_for_every_rule(anssi: TlsPolicy) -> None:
    scan = TlsScan(SMTP, NOW, 0.1, error="ServerRejectedConnection: refused")
    results = {r.rule_id: r for r in evaluate(anssi, scan)}
    assert {r.verdict for r in results.values()} == {"error", "not_applicable"}
    assert results["hsts"].verdict == "not_applicable"          # SMTP: HSTS never applies
    assert "refused" in results["protocols"].measured
    https = TlsScan(HTTPS, NOW, 0.1, error="ServerRejectedConnection: refused")
    assert {r.verdict for r in evaluate(anssi, https)} == {"error"}


def test_failed_scan_command_is_an_error_for_its_rules_only(anssi: TlsPolicy) -> None:
    scan = good_scan(certificate_chains=(),
                     command_errors={"certificate_info": "CONNECTIVITY_ISSUE: timed out"})
    failing = {k: v for k, v in verdicts(evaluate(anssi, scan)).items() if v != "pass"}
    assert failing == {"certificate_key": "error", "certificate_signature": "error"}


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site-tls.toml"
    path.write_text(ANSSI.read_text() + "\n" + text)
    return path


def test_site_policy_relaxes_one_endpoint_only(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, """
[endpoints.smtp-mx]
disable = ["early_data"]
[endpoints.smtp-mx.protocols]
degraded = ["TLSv1.1"]
[endpoints.smtp-mx.robot]
on_failure = "warn"
"""))
    legacy = (suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),)
    protocols = {**good_scan().protocols, "TLSv1.1": legacy}
    mx = verdicts(evaluate(policy, good_scan(SMTP, protocols=protocols, early_data=True,
                                             robot="VULNERABLE_WEAK_ORACLE")))
    assert (mx["protocols"], mx["early_data"], mx["robot"]) == ("warn", "not_applicable", "warn")
    api = verdicts(evaluate(policy, good_scan(protocols=protocols, early_data=True)))
    assert (api["protocols"], api["early_data"]) == ("fail", "fail")


@pytest.mark.parametrize(("text", "key"), [
    ("[rules.protocols]\nrequirement = \"X\"\ntitle = \"t\"\nallowed = \"TLSv1.2\"",
     "rules.protocols.allowed"),
    ("[rules.protocols]\nrequirement = \"X\"\ntitle = \"t\"\nallowed = [\"TLSv1.4\"]",
     "rules.protocols.allowed"),
    ("[rules.protocols]\ntitle = \"t\"\nallowed = [\"TLSv1.2\"]", "rules.protocols.requirement"),
    ("[rules.protocols]\nrequirement = \"X\"\ntitle = \"t\"", "rules.protocols.allowed"),
    ("[rules.certificate_key]\nrequirement = \"X\"\ntitle = \"t\"\nmin_rsa_bits = \"2048\"\n"
     "min_ec_bits = 256", "rules.certificate_key.min_rsa_bits"),
    ("[rules.no_such_rule]\nrequirement = \"X\"\ntitle = \"t\"", "rules.no_such_rule"),
    ("[rules.compression]\nrequirement = \"X\"\ntitle = \"t\"\nlevel = 3",
     "rules.compression.level"),
    ("[rules.compression]\nrequirement = \"X\"\ntitle = \"t\"\non_failure = \"ignore\"",
     "rules.compression.on_failure"),
])
def test_malformed_policy_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"[policy]\nname = \"bad\"\n{text}\n")
    with pytest.raises(PolicyError) as excinfo:
        load_policy(path)
    assert str(excinfo.value).startswith(f"{path}: {key}:")


def test_override_of_unknown_rule_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"endpoints\.smtp-mx\.hsts_typo: no rule"):
        load_policy(write_policy(tmp_path, "[endpoints.smtp-mx.hsts_typo]\nmin_max_age = 1"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[policy\nname = 1")
    with pytest.raises(PolicyError, match=r"broken\.toml: not valid TOML"):
        load_policy(broken)
    with pytest.raises(PolicyError, match=r"missing\.toml: cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_robot_not_measured_when_rsa_suites_are_accepted(anssi: TlsPolicy) -> None:
    """sslyze says "RSA not supported" when its ROBOT handshakes fail (client certificate
    required) even though RSA key exchange is accepted: that is an error, never a pass."""
    scan = good_scan(protocols=with_tls12(suite("TLS_RSA_WITH_AES_256_GCM_SHA384")))
    result = evaluate_rule(anssi, "robot", scan)
    assert result.verdict == "error" and "not measurable" in result.measured
