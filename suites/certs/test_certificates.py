"""IGC Santé certificates, on the wire (each TLS endpoint's chain) and on disk (the profile's
``[certificates] files``): the same seven checks on both, ``test_x[wire-imaps]`` and
``test_x[disk-server]``.

The seed runs ``openssl x509 -dates``; an auditor asks more: does the chain reach the
environment's IGC Santé anchors (and never the other hierarchy), how long is left, does it
name the host, is the key strong and the signature SHA-2, is it a server certificate (and a
client one for the MX, which authenticates us to peer operators), can revocation be checked.
Key size and hash minimums come from the TLS policy, so both suites judge by the same numbers.
"""
from __future__ import annotations

import pytest

from plugins.profile import NotConfigured, Profile
from policy.tls import TlsPolicy
from probes import certificates


def _params(policy: TlsPolicy, rule_id: str):
    try:
        return policy.rule(rule_id).params
    except KeyError:
        pytest.skip(f"not configured in {policy.path.name}: no rule {rule_id}")


@pytest.mark.requirement("MSS-IGC-HIERARCHY", "SEED-SEC-7")
def test_chain(cert_source, trust, judge):
    judge(cert_source, certificates.chain(cert_source.presented, trust.anchors, trust.forbidden,
                                          trust.production))


@pytest.mark.requirement("IGC-CERT-VALIDITY", "SEED-SEC-7")
def test_expiry(cert_source, env_profile: Profile, judge):
    judge(cert_source, certificates.expiry(cert_source.presented,
                                           env_profile.threshold("cert_fail_days"),
                                           env_profile.threshold("cert_warn_days")))


@pytest.mark.requirement("IGC-CERT-HOSTNAME")
def test_hostname(cert_source, env_profile: Profile, judge):
    if not cert_source.hosts:
        raise NotConfigured(env_profile.name, f"[certificates] files "
                                              f"{cert_source.name.removeprefix('disk-')}: hosts")
    judge(cert_source, certificates.hostname(cert_source.leaf, cert_source.hosts))


@pytest.mark.requirement("IGC-CERT-KEY")
def test_key_size(cert_source, tls_policy: TlsPolicy, judge):
    params = _params(tls_policy, "certificate_key")
    judge(cert_source, certificates.key_size(cert_source.presented, params.min_rsa_bits,
                                             params.min_ec_bits))


@pytest.mark.requirement("IGC-CERT-SIGNATURE")
def test_signature_hash(cert_source, tls_policy: TlsPolicy, judge):
    params = _params(tls_policy, "certificate_signature")
    judge(cert_source, certificates.signature(cert_source.presented, params.allowed_hashes))


@pytest.mark.requirement("IGC-CERT-USAGE")
def test_key_usage(cert_source, judge):
    judge(cert_source, certificates.usage(cert_source.leaf, cert_source.purposes))


@pytest.mark.requirement("MSS-IGC-REVOCATION")
def test_crl_distribution_point(cert_source, judge):
    judge(cert_source, certificates.revocation(cert_source.presented))
