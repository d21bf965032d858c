"""What every lab TLS endpoint serves (certificate, protocols, suites) for the active faults.

Postfix, Dovecot and nginx all take their TLS settings from here so that one fault switch
changes every port the same way, as a badly configured operator would.

The good policy is ANSSI's (DESIGN.md §8, ANSSI-PA-035 §2.1/§2.2 and annex A.1): TLS 1.2 and
1.3 only, ephemeral key exchange, AEAD suites. The leaf key is RSA, so only ECDHE-RSA suites
can ever be negotiated; ECDSA suites are left out rather than listed for show.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab import pki
from lab.services.base import LabContext

GOOD_TLS12 = ("ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
              "ECDHE-RSA-CHACHA20-POLY1305")
# weak-ciphers: CBC suites (ANSSI "degraded" with SHA-2, rejected with SHA-1) and static-RSA
# key exchange (no forward secrecy, rejected whatever the cipher).
WEAK_TLS12 = ("ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA",
              "AES256-GCM-SHA384", "AES128-SHA256", "AES128-SHA")
# tls-legacy: TLS 1.0/1.1 know no AEAD suite, so a server that really accepts them must offer
# SHA-1 CBC suites; OpenSSL then offers them on TLS 1.2 as well (there is no per-version list).
LEGACY_TLS12 = ("ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA")
# Debian's OpenSSL 3 refuses TLS < 1.2 (SHA-1/MD5 handshake signatures) above level 0.
LEGACY_SECLEVEL = "@SECLEVEL=0"

TLS13 = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
         "TLS_AES_128_CCM_SHA256")

# Which server certificate a fault serves, first match wins.
_CERT_FAULTS = (("cert-expired", "expired"), ("cert-expiring", "expiring"),
                ("cert-untrusted", "untrusted"), ("cert-prod-root", "prod"))


@dataclass(frozen=True)
class Served:
    """The files a TLS endpoint is configured with; chain = leaf then intermediate."""

    cert: Path
    chain: Path
    key: Path


def served(ctx: LabContext) -> Served:
    """The server certificate variant every endpoint serves under ctx's faults."""
    variant = next((v for fault, v in _CERT_FAULTS if ctx.has(fault)), "good")
    return Served(pki.path("server", variant, "cert.pem"), pki.path("server", variant, "chain.pem"),
                  pki.path("server", variant, "key.pem"))


def protocols(ctx: LabContext) -> list[str]:
    """Accepted protocol versions, oldest first, in OpenSSL/Postfix/nginx spelling."""
    legacy = ["TLSv1", "TLSv1.1"] if ctx.has("tls-legacy") else []
    return [*legacy, "TLSv1.2", "TLSv1.3"]


def min_protocol(ctx: LabContext) -> str:
    """Lowest accepted version (Dovecot's ``ssl_min_protocol``, Postfix's ``>=`` syntax)."""
    return protocols(ctx)[0]


def tls12_ciphers(ctx: LabContext) -> str:
    """OpenSSL cipher string for TLS <= 1.2 (TLS 1.3 suites are set by tls13_suites)."""
    suites = list(GOOD_TLS12)
    if ctx.has("weak-ciphers"):
        suites += WEAK_TLS12
    if ctx.has("tls-legacy"):
        suites += [s for s in LEGACY_TLS12 if s not in suites]
    return ":".join(suites) + (":" + LEGACY_SECLEVEL if ctx.has("tls-legacy") else "")


def tls13_suites(ctx: LabContext) -> str:
    """OpenSSL TLS 1.3 ciphersuites: the four ANSSI recommends, whatever the faults."""
    return ":".join(TLS13)
