"""The private keys the profile declares beside their certificates (``[certificates] files``):
a key that does not match its certificate breaks the service at the next restart, and a key
any local user can read is a key an attacker on the host may already have.
"""
from __future__ import annotations

import pytest

from plugins.tls_audit import NotMeasured
from probes import certificates


@pytest.mark.requirement("IGC-CERT-KEY-MATCH")
def test_private_key_matches_certificate(cert_file, judge):
    try:
        leaf = certificates.load_pem_chain(cert_file.cert.read_bytes())[:1]
    except (OSError, ValueError) as exc:
        raise NotMeasured(f"disk-{cert_file.name}: cannot read {cert_file.cert}: {exc}") from None
    if not leaf:
        raise NotMeasured(f"disk-{cert_file.name}: no PEM certificate in {cert_file.cert}")
    judge(f"disk-{cert_file.name}", certificates.key_match(leaf[0], cert_file.key))


@pytest.mark.requirement("IGC-CERT-KEY-PROTECTED")
def test_private_key_not_world_readable(cert_file, judge):
    judge(f"disk-{cert_file.name}", certificates.key_file_mode(cert_file.key))
