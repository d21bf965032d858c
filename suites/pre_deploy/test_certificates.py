"""Checklist item 5: the certificate files about to be served are valid long enough.

The seed reads ``openssl x509 -noout -dates`` and its production script refuses a certificate
that expires within 7 days and warns within 30 (``-checkend``); the profile's thresholds say
the same (``cert_fail_days``, ``cert_warn_days``). The files come from ``[[certificates.files]]``.
"""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

pytestmark = pytest.mark.service("tls")


@pytest.mark.requirement("SEED-TECH-5")
def test_certificate_file_valid(cert_file, env_profile, record):
    name, path = cert_file
    assert path.is_file(), f"{name}: {path} does not exist"
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    now = dt.datetime.now(dt.UTC)
    days_left = (cert.not_valid_after_utc - now).total_seconds() / 86400
    record.measure(f"{name}: days left", round(days_left, 1), "days")
    assert cert.not_valid_before_utc <= now, (
        f"{name} ({path}): not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    fail_days = env_profile.threshold("cert_fail_days")
    warn_days = env_profile.threshold("cert_warn_days")
    assert days_left >= fail_days, (
        f"{name} ({path}): certificate expires in {days_left:.1f} days, on "
        f"{cert.not_valid_after_utc:%Y-%m-%d} (< {fail_days} days)")
    if days_left < warn_days:
        record.warn(f"{name} ({path}): certificate expires in {days_left:.1f} days "
                    f"(< {warn_days} days)")
