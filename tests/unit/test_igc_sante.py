"""IGC Santé trust anchors: the shipped PRODUCTION ones are what their fingerprints say, a
production bundle must be exactly them, and a test bundle must be the TEST hierarchy by name
unless it is declared self-made (issue 13 item 4). Home-made CAs come from ``cryptography``."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plugins import igc_sante
from probes import certificates
from probes.certificates import TrustAnchors


def make_ca(cn: str, org: str | None = None, ous: tuple[str, ...] = ()) -> x509.Certificate:
    """A self-signed CA certificate with this subject (C=FR, O, OU..., CN)."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    name = x509.Name(attributes)
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def shipped() -> list[x509.Certificate]:
    return certificates.load_pem_chain(igc_sante.PRODUCTION_BUNDLE.read_bytes())


def test_shipped_anchors_match_their_fingerprints():
    expected = igc_sante.production_fingerprints()
    assert len(expected) == 2
    for name in ("ac-racine-igc-sante-elementaire.pem", "ac-igc-sante-elementaire-organisations.pem"):
        (cert,) = certificates.load_pem_chain((igc_sante.FIXTURES / name).read_bytes())
        der = cert.public_bytes(serialization.Encoding.DER)
        assert hashlib.sha256(der).hexdigest() in expected
        assert expected[certificates.fingerprint(cert)] == cert.subject.rfc4514_string()
    assert {certificates.fingerprint(c) for c in shipped()} == set(expected)
    assert igc_sante.production_problem(igc_sante.PRODUCTION_BUNDLE) is None


def test_production_bundle_must_be_exactly_the_shipped_anchors(tmp_path: Path):
    root, intermediate = shipped()
    home = make_ca("not IGC Sante", "ASIP-SANTE", ("IGC-SANTE",))
    cases = {"extra": pem(root, intermediate, home), "home": pem(home),
             "root-only": pem(root), "empty": b"no certificate here\n"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert "also holds not IGC Sante" in igc_sante.production_problem(tmp_path / "extra")
    assert "also holds not IGC Sante" in igc_sante.production_problem(tmp_path / "home")
    assert "lacks CN=AC IGC-SANTE ELEMENTAIRE ORGANISATIONS" in igc_sante.production_problem(
        tmp_path / "root-only")
    assert "holds no PEM certificate" in igc_sante.production_problem(tmp_path / "empty")
    assert "cannot be read" in igc_sante.production_problem(tmp_path / "missing.pem")
    (tmp_path / "reordered").write_bytes(pem(intermediate, root))
    assert igc_sante.production_problem(tmp_path / "reordered") is None


def test_test_profile_anchors_must_be_the_igc_test_hierarchy_unless_self_made():
    home = TrustAnchors("home.pem", (make_ca("not IGC Sante", "LAB ASIP-SANTE",
                                             ("IGC-SANTE TEST",)),))
    refused = certificates.trust_store(home, self_made=False)
    assert refused.verdict == "fail"
    assert refused.offending == [
        "not IGC Sante: not the IGC Santé TEST hierarchy (subject CN=not IGC Sante,OU=IGC-SANTE "
        "TEST,O=LAB ASIP-SANTE,C=FR; expected OU=IGC-SANTE TEST and O=ASIP-SANTE): declare "
        "[trust] self_made = true for home-made anchors"]
    declared = certificates.trust_store(home, self_made=True)
    assert declared.verdict == "pass"
    assert "self-made, not IGC Santé: chains are checked against non-IGC anchors" in declared.measured
    agency = TrustAnchors("test.pem", (make_ca("TEST AC RACINE IGC-SANTE ELEMENTAIRE", "ASIP-SANTE",
                                               ("0002 187512751", "IGC-SANTE TEST")),))
    assert certificates.trust_store(agency, self_made=False).verdict == "pass"
    production_ou = TrustAnchors("p.pem", (make_ca("AC RACINE", "ASIP-SANTE", ("IGC-SANTE",)),))
    assert certificates.trust_store(production_ou, self_made=False).verdict == "fail"


def test_production_trust_store_is_judged_by_fingerprint():
    prints = igc_sante.production_fingerprints()
    good = TrustAnchors("prod.pem", tuple(shipped()))
    assert certificates.trust_store(good, production=True, igc_production=prints).verdict == "pass"
    home = make_ca("AC RACINE IGC-SANTE ELEMENTAIRE", "ASIP-SANTE", ("IGC-SANTE",))
    lookalike = certificates.trust_store(TrustAnchors("fake.pem", (shipped()[0], home)),
                                         production=True, igc_production=prints)
    assert lookalike.verdict == "fail"
    assert any("not an IGC Santé PRODUCTION anchor" in o for o in lookalike.offending)
    assert any("AC IGC-SANTE ELEMENTAIRE ORGANISATIONS" in o and "missing" in o
               for o in lookalike.offending)


def test_anchors_statement_says_self_made(tmp_path: Path):
    data = {"environment": {"kind": "test"}, "trust": {"anchors": "a.pem", "self_made": True}}
    assert igc_sante.anchors_statement(data, tmp_path).startswith(igc_sante.SELF_MADE_NOTE)
    data["trust"]["self_made"] = False
    assert igc_sante.anchors_statement(data, tmp_path).startswith("IGC Santé TEST")
    assert igc_sante.anchors_statement({"environment": {"kind": "test"}}, tmp_path) is None
