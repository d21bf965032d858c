"""The lab's fake PKI, shaped like IGC Santé so that the suite's certificate checks have
something real to judge.

Three hierarchies, all with a ``LAB`` marker in every name so that nothing here can be
mistaken for the real one (DESIGN.md §8):

* TEST: root -> intermediate carrying ``OU=IGC-SANTE TEST`` (what a staging operator serves);
* PRODUCTION: the same names without TEST (serving it where TEST is expected is a fault);
* FOREIGN: an unrelated CA issuing leaves directly (an untrusted chain).

Leaves follow the SERV SSL profile as the MTA uses it (server *and* client authentication,
so the same certificate is shown on inbound and outbound mutual TLS).

Layout under :func:`lab.paths.pki_dir` (other lab modules and the suite rely on it)::

    test-root.pem test-ca.pem prod-root.pem prod-ca.pem foreign-root.pem   (+ <ca>.key.pem)
    anchors-test.pem anchors-prod.pem cafile-test.pem
    server/<variant>/{cert,chain,key}.pem     variants: see SERVER_VARIANTS
    clients/<name>/{cert,chain,key}.pem       names: see CLIENTS
    crl/<ca>.crl (DER)   aia/<ca>.cer (DER)   both published by the reference API

:func:`ensure` is idempotent and cheap when nothing is missing; it regenerates whatever is
missing, no longer signed by its current issuer, or no longer has its intended validity
(the "expiring" certificate must always have about five days left).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab import identity, paths, ports

KEY_BITS = 2048
# Made-up policy OID under the ASIP Santé arc, in a "9999" branch no real policy uses:
# it only lets the suite read certificatePolicies from a certificate. It is FAKE.
LAB_POLICY_OID = x509.ObjectIdentifier("1.2.250.1.213.1.1.9999.1")
PUBLICATION_BASE = f"http://{ports.HOST}:{ports.API_BACKEND}"   # served by the reference API

DAY = dt.timedelta(days=1)
GOOD_LIFETIME = 3 * 365 * DAY        # observed IGC Santé organisation certificate lifetime
RENEW_BEFORE = 60 * DAY              # renew "good" leaves well before the suite would warn (30 d)
EXPIRING_DAYS = 5                    # the cert-expiring fault's remaining life
EXPIRING_BOUNDS = (4 * DAY, 6 * DAY)
CRL_LIFETIME = 7 * DAY


def _name(*rdns: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    """Build a Name in DER order (C first), so that rfc4514_string() reads CN first."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in rdns])


