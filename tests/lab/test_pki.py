"""The lab's PKI and TLS settings: the certificates are what the faults claim, and the TLS
settings really refuse (or, under a fault, really accept) old protocols and weak suites.

Chains are judged with cryptography's own path builder, handshakes with real sockets.
"""
from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from lab import identity, pki, tls
from lab.services.base import LabContext

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One generated PKI for the module (generation costs ~0.7 s), in a private lab dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MSSANTE_LAB_DIR", str(tmp_path_factory.mktemp("lab")))
        pki.ensure()
        yield pki.path()


def certs(*parts: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pki.path(*parts).read_bytes())


def leaf(*parts: str) -> x509.Certificate:
    return certs(*parts, "cert.pem")[0]


def verify_server(anchor: str, *folder: str, when: dt.datetime | None = None) -> None:
    """Build the path from the served chain.pem to one trust anchor, as a TLS client would."""
    chain = certs(*folder, "chain.pem")
    builder = PolicyBuilder().store(Store(certs(anchor)))
    if when:
        builder = builder.time(when)
    builder.build_server_verifier(x509.DNSName(identity.MAIL_HOST)).verify(chain[0], chain[1:])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- certificates ---------------------------------------------------------------------------

def test_good_chain_verifies_to_test_root(pki_dir: Path) -> None:
    verify_server("anchors-test.pem", "server", "good")


def test_good_chain_does_not_verify_to_prod_root(pki_dir: Path) -> None:
    with pytest.raises(VerificationError):
        verify_server("anchors-prod.pem", "server", "good")


def test_prod_chain_verifies_to_prod_root_only_and_has_no_test_issuer(pki_dir: Path) -> None:
    verify_server("anchors-prod.pem", "server", "prod")
    with pytest.raises(VerificationError):
        verify_server("anchors-test.pem", "server", "prod")
    for cert in certs("server", "prod", "chain.pem") + certs("prod-root.pem"):
        assert "TEST" not in cert.issuer.rfc4514_string()
        assert "TEST" not in cert.subject.rfc4514_string()


def test_test_chain_is_marked_test_and_lab(pki_dir: Path) -> None:
    issuer = leaf("server", "good").issuer.rfc4514_string()
    assert issuer == ("CN=LAB TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,OU=IGC-SANTE TEST,"
                      "OU=LAB,O=LAB ASIP-SANTE,C=FR")


def test_untrusted_chain_does_not_reach_test_root(pki_dir: Path) -> None:
    with pytest.raises(VerificationError):
        verify_server("anchors-test.pem", "server", "untrusted")
    verify_server("foreign-root.pem", "server", "untrusted")  # it is a real chain, elsewhere


def test_expiring_has_about_five_days_left(pki_dir: Path) -> None:
    left = leaf("server", "expiring").not_valid_after_utc - now()
    assert 4 * DAY < left < 6 * DAY
    verify_server("anchors-test.pem", "server", "expiring")


def test_expired_is_past_and_refused(pki_dir: Path) -> None:
    cert = leaf("server", "expired")
    assert cert.not_valid_after_utc < now()
    with pytest.raises(VerificationError, match="not valid at validation time"):
        verify_server("anchors-test.pem", "server", "expired")
    # ...and only for being expired: the same chain verified while it was valid passes.
    verify_server("anchors-test.pem", "server", "expired", when=cert.not_valid_after_utc - DAY)


def test_good_has_three_year_lifetime(pki_dir: Path) -> None:
    cert = leaf("server", "good")
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == 3 * 365 * DAY


@pytest.mark.parametrize("folder", [("server", v) for v in pki.SERVER_VARIANTS]
                         + [("clients", c) for c in pki.CLIENTS], ids="/".join)
