"""Where suites/certs gets its certificates, and the trust anchors it judges them against.

Two kinds of source, judged by the same checks: the chain each TLS endpoint sends (taken from
the run's shared TLS scan, so no extra handshake) — ids ``wire-<endpoint>`` — and the files the
profile declares under ``[certificates] files`` — ids ``disk-<name>``. A source that cannot be
read (scan failed, missing file) is an *error* of every check on it, never a pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509

from plugins import environments
from plugins.endpoints import Endpoint, tls_endpoints
from plugins.outcomes import Recorder
from plugins.profile import NotConfigured, Profile
from plugins.tls_audit import (
    CertificateFile,
    NotMeasured,
    get_certificate_files,
    report_verdict,
    scan_evidence,
    service_of,
)
from probes import certificates
from probes.certificates import CLIENT_AUTH, SERVER_AUTH, CertCheck, TrustAnchors
from probes.tls_scan import TlsScan

# The MX's certificate also authenticates us to peer operators (mutual TLS, DESIGN §8).
CLIENT_AUTH_SECTIONS = ("smtp.mx",)


@dataclass(frozen=True)
class CertificateSource:
    """A chain to judge: leaf first, the host names clients use for it, the purposes it
    serves, and the evidence it came from."""

    name: str
    presented: tuple[x509.Certificate, ...]
    hosts: tuple[str, ...]
    purposes: tuple[x509.ObjectIdentifier, ...]
    evidence: str | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return self.presented[0]


@dataclass(frozen=True)
class Trust:
    """The profile's ``[trust]``: anchors, the anchors a chain must never reach, whether
    this is production (where a TEST hierarchy name anywhere fails), and whether the profile
    says its anchors are home-made (``self_made``: not IGC Santé's, reports say so)."""

    anchors: TrustAnchors
    forbidden: TrustAnchors | None
    production: bool
    self_made: bool = False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    profile = environments.get_profile(metafunc.config)
    if profile is None:
        return
    files = get_certificate_files(metafunc.config)
    if "cert_source" in metafunc.fixturenames:
        params = [pytest.param(("wire", e), id=f"wire-{e.name}",
                               marks=pytest.mark.service(service_of(e)))
                  for e in tls_endpoints(profile)]
        params += [pytest.param(("disk", f), id=f"disk-{f.name}",
                                marks=pytest.mark.service("certificate-files"))
                   for f in files]
        metafunc.parametrize("cert_source", params or [_not_configured(
            profile, "no TLS endpoint and no [certificates] files")], indirect=True)
    if "cert_file" in metafunc.fixturenames:
        metafunc.parametrize("cert_file", [pytest.param(f, id=f.name,
                                                        marks=pytest.mark.service("certificate-files"))
                                           for f in files]
                             or [_not_configured(profile, "[certificates] files")])


def _not_configured(profile: Profile, what: str) -> object:
    return pytest.param(None, marks=pytest.mark.skip(reason=f"not configured in {profile.name}: "
                                                            f"{what}"))


def _wire(endpoint: Endpoint, scan: TlsScan) -> CertificateSource:
    if scan.error:
        raise NotMeasured(f"wire-{endpoint.name}: scan failed: {scan.error}")
    if "certificate_info" in scan.command_errors:
        raise NotMeasured(f"wire-{endpoint.name}: certificate_info failed: "
                          f"{scan.command_errors['certificate_info']}")
    presented = tuple(c for pem in scan.certificate_chain for c in certificates.load_pem_chain(pem))
    if not presented:
        raise NotMeasured(f"wire-{endpoint.name}: the scan received no certificate")
    purposes = (SERVER_AUTH, CLIENT_AUTH) if endpoint.section in CLIENT_AUTH_SECTIONS \
        else (SERVER_AUTH,)
    return CertificateSource(f"wire-{endpoint.name}", presented, (endpoint.host,), purposes,
                             scan_evidence(endpoint))


def _disk(entry: CertificateFile) -> CertificateSource:
    try:
        presented = certificates.load_pem_chain(entry.cert.read_bytes())
        if entry.chain is not None:
            leaf_fingerprint = certificates.fingerprint(presented[0]) if presented else None
            presented += [c for c in certificates.load_pem_chain(entry.chain.read_bytes())
                          if certificates.fingerprint(c) != leaf_fingerprint]
    except (OSError, ValueError) as exc:
        raise NotMeasured(f"disk-{entry.name}: cannot read the certificate: {exc}") from None
    if not presented:
        raise NotMeasured(f"disk-{entry.name}: no PEM certificate in {entry.cert}")
    purposes = (SERVER_AUTH, CLIENT_AUTH) if entry.client_auth else (SERVER_AUTH,)
    return CertificateSource(f"disk-{entry.name}", tuple(presented), entry.hosts, purposes)


@pytest.fixture
def cert_source(request: pytest.FixtureRequest,
                tls_scanner: Callable[[Endpoint], TlsScan]) -> CertificateSource:
    kind, item = request.param
    return _wire(item, tls_scanner(item)) if kind == "wire" else _disk(item)


@pytest.fixture
def cert_file(request: pytest.FixtureRequest) -> CertificateFile:
    return request.param


@pytest.fixture(scope="session")
def trust(env_profile: Profile) -> Trust:
    section = env_profile.section("trust")
    anchors_path = section.path("anchors")
    if anchors_path is None:
        raise NotConfigured(env_profile.name, "[trust] anchors")
    forbidden_path = section.path("forbidden_anchors")
    try:
        anchors = TrustAnchors.load(anchors_path)
        forbidden = TrustAnchors.load(forbidden_path) if forbidden_path else None
    except (OSError, ValueError) as exc:
        raise NotMeasured(f"[trust] anchors: cannot load: {exc}") from None
    return Trust(anchors, forbidden, env_profile.kind == "production",
                 env_profile.self_made_anchors)


@pytest.fixture
def judge(record: Recorder) -> Callable[[CertificateSource | str, CertCheck], None]:
    """``judge(source, check)``: link the source's evidence, record what was measured, then
    pass, warn, skip, error or fail according to the check's verdict."""

    def apply(source: CertificateSource | str, check: CertCheck) -> None:
        name = source if isinstance(source, str) else source.name
        if isinstance(source, CertificateSource) and source.evidence:
            record.evidence(source.evidence)
        report_verdict(record, check.verdict, check.message(name), measured=check.measured,
                       measure_name=f"{name} {check.check}")

    return apply
