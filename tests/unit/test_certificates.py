"""probes.certificates on certificates made here: each check passes on a good certificate and
fails (naming the offender) on one broken in exactly one way."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from probes import certificates
from probes.certificates import CLIENT_AUTH, SERVER_AUTH, TrustAnchors

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
SERVER_ONLY = (SERVER_AUTH,)
MX = (SERVER_AUTH, CLIENT_AUTH)


def _name(cn: str, *ous: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      *[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous],
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: object


def _ca(name: x509.Name, parent: Issued | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = parent.key if parent else key
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(parent.cert.subject if parent else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - 365 * DAY).not_valid_after(NOW + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.public_key()), False)  # type: ignore[union-attr]  # a key type that has a public key
            .sign(signer, hashes.SHA256()))  # type: ignore[arg-type]  # a key type that signs
    return Issued(cert, key)


def _leaf(issuer: Issued, *, key: object | None = None, names: tuple[str, ...] = ("localhost",),
          ips: tuple[str, ...] = (), not_before: dt.datetime | None = None,
          not_after: dt.datetime | None = None, ku: x509.KeyUsage | None | bool = True,
          eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.SERVER_AUTH,
                                                           ExtendedKeyUsageOID.CLIENT_AUTH),
          crl: bool = True, ca: bool = False, digest: hashes.HashAlgorithm = hashes.SHA256(),
          cn: str = "mail.example.test") -> Issued:
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer.cert.subject).public_key(key.public_key())  # type: ignore[union-attr]  # a key type that has a public key
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - DAY)
               .not_valid_after(not_after or NOW + 365 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer.key.public_key()), False))  # type: ignore[attr-defined]  # a key type that has a public key
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    if ku is True:
        ku = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    if ku:
        builder = builder.add_extension(ku, True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
    if crl:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.example.test/ca.crl")], None, None,
            None)]), False)
    return Issued(builder.sign(issuer.key, digest), key)  # type: ignore[arg-type]  # a key type that signs


@dataclass
class Pki:
    test_root: Issued
    test_ca: Issued
    prod_root: Issued
    prod_ca: Issued
    foreign_root: Issued

    @property
    def test_anchors(self) -> TrustAnchors:
        return TrustAnchors("anchors-test.pem", (self.test_root.cert,))

    @property
    def prod_anchors(self) -> TrustAnchors:
        return TrustAnchors("anchors-prod.pem", (self.prod_root.cert,))


@pytest.fixture(scope="module")
def pki() -> Pki:
    """IGC Santé-shaped names: TEST with ``OU=IGC-SANTE TEST`` and ``TEST AC`` CNs."""
    test_root = _ca(_name("TEST AC RACINE IGC-SANTE ELEMENTAIRE", "IGC-SANTE TEST"))
    prod_root = _ca(_name("AC RACINE IGC-SANTE ELEMENTAIRE"))
    return Pki(test_root,
               _ca(_name("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "IGC-SANTE TEST"),
                   test_root),
               prod_root, _ca(_name("AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"), prod_root),
               _ca(_name("Elsewhere Root CA")))


# --- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, test", [
    (_name("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "IGC-SANTE TEST", "0002 187512751"), True),
    (_name("LAB TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "LAB", "IGC-SANTE TEST"), True),
    (_name("Some CA", "igc-sante test"), True),
    (_name("AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", "0002 187512751"), False),
    (_name("mail.test.example"), False),
])
def test_test_hierarchy_names_are_recognised(name: x509.Name, test: bool) -> None:
    assert certificates.is_test_name(name) is test


# --- chain -------------------------------------------------------------------------------------

def test_chain_to_the_anchors_passes_and_shows_the_path(pki: Pki) -> None:
    leaf = _leaf(pki.test_ca)
    check = certificates.chain([leaf.cert, pki.test_ca.cert], pki.test_anchors, pki.prod_anchors)
    assert check.verdict == "pass", check
    assert check.measured.startswith("mail.example.test → TEST AC IGC-SANTE ELEMENTAIRE "
                                     "ORGANISATIONS → TEST AC RACINE")


def test_foreign_chain_fails_naming_its_issuer(pki: Pki) -> None:
    leaf = _leaf(pki.foreign_root)
    check = certificates.chain([leaf.cert], pki.test_anchors, pki.prod_anchors)
    assert check.verdict == "fail"
    assert "no chain to anchors-test.pem" in check.measured
    assert check.offending == ["Elsewhere Root CA"]


def test_missing_intermediate_fails(pki: Pki) -> None:
    leaf = _leaf(pki.test_ca)
    assert certificates.chain([leaf.cert], pki.test_anchors).verdict == "fail"


def test_chain_to_forbidden_anchors_fails_saying_so(pki: Pki) -> None:
    """cert-prod-root: a PRODUCTION chain served where TEST is expected."""
    leaf = _leaf(pki.prod_ca)
    check = certificates.chain([leaf.cert, pki.prod_ca.cert], pki.test_anchors, pki.prod_anchors)
    assert check.verdict == "fail"
    assert "forbidden anchors anchors-prod.pem" in check.measured
    assert check.offending == ["AC RACINE IGC-SANTE ELEMENTAIRE"]


def test_test_chain_in_production_fails(pki: Pki) -> None:
    """A production profile (PRODUCTION anchors, TEST forbidden) judging a TEST chain."""
    leaf = _leaf(pki.test_ca)
    check = certificates.chain([leaf.cert, pki.test_ca.cert], pki.prod_anchors,
                               pki.test_anchors, production=True)
    assert check.verdict == "fail"
    assert "forbidden anchors anchors-test.pem" in check.measured


def test_test_names_fail_in_production_even_when_the_store_trusts_them(pki: Pki) -> None:
    """A production store wrongly holding the TEST root still cannot pass a TEST chain."""
    leaf = _leaf(pki.test_ca)
    check = certificates.chain([leaf.cert, pki.test_ca.cert], pki.test_anchors, production=True)
    assert check.verdict == "fail"
    assert "TEST hierarchy in production" in check.measured
    assert "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS" in check.offending


def test_production_chain_in_production_passes(pki: Pki) -> None:
    leaf = _leaf(pki.prod_ca)
    check = certificates.chain([leaf.cert, pki.prod_ca.cert], pki.prod_anchors,
                               pki.test_anchors, production=True)
    assert check.verdict == "pass", check


def test_expired_leaf_is_judged_by_expiry_not_by_the_chain(pki: Pki) -> None:
    leaf = _leaf(pki.test_ca, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    presented = [leaf.cert, pki.test_ca.cert]
    assert certificates.chain(presented, pki.test_anchors).verdict == "pass"
    assert certificates.expiry(presented, 7, 30).verdict == "fail"


def test_trust_store(pki: Pki) -> None:
    assert certificates.trust_store(pki.prod_anchors, pki.test_anchors, True).verdict == "pass"
    test_in_prod = certificates.trust_store(pki.test_anchors, pki.prod_anchors, production=True)
    assert test_in_prod.verdict == "fail"
    assert "TEST anchor in a production trust store" in test_in_prod.offending[0]
    both = TrustAnchors("mixed.pem", (pki.test_root.cert, pki.prod_root.cert))
    overlap = certificates.trust_store(both, pki.prod_anchors)
    assert overlap.verdict == "fail"
    assert overlap.offending == ["AC RACINE IGC-SANTE ELEMENTAIRE: also in the forbidden "
                                 "anchors anchors-prod.pem"]


def test_trust_anchors_load(tmp_path: Path, pki: Pki) -> None:
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(pki.test_root.cert.public_bytes(serialization.Encoding.PEM))
    assert TrustAnchors.load(bundle).certificates == (pki.test_root.cert,)
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(ValueError, match="no PEM certificate"):
        TrustAnchors.load(tmp_path / "empty.pem")


# --- expiry --------------------------------------------------------------------------------------

@pytest.mark.parametrize("days, verdict", [(365, "pass"), (31, "pass"), (29, "warn"),
                                           (8, "warn"), (6, "fail"), (-1, "fail")])
def test_expiry_thresholds(pki: Pki, days: int, verdict: str) -> None:
    leaf = _leaf(pki.test_ca, not_before=NOW - 400 * DAY, not_after=NOW + days * DAY)
    check = certificates.expiry([leaf.cert], fail_days=7, warn_days=30)
    assert check.verdict == verdict, check
    if verdict != "pass":
        expected = "expired on" if days < 0 else f"expires in {days:.1f} days"
        assert check.offending[0].startswith(f"mail.example.test: {expected}"), check


def test_expiry_judges_intermediates_and_not_yet_valid(pki: Pki) -> None:
    soon_ca = _ca(_name("Short-lived CA"), pki.test_root)
    soon_ca.cert = (x509.CertificateBuilder().subject_name(soon_ca.cert.subject)
                    .issuer_name(pki.test_root.cert.subject)
                    .public_key(soon_ca.key.public_key())  # type: ignore[attr-defined]  # a key type that has a public key
                    .serial_number(1).not_valid_before(NOW - DAY)
                    .not_valid_after(NOW + 3 * DAY)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                    .sign(pki.test_root.key, hashes.SHA256()))  # type: ignore[arg-type]  # a key type that signs
    leaf = _leaf(pki.test_ca)
    check = certificates.expiry([leaf.cert, soon_ca.cert], 7, 30)
    assert check.verdict == "fail"
    assert check.offending[0].startswith("Short-lived CA: expires in")
    future = _leaf(pki.test_ca, not_before=NOW + DAY)
    assert "not valid before" in certificates.expiry([future.cert], 7, 30).offending[0]


# --- names, keys, signatures ---------------------------------------------------------------------

def test_hostname(pki: Pki) -> None:
    leaf = _leaf(pki.test_ca, names=("mail.example.test", "*.example.test"), ips=("127.0.0.1",))
    assert certificates.hostname(leaf.cert, ["mail.example.test"]).verdict == "pass"
    assert certificates.hostname(leaf.cert, ["imap.example.test", "127.0.0.1"]).verdict == "pass"
    miss = certificates.hostname(leaf.cert, ["mail.example.test", "mail.other.test", "a.b.example.test"])
    assert miss.verdict == "fail"
    assert miss.offending == ["mail.other.test not covered", "a.b.example.test not covered"]
    assert miss.measured == "subjectAltName: mail.example.test, *.example.test, 127.0.0.1"
    no_san = _leaf(pki.test_ca, names=())
    assert certificates.hostname(no_san.cert, ["mail.example.test"]).verdict == "fail"


def test_hostname_of_an_expired_certificate_is_still_judged(pki: Pki) -> None:
    leaf = _leaf(pki.test_ca, not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    assert certificates.hostname(leaf.cert, ["localhost"]).verdict == "pass"


def test_key_size(pki: Pki) -> None:
    rsa_2048 = _leaf(pki.test_ca, key=rsa.generate_private_key(65537, 2048))
    rsa_1024 = _leaf(pki.test_ca, key=rsa.generate_private_key(65537, 1024))
    ed = _leaf(pki.test_ca, key=ed25519.Ed25519PrivateKey.generate())
    ok = certificates.key_size([rsa_2048.cert, pki.test_ca.cert], 2048, 256)
    assert ok.verdict == "pass" and ok.measured.startswith("RSA 2048, EC 256")
    weak = certificates.key_size([rsa_1024.cert, pki.test_ca.cert], 2048, 256)
    assert weak.verdict == "fail" and weak.offending == ["mail.example.test: RSA 1024 bits"]
    other = certificates.key_size([ed.cert], 2048, 256)
    assert other.verdict == "fail" and other.offending == ["mail.example.test: Ed25519 key"]


def _sha1_certificate(folder: Path) -> x509.Certificate:
    """cryptography refuses to sign with SHA-1; the openssl command still does."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha1",
                    "-subj", "/CN=mail.example.test", "-days", "30", "-keyout",
                    str(folder / "sha1.key"), "-out", str(folder / "sha1.pem")],
                   check=True, capture_output=True, timeout=30)
    return x509.load_pem_x509_certificate((folder / "sha1.pem").read_bytes())


