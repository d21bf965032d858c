"""X.509 judgement of a certificate chain (as a server sends it, or as files on disk).

One function per property an auditor asks about, each returning a :class:`CertCheck` with a
verdict, what was measured and the offending items, so suites map verdicts to outcomes the
same way whatever the source (``suites/certs`` on the wire and on disk, the post-deployment
expiry check).

Why ``cryptography.x509.verification`` for chains: it builds the path the way a modern client
does (RFC 5280 path building, CA extension rules), against exactly the anchors we give it —
never the system store, since MSSanté clients must accept IGC Santé only. The chain is judged
at a time inside the leaf's validity, so an expired leaf is reported once, by :func:`expiry`,
and a chain failure always means trust (wrong or unknown hierarchy), never dates.

The IGC Santé TEST hierarchy is recognised by its names (``OU=IGC-SANTE TEST``, ``TEST AC …``,
DESIGN.md §8); in production any such name in the chain is a failure.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Verdict = Literal["pass", "warn", "fail", "error", "not_applicable"]

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_PURPOSE_NAMES = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}
TEST_OU = "IGC-SANTE TEST"
TEST_ORG = "ASIP-SANTE"
_TEST_CN = re.compile(r"\bTEST AC\b", re.IGNORECASE)
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class CertCheck:
    """One property of one certificate source, judged."""

    check: str
    verdict: Verdict
    measured: str
    offending: list[str] = field(default_factory=list)

    def message(self, source: str) -> str:
        """One line naming the source, the verdict, what was measured and what offends."""
        extra = f" — offending: {'; '.join(self.offending)}" if self.offending else ""
        return f"{source}: {self.check}: {self.verdict.upper()} — {self.measured}{extra}"


@dataclass(frozen=True)
class TrustAnchors:
    """A trust-anchor bundle and where it came from (named in every message)."""

    label: str
    certificates: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, path: Path) -> TrustAnchors:
        """Read a PEM bundle; an unreadable or empty file raises (OSError / ValueError)."""
        certs = load_pem_chain(path.read_bytes())
        if not certs:
            raise ValueError(f"{path}: no PEM certificate in the trust-anchor file")
        return cls(str(path), tuple(certs))


# --- small helpers ---------------------------------------------------------------------------

def load_pem_chain(data: bytes | str) -> list[x509.Certificate]:
    """Every certificate of a PEM blob, in order (leaf first for a server chain)."""
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        return []
    return x509.load_pem_x509_certificates(raw)


def common_name(name: x509.Name) -> str:
    """The CN, or the whole RFC 4514 string when there is none."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def is_igc_test_anchor(name: x509.Name) -> bool:
    """True for a name of the agency's own TEST hierarchy: ``OU=IGC-SANTE TEST`` *and*
    ``O=ASIP-SANTE``. Stricter than :func:`is_test_name` on purpose: it decides whether a test
    profile's anchors are IGC Santé's, and a home-made CA only has to copy one word to look
    like TEST (the lab's say ``O=LAB ASIP-SANTE``: they are self-made)."""
    ous = {str(ou.value).strip().casefold()
           for ou in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}
    orgs = {str(o.value).strip() for o in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    return TEST_OU.casefold() in ous and orgs == {TEST_ORG}


def is_test_name(name: x509.Name) -> bool:
    """True for an IGC Santé TEST hierarchy name (``OU=IGC-SANTE TEST`` or ``CN=TEST AC …``)."""
    ous = name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if any(str(ou.value).strip().casefold() == TEST_OU.casefold() for ou in ous):
        return True
    return any(_TEST_CN.search(str(cn.value))
               for cn in name.get_attributes_for_oid(NameOID.COMMON_NAME))


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> float:
    now = now or _now()
    return (cert.not_valid_after_utc - now).total_seconds() / _SECONDS_PER_DAY


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _inside_validity(cert: x509.Certificate, now: dt.datetime) -> dt.datetime:
    """``now`` moved inside the certificate's validity, so verification judges trust only."""
    return min(max(now, cert.not_valid_before_utc), cert.not_valid_after_utc)


# --- chain and trust anchors -----------------------------------------------------------------

def _build(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
           anchors: TrustAnchors, at: dt.datetime) -> list[x509.Certificate] | str:
    """The verified chain (leaf … anchor), or the verifier's reason for refusing it.

    A client verifier with a permissive end-entity policy: EKU and names are judged by
    :func:`usage` and :func:`hostname`, so this answers only "does it build to the anchors".
    """
    builder = (verification.PolicyBuilder()
               .store(verification.Store(list(anchors.certificates)))
               .time(at)
               .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=verification.ExtensionPolicy.permit_all()))
    try:
        return list(builder.build_client_verifier().verify(leaf, list(intermediates)).chain)
    except verification.VerificationError as exc:
        return _reason(exc)