def test_leaf_profile(pki_dir: Path, folder: tuple[str, str]) -> None:
    """SERV SSL profile: RSA 2048/SHA-256, server+client auth, not a CA, CRL DP, AIA, policy."""
    cert = leaf(*folder)
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]  # an RSA key by construction
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert set(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    spec = (pki.SERVER_VARIANTS if folder[0] == "server" else pki.CLIENTS)[folder[1]]
    crl_dp = ext.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert crl_dp[0].full_name[0].value == f"http://127.0.0.1:10080/crl/{spec.issuer}.crl"
    assert ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.2.250.1.213.1.1.9999.1"]
    assert cert.verify_directly_issued_by(certs(f"{spec.issuer}.pem")[0]) is None


def test_server_san_and_subject(pki_dir: Path) -> None:
    cert = leaf("server", "good")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(identity.SERVER_NAMES)
    assert san.get_values_for_type(x509.IPAddress) == [IPv4Address("127.0.0.1")]
    assert cert.subject.rfc4514_string() == pki.server_subject_dn() == (
        "CN=mail.lab.mssante.fr,OU=LAB 00000000000000,O=LAB Operateur MSSante,ST=Paris (75),C=FR")


def test_clients_chain_and_subjects(pki_dir: Path) -> None:
    store = Store(certs("anchors-test.pem"))
    intermediates = certs("cafile-test.pem")
    for name in ("peer", "rogue"):
        chain = certs("clients", name, "chain.pem")
        PolicyBuilder().store(store).build_client_verifier().verify(chain[0], intermediates)
        assert chain[0].subject.rfc4514_string() == pki.client_subject_dn(name)
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_client_verifier().verify(
            leaf("clients", "foreign"), intermediates)
    assert pki.client_subject_dn("foreign") == pki.client_subject_dn("peer")
    assert pki.client_subject_dn("peer").startswith("CN=mail.peer-lab.mssante.fr,")
    assert identity.ROGUE_DOMAIN in pki.client_subject_dn("rogue")


def test_bundles_hold_the_right_roots(pki_dir: Path) -> None:
    assert [c.subject for c in certs("anchors-test.pem")] == [certs("test-root.pem")[0].subject]
    assert [c.subject for c in certs("anchors-prod.pem")] == [certs("prod-root.pem")[0].subject]
    assert certs("cafile-test.pem") == certs("test-root.pem") + certs("test-ca.pem")


def test_crls_are_signed_and_empty(pki_dir: Path) -> None:
    for ca in pki.CAS:
        crl = x509.load_der_x509_crl(pki.path("crl", f"{ca}.crl").read_bytes())
        assert crl.is_signature_valid(certs(f"{ca}.pem")[0].public_key())  # type: ignore[arg-type]  # a CA key, which verifies CRLs
        assert len(crl) == 0
        assert crl.next_update_utc is not None and crl.next_update_utc > now()


def test_file_modes(pki_dir: Path) -> None:
    keys = list(pki_dir.rglob("*key.pem"))
    assert len(keys) == len(pki.CAS) + len(pki.SERVER_VARIANTS) + len(pki.CLIENTS)
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for cert in pki_dir.rglob("*.pem"):
        if cert not in keys:
            assert stat.S_IMODE(cert.stat().st_mode) == 0o644, cert
    assert stat.S_IMODE(pki_dir.stat().st_mode) == 0o755


def test_ensure_is_idempotent(pki_dir: Path) -> None:
    before = {p: p.read_bytes() for p in pki_dir.rglob("*") if p.is_file()}
    pki.ensure()
    assert {p: p.read_bytes() for p in pki_dir.rglob("*") if p.is_file()} == before


def test_ensure_repairs_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost CA key reissues its subtree; an 'expiring' cert with the wrong life is renewed."""
    monkeypatch.setenv("MSSANTE_LAB_DIR", str(tmp_path))
    pki.ensure()
    untouched = pki.path("server", "prod", "cert.pem").read_bytes()
    pki.path("test-ca.key.pem").unlink()
    for name in ("cert.pem", "key.pem"):   # a 3-year certificate where 5 days are expected
        pki.path("server", "expiring", name).write_bytes(pki.path("server", "good", name)
                                                         .read_bytes())
    pki.ensure()
    verify_server("anchors-test.pem", "server", "good")
    verify_server("anchors-test.pem", "server", "expiring")
    assert leaf("server", "expiring").not_valid_after_utc - now() < 6 * DAY
    assert pki.path("server", "prod", "cert.pem").read_bytes() == untouched


# --- what each fault serves ----------------------------------------------------------------

@pytest.mark.parametrize(("faults", "variant"), [
    ((), "good"),
    (("tls-legacy", "weak-ciphers"), "good"),
    (("cert-expired",), "expired"),
    (("cert-expiring",), "expiring"),
    (("cert-untrusted",), "untrusted"),
    (("cert-prod-root",), "prod"),
    (("cert-expired", "cert-expiring", "cert-untrusted", "cert-prod-root"), "expired"),
    (("cert-expiring", "cert-untrusted", "cert-prod-root"), "expiring"),
    (("cert-untrusted", "cert-prod-root"), "untrusted"),
], ids=lambda v: "+".join(v) if isinstance(v, tuple) else v)
def test_served_selection(pki_dir: Path, faults: tuple[str, ...], variant: str) -> None:
    served = tls.served(LabContext(frozenset(faults)))
    folder = pki.path("server", variant)
    assert served == tls.Served(folder / "cert.pem", folder / "chain.pem", folder / "key.pem")


def test_protocol_settings() -> None:
    good, legacy = LabContext(), LabContext(frozenset({"tls-legacy"}))
    assert tls.protocols(good) == ["TLSv1.2", "TLSv1.3"]
    assert tls.min_protocol(good) == "TLSv1.2"
    assert tls.protocols(legacy) == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert tls.min_protocol(legacy) == "TLSv1"
    assert "SECLEVEL" not in tls.tls12_ciphers(good)
    assert tls.tls12_ciphers(legacy).endswith(":@SECLEVEL=0")
    assert tls.tls13_suites(good) == tls.tls13_suites(legacy)


def test_good_suites_are_ephemeral_aead_only() -> None:
    """Every suite the good settings enable, as OpenSSL expands them: ECDHE and AEAD only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(tls.tls12_ciphers(LabContext()))
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)