def test_signature_hash(pki: Pki, tmp_path: Path) -> None:
    allowed = ("sha256", "sha384", "sha512")
    good = _leaf(pki.test_ca)
    assert certificates.signature([good.cert, pki.test_ca.cert], allowed).verdict == "pass"
    check = certificates.signature([_sha1_certificate(tmp_path)], allowed)
    assert check.verdict == "fail" and check.offending == ["mail.example.test: signed with sha1"]
    # A self-signed anchor sent along is not judged: nobody verifies its own signature.
    assert certificates.signature([good.cert, pki.test_root.cert], ("sha256",)).verdict == "pass"


# --- usages, revocation --------------------------------------------------------------------------

def test_key_usage(pki: Pki) -> None:
    both = _leaf(pki.test_ca)
    assert certificates.usage(both.cert, MX).verdict == "pass"
    server_only = _leaf(pki.test_ca, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    assert certificates.usage(server_only.cert, SERVER_ONLY).verdict == "pass"
    mx = certificates.usage(server_only.cert, MX)
    assert mx.verdict == "fail" and mx.offending == ["extendedKeyUsage lacks clientAuth"]
    assert "required: serverAuth, clientAuth" in mx.measured


@pytest.mark.parametrize("options, offending", [
    ({"ku": None}, "no keyUsage extension"),
    ({"ku": x509.KeyUsage(False, False, True, False, False, False, False, False, False)},
     "keyUsage lacks digitalSignature"),
    ({"ku": x509.KeyUsage(True, False, False, False, False, True, False, False, False)},
     "keyUsage has key_cert_sign (a CA bit)"),
    ({"ca": True}, "basicConstraints says CA"),
    ({"eku": None}, "no extendedKeyUsage extension"),
    ({"eku": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, "extendedKeyUsage lacks serverAuth"),
])
def test_key_usage_failures(pki: Pki, options: dict, offending: str) -> None:
    leaf = _leaf(pki.test_ca, **options)
    check = certificates.usage(leaf.cert, SERVER_ONLY)
    assert check.verdict == "fail" and offending in check.offending, check


def test_crl_distribution_point(pki: Pki) -> None:
    with_crl = _leaf(pki.test_ca)
    check = certificates.revocation([with_crl.cert])
    assert check.verdict == "pass"
    assert check.measured == "CRL: http://crl.example.test/ca.crl; leaf AIA: absent"
    without = _leaf(pki.test_ca, crl=False)
    missing = certificates.revocation([without.cert])
    assert missing.verdict == "fail"
    assert missing.offending == ["mail.example.test: no CRL distribution point URI"]
    assert certificates.revocation([pki.test_root.cert]).verdict == "not_applicable"


# --- files on disk -------------------------------------------------------------------------------

def _write_key(path: Path, key: object, mode: int = 0o600, password: bytes | None = None) -> Path:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]  # a private key object
                                       serialization.PrivateFormat.PKCS8, encryption))
    os.chmod(path, mode)
    return path


