"""Post-deployment test 6: every TLS endpoint's certificate — dates and chain — on the wire.

The seed prints ``openssl x509 -dates``; we judge them: the chain must verify against the
environment's IGC Santé anchors with the endpoint's host name, and the leaf must be further
from expiry than the profile's thresholds (fail under 7 days, warn under 30 by default).
"""
from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography.x509.oid import NameOID

from probes.handshake import leaf_certificate
from probes.tlsctx import client_context


def _context(endpoint, verify: bool) -> ssl.SSLContext:
    return client_context(endpoint.ca_file, endpoint.client_cert, endpoint.client_key,
                          verify=verify)


@pytest.mark.service("tls")
@pytest.mark.requirement("SEED-POST-6")
def test_certificate_dates_and_chain(tls_endpoint, env_profile, timeouts, record):
    ep = tls_endpoint
    leaf = leaf_certificate(ep.host, ep.port, ep.mode, _context(ep, verify=False),
                            timeouts["connect"])
    days_left = (leaf.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400
    issuer = leaf.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    record.measure(f"{ep.name}: days left", round(days_left, 1), "days")
    record.measure(f"{ep.name}: issuer", issuer[0].value if issuer else leaf.issuer.rfc4514_string())
    fail_days = env_profile.threshold("cert_fail_days")
    warn_days = env_profile.threshold("cert_warn_days")
    assert days_left > 0, f"{ep.name}: certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
    assert days_left >= fail_days, (
        f"{ep.name}: certificate expires in {days_left:.1f} days (< {fail_days})")
    try:
        leaf_certificate(ep.host, ep.port, ep.mode, _context(ep, verify=True), timeouts["connect"])
    except ssl.SSLCertVerificationError as exc:
        pytest.fail(f"{ep.name}: chain does not verify against the environment's IGC Santé "
                    f"anchors: {exc.verify_message}", pytrace=False)
    if days_left < warn_days:
        record.warn(f"{ep.name}: certificate expires in {days_left:.1f} days (< {warn_days})")