def _org_name(cn: str, ou: str, org: str, st: str) -> x509.Name:
    """Subject of an organisation (SERV SSL) certificate, shaped like the whitelist DNs."""
    return _name((NameOID.COUNTRY_NAME, "FR"), (NameOID.STATE_OR_PROVINCE_NAME, st),
                 (NameOID.ORGANIZATION_NAME, org), (NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                 (NameOID.COMMON_NAME, cn))


@dataclass(frozen=True)
class CA:
    """One certificate authority of the lab; ``issuer`` None means self-signed root."""

    name: str                 # file stem: <name>.pem, <name>.key.pem, crl/<name>.crl
    subject: x509.Name
    issuer: str | None
    lifetime: dt.timedelta


def _igc_name(cn: str, test: bool) -> x509.Name:
    ous = ["IGC-SANTE TEST", "LAB"] if test else ["LAB"]
    return _name((NameOID.COUNTRY_NAME, "FR"), (NameOID.ORGANIZATION_NAME, "LAB ASIP-SANTE"),
                 *[(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in reversed(ous)],
                 (NameOID.COMMON_NAME, cn))


CAS: dict[str, CA] = {ca.name: ca for ca in (
    CA("test-root", _igc_name("LAB TEST AC RACINE IGC-SANTE ELEMENTAIRE", True), None,
       20 * 365 * DAY),
    CA("test-ca", _igc_name("LAB TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", True),
       "test-root", 10 * 365 * DAY),
    CA("prod-root", _igc_name("LAB AC RACINE IGC-SANTE ELEMENTAIRE", False), None,
       20 * 365 * DAY),
    CA("prod-ca", _igc_name("LAB AC IGC-SANTE ELEMENTAIRE ORGANISATIONS", False),
       "prod-root", 10 * 365 * DAY),
    CA("foreign-root", _name((NameOID.COUNTRY_NAME, "US"),
                             (NameOID.ORGANIZATION_NAME, "LAB Elsewhere"),
                             (NameOID.COMMON_NAME, "LAB Foreign Untrusted CA")),
       None, 20 * 365 * DAY),
)}


@dataclass(frozen=True)
class Leaf:
    """One end-entity certificate: who it names, who issues it, how long it lives."""

    subject: x509.Name
    dns_names: tuple[str, ...]
    issuer: str
    # (not_before, not_after) for "now"; and whether an existing certificate still fits.
    validity: Callable[[dt.datetime], tuple[dt.datetime, dt.datetime]]
    still_valid: Callable[[x509.Certificate, dt.datetime], bool]


def _good_validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return now - DAY, now - DAY + GOOD_LIFETIME


def _good_still_valid(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_after_utc - now > RENEW_BEFORE


def _expiring_validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    not_after = now + EXPIRING_DAYS * DAY
    return not_after - GOOD_LIFETIME, not_after


def _expiring_still_valid(cert: x509.Certificate, now: dt.datetime) -> bool:
    low, high = EXPIRING_BOUNDS
    return low <= cert.not_valid_after_utc - now <= high


def _expired_validity(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    not_after = now - DAY
    return not_after - GOOD_LIFETIME, not_after


def _expired_still_valid(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_after_utc < now


SERVER_SUBJECT = _org_name(identity.MAIL_HOST, identity.OPERATOR_OU, identity.OPERATOR_ORG,
                           identity.OPERATOR_ST)
PEER_SUBJECT = _org_name(identity.PEER_HOST, "LAB 11111111111111", "LAB Hopital Voisin",
                         "Lyon (69)")
ROGUE_HOST = f"mail.{identity.ROGUE_DOMAIN}"
ROGUE_SUBJECT = _org_name(ROGUE_HOST, "LAB 22222222222222", "LAB Operateur Inconnu",
                          "Bouches-du-Rhone (13)")


def _server(issuer: str, validity: Callable[[dt.datetime], tuple[dt.datetime, dt.datetime]],
            still_valid: Callable[[x509.Certificate, dt.datetime], bool]) -> Leaf:
    return Leaf(SERVER_SUBJECT, identity.SERVER_NAMES, issuer, validity, still_valid)


SERVER_VARIANTS: dict[str, Leaf] = {
    "good": _server("test-ca", _good_validity, _good_still_valid),
    "expiring": _server("test-ca", _expiring_validity, _expiring_still_valid),
    "expired": _server("test-ca", _expired_validity, _expired_still_valid),
    "untrusted": _server("foreign-root", _good_validity, _good_still_valid),
    "prod": _server("prod-ca", _good_validity, _good_still_valid),
}
CLIENTS: dict[str, Leaf] = {
    # the whitelisted peer operator
    "peer": Leaf(PEER_SUBJECT, (identity.PEER_HOST,), "test-ca", _good_validity,
                 _good_still_valid),
    # a genuine-looking IGC TEST certificate whose domain is not on the whitelist
    "rogue": Leaf(ROGUE_SUBJECT, (ROGUE_HOST,), "test-ca", _good_validity, _good_still_valid),
    # the peer's very subject, but from a CA outside IGC Santé
    "foreign": Leaf(PEER_SUBJECT, (identity.PEER_HOST,), "foreign-root", _good_validity,
                    _good_still_valid),
}


def path(*parts: str) -> Path:
    """A path under the lab's PKI directory, e.g. ``path("server", "good", "chain.pem")``."""
    return paths.pki_dir().joinpath(*parts)


def server_subject_dn() -> str:
    """The lab server certificate's subject as the whitelist writes it (RFC 4514, CN first)."""
    return SERVER_SUBJECT.rfc4514_string()


def client_subject_dn(name: str) -> str:
    """Subject of a lab client certificate (``peer``, ``rogue``, ``foreign``), CN first."""
    return CLIENTS[name].subject.rfc4514_string()


def crl_url(ca: str) -> str:
    return f"{PUBLICATION_BASE}/crl/{ca}.crl"


def aia_url(ca: str) -> str:
    return f"{PUBLICATION_BASE}/aia/{ca}.cer"


# --- generation ---------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _write(target: Path, data: bytes, mode: int) -> bool:
    """Write atomically (a daemon may read concurrently) when content differs; True if written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.read_bytes() == data:
        os.chmod(target, mode)
        return False
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, target)
    return True


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load(cert_file: Path, key_file: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey] | None:
    """Load a certificate and its key; None when either is missing, unreadable or mismatched."""
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        # Our own keys: skipping the costly RSA consistency check keeps ensure() fast, and the
        # public-key comparison below still catches a key that does not match its certificate.
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except (OSError, ValueError):
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or cert.public_key() != key.public_key():
        return None
    return cert, key


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _builder(subject: x509.Name, issuer_name: x509.Name, issuer_key: rsa.RSAPublicKey,
             public_key: rsa.RSAPublicKey, not_before: dt.datetime,
             not_after: dt.datetime) -> x509.CertificateBuilder:
    """Common part of every certificate: names, validity, key identifiers."""
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),
                           False))


def _publication(builder: x509.CertificateBuilder, issuer: str) -> x509.CertificateBuilder:
    """CRL distribution point and AIA caIssuers, as IGC Santé certificates carry them."""
    return (builder
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url(issuer))], None, None, None)]), False)
            .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                x509.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(aia_url(issuer)))]), False))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _make_ca(ca: CA, parent: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
             now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    # Backdated so that backdated leaves (the expired one) still nest inside the CA's life.
    signer = parent[1] if parent else key
    builder = _builder(ca.subject, parent[0].subject if parent else ca.subject,
                       signer.public_key(), key.public_key(), now - 4 * 365 * DAY,
                       now + ca.lifetime)
    builder = (builder
               .add_extension(x509.BasicConstraints(ca=True, path_length=None if parent is None
                                                    else 0), True)
               .add_extension(x509.KeyUsage(
                   digital_signature=False, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=True,
                   crl_sign=True, encipher_only=False, decipher_only=False), True))
    if parent:
        builder = _publication(builder, ca.issuer or "")
    return builder.sign(signer, hashes.SHA256()), key


def _make_leaf(leaf: Leaf, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey],
               now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    not_before, not_after = leaf.validity(now)
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in leaf.dns_names]
    san.append(x509.IPAddress(IPv4Address(ports.HOST)))
    builder = (_builder(leaf.subject, issuer[0].subject, issuer[1].public_key(), key.public_key(),
                        not_before, not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=True,
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), False)
               .add_extension(x509.SubjectAlternativeName(san), False)
               .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                   LAB_POLICY_OID, None)]), False))
    builder = _publication(builder, leaf.issuer)
    return builder.sign(issuer[1], hashes.SHA256()), key


def _ensure_ca(ca: CA, issued: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]],
               now: dt.datetime) -> None:
    parent = issued[ca.issuer] if ca.issuer else None
    cert_file, key_file = path(f"{ca.name}.pem"), path(f"{ca.name}.key.pem")
    loaded = _load(cert_file, key_file)
    if loaded and (parent is None or _issued_by(loaded[0], parent[0])) \
            and loaded[0].not_valid_after_utc > now + 365 * DAY:
        issued[ca.name] = loaded
        return
    cert, key = _make_ca(ca, parent, now)
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, _pem(cert), 0o644)
    issued[ca.name] = (cert, key)


def _ensure_leaf(folder: Path, leaf: Leaf,
                 issued: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]],
                 now: dt.datetime) -> None:
    issuer = issued[leaf.issuer]
    loaded = _load(folder / "cert.pem", folder / "key.pem")
    if not (loaded and _issued_by(loaded[0], issuer[0]) and loaded[0].subject == leaf.subject
            and leaf.still_valid(loaded[0], now)):
        loaded = _make_leaf(leaf, issuer, now)
        _write(folder / "key.pem", _key_pem(loaded[1]), 0o600)
        _write(folder / "cert.pem", _pem(loaded[0]), 0o644)
    # The chain a server sends: leaf then intermediate (a root-issued leaf sends itself only).
    chain = [loaded[0]] + ([issuer[0]] if CAS[leaf.issuer].issuer else [])
    _write(folder / "chain.pem", b"".join(_pem(c) for c in chain), 0o644)
    os.chmod(folder, 0o755)


def _ensure_crl(ca: CA, issued: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]],
                now: dt.datetime) -> None:
    """An empty CRL per CA, refreshed before its nextUpdate (IGC Santé republishes daily)."""
    cert, key = issued[ca.name]
    target = path("crl", f"{ca.name}.crl")
    try:
        crl = x509.load_der_x509_crl(target.read_bytes())
        next_update = crl.next_update_utc
        if crl.is_signature_valid(key.public_key()) and next_update and next_update > now + DAY:
            return
    except (OSError, ValueError):
        pass
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(cert.subject)
           .last_update(now)
           .next_update(now + CRL_LIFETIME)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                          False)
           .add_extension(x509.CRLNumber(int(now.timestamp())), False)
           .sign(key, hashes.SHA256()))
    _write(target, crl.public_bytes(serialization.Encoding.DER), 0o644)


@contextmanager
def _locked() -> Iterator[None]:
    """Serialise concurrent ensure() calls (parallel test workers, a second `lab up`)."""
    paths.pki_dir().mkdir(parents=True, exist_ok=True)
    with open(path(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure() -> None:
    """Create or repair the whole PKI under the lab directory; cheap when all is in place."""
    now = _now()
    with _locked():
        os.chmod(paths.pki_dir(), 0o755)
        issued: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}
        for ca in CAS.values():            # parents come before children in CAS
            _ensure_ca(ca, issued, now)
            _ensure_crl(ca, issued, now)
            _write(path("aia", f"{ca.name}.cer"),
                   issued[ca.name][0].public_bytes(serialization.Encoding.DER), 0o644)
        _write(path("anchors-test.pem"), _pem(issued["test-root"][0]), 0o644)
        _write(path("anchors-prod.pem"), _pem(issued["prod-root"][0]), 0o644)
        _write(path("cafile-test.pem"),
               _pem(issued["test-root"][0]) + _pem(issued["test-ca"][0]), 0o644)
        for variant, leaf in SERVER_VARIANTS.items():
            _ensure_leaf(path("server", variant), leaf, issued, now)
        for name, leaf in CLIENTS.items():
            _ensure_leaf(path("clients", name), leaf, issued, now)
        for folder in ("server", "clients", "crl", "aia"):
            os.chmod(path(folder), 0o755)