def _reason(exc: Exception) -> str:
    """The verifier's message without its ``(encountered processing <Certificate…>)`` tail."""
    text = str(exc).removeprefix("validation failed: ")
    text = text.split(" (encountered processing", 1)[0]
    if text.startswith("candidates exhausted"):
        return "no path to any of these anchors"
    return text


def _path(chain: Sequence[x509.Certificate]) -> str:
    return " → ".join(common_name(c.subject) for c in chain)


def chain(presented: Sequence[x509.Certificate], anchors: TrustAnchors,
          forbidden: TrustAnchors | None = None, production: bool = False,
          now: dt.datetime | None = None) -> CertCheck:
    """The presented chain (leaf first) builds to ``anchors``, not to ``forbidden`` ones, and —
    in production — carries no IGC Santé TEST name."""
    if not presented:
        return CertCheck("chain", "error", "no certificate to judge")
    leaf, intermediates = presented[0], presented[1:]
    at = _inside_validity(leaf, now or _now())
    built = _build(leaf, intermediates, anchors, at)
    if isinstance(built, str):
        if forbidden is not None and not isinstance(
                wrong := _build(leaf, intermediates, forbidden, at), str):
            return CertCheck("chain", "fail",
                             f"builds to the forbidden anchors {forbidden.label} "
                             f"({_path(wrong)}), not to {anchors.label}",
                             [common_name(wrong[-1].subject)])
        return CertCheck("chain", "fail",
                         f"no chain to {anchors.label}: {built} (leaf issued by "
                         f"{common_name(leaf.issuer)})", [common_name(leaf.issuer)])
    if production:
        test_names = [common_name(c.subject) for c in [*built, *intermediates]
                      if is_test_name(c.subject) or is_test_name(c.issuer)]
        if test_names:
            return CertCheck("chain", "fail", f"IGC Santé TEST hierarchy in production: "
                                              f"{_path(built)}", list(dict.fromkeys(test_names)))
    return CertCheck("chain", "pass", f"{_path(built)} (anchors {anchors.label})")


