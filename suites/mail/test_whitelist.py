"""The MSSanté whitelist ("liste blanche") the MTA uses, and whether the MTA enforces it.

The profile names the copy (``[smtp.mx] whitelist``: a file path or an HTTPS URL). It must
parse in the agency's format, list the operator's own domains with the subject of the
certificate its MX really serves, be fresher than the profile's bound, and the MTA must refuse
a peer whose certificate is not the one its domain's entry names (DESIGN.md §8).
"""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509

from plugins.profile import NotConfigured
from policy import refusal
from probes.handshake import leaf_certificate
from probes.tlsctx import client_context
from probes.whitelist import Whitelist, WhitelistError, domain_key, parse
from probes.whitelist_fetch import read_whitelist

pytestmark = pytest.mark.service("smtp-mx")


@pytest.fixture(scope="module")
def document(target, env_profile, timeouts) -> bytes:
    """The whitelist's bytes, read once per module from where the profile says the MTA's is."""
    source = target("smtp.mx")["whitelist"]
    return read_whitelist(source, env_profile.path.parent, env_profile.path_of("trust", "anchors"),
                          timeouts["http"])


@pytest.fixture(scope="module")
def whitelist(document: bytes) -> Whitelist:
    try:
        return parse(document)
    except WhitelistError as exc:
        pytest.fail(f"the whitelist does not parse: {exc}", pytrace=False)


@pytest.fixture
def own_domains(env_profile) -> list[str]:
    if not env_profile.domains:
        raise NotConfigured(env_profile.name, "[environment] domains")
    return env_profile.domains


@pytest.mark.requirement("MSS-WL-FORMAT")
def test_whitelist_parses(document, evidence_path, record):
    digest = hashlib.sha256(document).hexdigest()
    snapshot = evidence_path / "whitelist" / f"listeblanche-{digest[:16]}.xml"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_bytes(document)
    record.evidence(f"whitelist/{snapshot.name}")
    record.measure("whitelist_sha256", digest)
    try:
        listed = parse(document)
    except WhitelistError as exc:
        pytest.fail(f"the whitelist does not parse in the agency's format: {exc}", pytrace=False)
    record.measure("whitelist_generated", listed.generated_at.isoformat())
    record.measure("whitelist_domains", len(listed.entries))
    assert listed.entries, "the whitelist lists no domain"


@pytest.mark.requirement("MSS-WL-LISTED")
def test_own_domains_listed(whitelist, own_domains):
    listed = {domain_key(entry.name) for entry in whitelist.entries}
    missing = [d for d in own_domains if domain_key(d) not in listed]
    assert not missing, f"own domain(s) not on the whitelist: {', '.join(missing)}"


@pytest.mark.requirement("MSS-WL-OWN-DN")
def test_own_dn_matches_served_certificate(target, whitelist, own_domains, timeouts, record):
    """The MX certificate is fetched the way a peer sees it (presenting the peer's client
    certificate); verification is left to the certificate suites, this compares names only."""
    mx = target("smtp.mx")
    mx["peer_cert"], mx["peer_key"]         # raise NotConfigured (a skip) when absent
    context = client_context(None, mx.path("peer_cert"), mx.path("peer_key"), verify=False)
    served = leaf_certificate(mx["host"], mx["port"], "smtp", context, timeouts["connect"]).subject
    record.measure("mx_certificate_subject", served.rfc4514_string())
    own = {domain_key(d) for d in own_domains}
    entries = [e for e in whitelist.entries if domain_key(e.name) in own]
    if not entries:
        pytest.fail("none of the own domains is on the whitelist: no DN to compare", pytrace=False)
    wrong = []
    for entry in entries:
        try:
            matches = x509.Name.from_rfc4514_string(entry.operator_dn) == served
        except ValueError:
            matches = False
        if not matches:
            wrong.append(f"{entry.name}: whitelist {entry.operator_dn!r}")
    assert not wrong, (f"DNCertificatOperateur differs from the served certificate subject "
                       f"{served.rfc4514_string()!r}: {'; '.join(wrong)}")


@pytest.mark.requirement("MSS-WL-FRESH")
def test_whitelist_fresh(whitelist, env_profile, record):
    bound = env_profile.threshold("whitelist_max_age_h")
    age_h = (dt.datetime.now(dt.UTC) - whitelist.generated_at).total_seconds() / 3600
    record.measure("whitelist_age", round(age_h, 2), "h")
    assert age_h <= bound, (f"the whitelist copy was generated {age_h:.1f} h ago "
                            f"({whitelist.generated_at.isoformat()}), more than {bound} h")


@pytest.mark.requirement("MSS-WL-DN-MATCH")
def test_peer_certificate_not_matching_domain_refused(mx_refusal, peer_sender):
    """A valid IGC Santé certificate of another operator (the profile's rogue one) sending as
    the whitelisted peer's domain; the control is the peer's own certificate (policy/refusal.py)."""
    mx_refusal(refusal.OPERATOR_CERTIFICATE, "rogue-cert-peer-domain", "rogue", peer_sender)