# --- real handshakes ----------------------------------------------------------------------

_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.2": ssl.TLSVersion.TLSv1_2}


@pytest.fixture()
def tls_server(pki_dir: Path) -> Iterator[Callable[[frozenset[str]], int]]:
    """Start a one-connection TLS server with the lab's settings for given faults."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def start(faults: frozenset[str]) -> int:
        ctx = LabContext(faults)
        served = tls.served(ctx)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.minimum_version = _VERSIONS[tls.min_protocol(ctx)]
        server.set_ciphers(tls.tls12_ciphers(ctx))
        server.load_cert_chain(served.chain, served.key)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(5)
        sockets.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                with server.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return listener.getsockname()[1]

    yield start
    for listener in sockets:
        listener.close()
    for thread in threads:
        thread.join(timeout=6)


def handshake(port: int, version: str, ciphers: str) -> tuple[str, str] | None:
    """Connect as a strict client pinned to one version; (version, suite) or None if refused."""
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(pki.path("anchors-test.pem"))
    client.minimum_version = client.maximum_version = _VERSIONS[version]
    client.set_ciphers(ciphers)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client.wrap_socket(raw, server_hostname="localhost") as conn:
            cipher = conn.cipher()
            assert cipher is not None
            return conn.version() or "", cipher[0]
    except ssl.SSLError:
        return None


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("faults", "version", "ciphers", "expected"), [
    ((), "TLSv1.2", "DEFAULT", ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
    ((), "TLSv1", "DEFAULT:@SECLEVEL=0", None),
    (("tls-legacy",), "TLSv1", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
     ("TLSv1", "ECDHE-RSA-AES128-SHA")),
    ((), "TLSv1.2", "AES128-SHA:@SECLEVEL=0", None),
    (("weak-ciphers",), "TLSv1.2", "AES128-SHA:@SECLEVEL=0", ("TLSv1.2", "AES128-SHA")),
    ((), "TLSv1.2", "ECDHE-RSA-AES128-SHA256", None),
    (("weak-ciphers",), "TLSv1.2", "ECDHE-RSA-AES128-SHA256",
     ("TLSv1.2", "ECDHE-RSA-AES128-SHA256")),
], ids=["good-tls12", "good-refuses-tls10", "legacy-accepts-tls10", "good-refuses-static-rsa",
        "weak-accepts-static-rsa", "good-refuses-cbc", "weak-accepts-cbc"])
def test_handshake(tls_server: Callable[[frozenset[str]], int], faults: tuple[str, ...],
                   version: str, ciphers: str, expected: tuple[str, str] | None) -> None:
    port = tls_server(frozenset(faults))
    assert handshake(port, version, ciphers) == expected