def trust_store(anchors: TrustAnchors, forbidden: TrustAnchors | None = None,
                production: bool = False, now: dt.datetime | None = None, *,
                igc_production: Mapping[str, str] | None = None,
                self_made: bool | None = None) -> CertCheck:
    """The anchor bundle itself: no forbidden anchor in it, no TEST root in production, none
    expired (a chain to an expired anchor cannot verify), and, when asked, IGC Santé's own: in
    production exactly the anchors of ``igc_production`` (SHA-256 fingerprint -> name);
    elsewhere, with ``self_made=False``, the TEST hierarchy by name (:func:`is_igc_test_anchor`).
    ``self_made=True`` (the profile says its anchors are home-made) is judged on the rest only:
    every "chains to IGC Santé" verdict then means "chains to these", which the measured text
    says."""
    now = now or _now()
    banned = {fingerprint(c) for c in forbidden.certificates} if forbidden else set()
    offending = []
    for cert in anchors.certificates:
        name = common_name(cert.subject)
        if forbidden is not None and fingerprint(cert) in banned:
            offending.append(f"{name}: also in the forbidden anchors {forbidden.label}")
        if production and is_test_name(cert.subject):
            offending.append(f"{name}: IGC Santé TEST anchor in a production trust store")
        if production and igc_production is not None and fingerprint(cert) not in igc_production:
            offending.append(f"{name}: not an IGC Santé PRODUCTION anchor (SHA-256 "
                             f"{fingerprint(cert)[:16]}…)")
        if not production and self_made is False and not is_igc_test_anchor(cert.subject):
            offending.append(f"{name}: not the IGC Santé TEST hierarchy (subject "
                             f"{cert.subject.rfc4514_string()}; expected OU={TEST_OU} and "
                             f"O={TEST_ORG}): declare [trust] self_made = true for home-made "
                             "anchors")
        if cert.not_valid_after_utc < now:
            offending.append(f"{name}: expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if production and igc_production is not None:
        present = {fingerprint(c) for c in anchors.certificates}
        offending += [f"{name}: IGC Santé PRODUCTION anchor missing"
                      for fp, name in igc_production.items() if fp not in present]
    measured = (f"{len(anchors.certificates)} anchor(s) in {anchors.label}: "
                + ", ".join(common_name(c.subject) for c in anchors.certificates))
    if self_made and not production:
        measured += " (self-made, not IGC Santé: chains are checked against non-IGC anchors)"
    return CertCheck("trust store", "fail" if offending else "pass", measured, offending)


# --- dates, names, keys, usages, revocation --------------------------------------------------

def expiry(certs: Sequence[x509.Certificate], fail_days: float, warn_days: float,
           now: dt.datetime | None = None) -> CertCheck:
    """Fail under ``fail_days`` left (expired or not yet valid included), warn under
    ``warn_days``; judged on every certificate given (a leaf and its intermediates)."""
    now = now or _now()
    if not certs:
        return CertCheck("expiry", "error", "no certificate to judge")
    failing, warning = [], []
    for cert in certs:
        left, name = days_left(cert, now), common_name(cert.subject)
        if cert.not_valid_before_utc > now:
            failing.append(
                f"{name}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        elif left < 0:
            failing.append(f"{name}: expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        elif left < fail_days:
            failing.append(f"{name}: expires in {left:.1f} days (< {fail_days:g})")
        elif left < warn_days:
            warning.append(f"{name}: expires in {left:.1f} days (< {warn_days:g})")
    leaf = certs[0]
    measured = (f"leaf expires {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC "
                f"({days_left(leaf, now):.1f} days left; "
                f"fail < {fail_days:g}, warn < {warn_days:g})")
    verdict: Verdict = "fail" if failing else "warn" if warning else "pass"
    return CertCheck("expiry", verdict, measured, failing + warning)


def _names(leaf: x509.Certificate) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in san if isinstance(n, (x509.DNSName, x509.IPAddress))]


def _matches(leaf: x509.Certificate, host: str) -> bool:
    """RFC 6125 matching by the library: the leaf is its own anchor, so only its name (SAN,
    wildcards, IP addresses) is judged."""
    try:
        subject: verification.DNSName | verification.IPAddress = verification.IPAddress(
            ipaddress.ip_address(host))
    except ValueError:
        try:
            subject = verification.DNSName(host)
        except ValueError:              # not a valid DNS name: nothing can match it
            return False
    ee = verification.ExtensionPolicy.permit_all().require_present(
        x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None)
    builder = (verification.PolicyBuilder().store(verification.Store([leaf]))
               .time(_inside_validity(leaf, _now()))
               .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=ee))
    try:
        builder.build_server_verifier(subject).verify(leaf, [])
    except verification.VerificationError:
        return False
    return True


def hostname(leaf: x509.Certificate, hosts: Sequence[str]) -> CertCheck:
    """Every host name clients use for this service is in the leaf's subjectAltName."""
    names = _names(leaf)
    missing = [h for h in hosts if not _matches(leaf, h)]
    measured = f"subjectAltName: {', '.join(names) or 'none'}"
    return CertCheck("hostname", "fail" if missing else "pass", measured,
                     [f"{h} not covered" for h in missing])


def _key_description(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unsupported", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return type(key).__name__.removesuffix("PublicKey"), None
    return type(key).__name__, None


def key_size(certs: Sequence[x509.Certificate], min_rsa_bits: int, min_ec_bits: int) -> CertCheck:
    """RSA and EC keys at least as large as the TLS policy asks; other key types fail
    (IGC Santé issues RSA; the policy knows no minimum for anything else)."""
    offending, described = [], []
    for cert in certs:
        kind, bits = _key_description(cert)
        described.append(f"{kind} {bits}" if bits else kind)
        minimum = {"RSA": min_rsa_bits, "EC": min_ec_bits}.get(kind)
        if minimum is None or (bits or 0) < minimum:
            offending.append(f"{common_name(cert.subject)}: "
                             + (f"{kind} {bits} bits" if bits else f"{kind} key"))
    measured = (f"{', '.join(described)} (minimum RSA {min_rsa_bits}, EC {min_ec_bits})")
    return CertCheck("key size", "fail" if offending else "pass", measured, offending)


def signature(certs: Sequence[x509.Certificate], allowed_hashes: Sequence[str]) -> CertCheck:
    """Signatures use an allowed hash; a self-signed anchor's own signature is not judged
    (no client verifies it)."""
    allowed = {h.casefold() for h in allowed_hashes}
    judged = [c for c in certs if not _self_signed(c)] or list(certs[:1])
    offending, seen = [], []
    for cert in judged:
        algorithm = cert.signature_hash_algorithm
        name = algorithm.name if algorithm else "none"
        seen.append(name)
        if name.casefold() not in allowed:
            offending.append(f"{common_name(cert.subject)}: signed with {name}")
    measured = f"{', '.join(dict.fromkeys(seen))} (allowed: {', '.join(allowed_hashes)})"
    return CertCheck("signature hash", "fail" if offending else "pass", measured, offending)


_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


_KU_FLAGS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign")


def usage(leaf: x509.Certificate, purposes: Sequence[x509.ObjectIdentifier]) -> CertCheck:
    """An end-entity certificate for TLS: keyUsage with digitalSignature and no CA bits, not a
    CA, and extendedKeyUsage naming every purpose the service needs (serverAuth; clientAuth
    too where the same certificate authenticates us to peers)."""
    offending = []
    ku = _extension(leaf, x509.KeyUsage)
    flags = [f for f in _KU_FLAGS if ku is not None and getattr(ku, f)]
    if ku is None:
        offending.append("no keyUsage extension")
    else:
        if "digital_signature" not in flags:
            offending.append("keyUsage lacks digitalSignature")
        offending += [f"keyUsage has {f} (a CA bit)" for f in ("key_cert_sign", "crl_sign")
                      if f in flags]
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        offending.append("basicConstraints says CA")
    eku = _extension(leaf, x509.ExtendedKeyUsage)
    eku_oids = list(eku) if eku is not None else []
    eku_names = [_PURPOSE_NAMES.get(o, o.dotted_string) for o in eku_oids]
    if eku is None:
        offending.append("no extendedKeyUsage extension")
    offending += [f"extendedKeyUsage lacks {_PURPOSE_NAMES.get(p, p.dotted_string)}"
                  for p in purposes if eku is not None and p not in eku_oids]
    wanted = ", ".join(_PURPOSE_NAMES.get(p, p.dotted_string) for p in purposes)
    measured = (f"keyUsage: {', '.join(flags) or 'none'}; extendedKeyUsage: "
                f"{', '.join(eku_names) or 'none'} (required: {wanted})")
    return CertCheck("key usage", "fail" if offending else "pass", measured, offending)


def revocation(certs: Sequence[x509.Certificate]) -> CertCheck:
    """Every issued certificate (not self-signed anchors) names a CRL distribution point, so a
    relying party can check revocation; the AIA caIssuers/OCSP presence is reported too."""
    offending, urls = [], []
    judged = [c for c in certs if not _self_signed(c)]
    for cert in judged:
        points = _extension(cert, x509.CRLDistributionPoints)
        found = [str(n.value) for p in points or [] for n in p.full_name or []
                 if isinstance(n, x509.UniformResourceIdentifier)]
        if not found:
            offending.append(f"{common_name(cert.subject)}: no CRL distribution point URI")
        urls += found
    aia = _extension(judged[0], x509.AuthorityInformationAccess) if judged else None
    measured = (f"CRL: {', '.join(dict.fromkeys(urls)) or 'none'}; leaf AIA: "
                f"{'present' if aia is not None else 'absent'}")
    if not judged:
        return CertCheck("CRL distribution point", "not_applicable",
                         "only self-signed certificates")
    return CertCheck("CRL distribution point", "fail" if offending else "pass", measured,
                     offending)


# --- files on disk ---------------------------------------------------------------------------

def key_match(leaf: x509.Certificate, key_file: Path) -> CertCheck:
    """The private key on disk is the certificate's (same public key)."""
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except OSError as exc:
        return CertCheck("key match", "error", f"{key_file}: cannot read ({exc.strerror})")
    except TypeError:
        return CertCheck("key match", "error", f"{key_file}: the key is encrypted; it cannot "
                                               "be compared without its passphrase")
    except (ValueError, UnsupportedAlgorithm) as exc:
        return CertCheck("key match", "fail", f"{key_file}: not a usable PEM private key "
                                              f"({' '.join(str(exc).split())[:120]})")
    same = key.public_key() == leaf.public_key()
    measured = (f"{key_file.name} {'matches' if same else 'does NOT match'} the certificate of "
                f"{common_name(leaf.subject)} (sha256 {fingerprint(leaf)[:16]}…)")
    return CertCheck("key match", "pass" if same else "fail", measured,
                     [] if same else [str(key_file)])


def key_file_mode(key_file: Path) -> CertCheck:
    """No access for "others" to a private key file (world-readable or -writable fails)."""
    try:
        info = os.stat(key_file)
    except OSError as exc:
        return CertCheck("key file mode", "error", f"{key_file}: cannot stat ({exc.strerror})")
    mode = stat.S_IMODE(info.st_mode)
    offending = ([f"world-readable ({mode:04o})"] if mode & stat.S_IROTH else []) + \
                ([f"world-writable ({mode:04o})"] if mode & stat.S_IWOTH else [])
    measured = f"{key_file}: mode {mode:04o}, owner uid {info.st_uid} gid {info.st_gid}"
    return CertCheck("key file mode", "fail" if offending else "pass", measured, offending)
