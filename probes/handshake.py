"""One TLS handshake per endpoint kind (HTTPS, SMTP STARTTLS, IMAP STARTTLS, implicit TLS).

Returns the leaf certificate the server presented; verification is whatever the given
context demands, so the same code fetches a certificate for inspection (no verification) and
proves the chain builds to the profile's anchors (verification on).
"""
from __future__ import annotations

import smtplib
import socket
import ssl

from cryptography import x509
from imapclient import IMAPClient

from probes.tlsctx import peer_certificate


def leaf_certificate(host: str, port: int, mode: str, context: ssl.SSLContext,
                     timeout: float) -> x509.Certificate:
    """Complete a handshake the way a client of this endpoint would; return the leaf."""
    if mode in ("https", "implicit"):
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                return peer_certificate(tls)
    if mode == "smtp":
        session = smtplib.SMTP(host, port, local_hostname="mssante-check.invalid",
                               timeout=timeout)
        try:
            session.ehlo()
            session.starttls(context=context)
            return peer_certificate(session.sock)  # type: ignore[arg-type]
        finally:
            session.close()
    if mode == "imap":
        client = IMAPClient(host, port=port, ssl=False, timeout=timeout)
        try:
            client.starttls(context)
            return peer_certificate(client._imap.sock)  # noqa: SLF001 - imapclient exposes no accessor
        finally:
            client.shutdown()
    raise ValueError(f"unknown TLS mode {mode!r}")