def test_key_match(tmp_path: Path, pki: Pki) -> None:
    leaf, other = _leaf(pki.test_ca), _leaf(pki.test_ca)
    assert certificates.key_match(leaf.cert, _write_key(tmp_path / "k.pem", leaf.key)).verdict == "pass"
    wrong = certificates.key_match(leaf.cert, _write_key(tmp_path / "o.pem", other.key))
    assert wrong.verdict == "fail" and "does NOT match" in wrong.measured
    locked = _write_key(tmp_path / "e.pem", leaf.key, password=b"secret")
    assert certificates.key_match(leaf.cert, locked).verdict == "error"
    (tmp_path / "junk.pem").write_text("not a key\n")
    assert certificates.key_match(leaf.cert, tmp_path / "junk.pem").verdict == "fail"
    assert certificates.key_match(leaf.cert, tmp_path / "missing.pem").verdict == "error"


@pytest.mark.parametrize("mode, verdict", [(0o600, "pass"), (0o640, "pass"), (0o644, "fail"),
                                           (0o602, "fail")])
def test_key_file_mode(tmp_path: Path, pki: Pki, mode: int, verdict: str) -> None:
    path = _write_key(tmp_path / "key.pem", ec.generate_private_key(ec.SECP256R1()), mode)
    check = certificates.key_file_mode(path)
    assert check.verdict == verdict
    assert f"mode {mode:04o}" in check.measured


def test_message_names_source_check_and_offenders() -> None:
    check = certificates.CertCheck("expiry", "fail", "leaf expires soon", ["a: 3 days", "b"])
    assert check.message("wire-imaps") == ("wire-imaps: expiry: FAIL — leaf expires soon — "
                                           "offending: a: 3 days; b")
