"""Post-deployment test 6: every TLS endpoint's certificate — dates and chain — on the wire.

The seed prints ``openssl x509 -dates``; we judge them: the chain must verify against the
environment's IGC Santé anchors with the endpoint's host name, and the leaf must be further
from expiry than the profile's thresholds (fail under 7 days, warn under 30 by default;
the verdict comes from :func:`probes.certificates.expiry`, shared with suites/certs).
"""
from __future__ import annotations

import ssl

import pytest

from probes import certificates
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
    record.measure(f"{ep.name}: days left", round(certificates.days_left(leaf), 1), "days")
    record.measure(f"{ep.name}: issuer", certificates.common_name(leaf.issuer))
    expiry = certificates.expiry([leaf], env_profile.threshold("cert_fail_days"),
                                 env_profile.threshold("cert_warn_days"))
    if expiry.verdict == "fail":
        pytest.fail(f"{ep.name}: certificate {'; '.join(expiry.offending)}", pytrace=False)
    try:
        leaf_certificate(ep.host, ep.port, ep.mode, _context(ep, verify=True), timeouts["connect"])
    except ssl.SSLCertVerificationError as exc:
        pytest.fail(f"{ep.name}: chain does not verify against the environment's IGC Santé "
                    f"anchors: {exc.verify_message}", pytrace=False)
    if expiry.verdict == "warn":
        record.warn(f"{ep.name}: certificate {'; '.join(expiry.offending)}")
