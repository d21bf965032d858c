"""One TLS handshake per endpoint kind (HTTPS, SMTP STARTTLS, IMAP STARTTLS, implicit TLS).

Returns the leaf certificate the server presented; verification is whatever the given
context demands, so the same code fetches a certificate for inspection (no verification) and
proves the chain builds to the profile's anchors (verification on).

The whole exchange (connection, banner or welcome, STARTTLS, handshake) runs under one
wall-clock deadline of ``timeout`` s (:mod:`probes.deadline`; the SMTP and IMAP sessions bound
their own steps too). Could-not-run cases (refused, DNS, cut, time-out, garbage instead of a
banner, a handshake failing for another reason than the certificate) raise
:class:`~probes.errors.CouldNotRun`; ``ssl.SSLCertVerificationError`` propagates.
"""
from __future__ import annotations

import socket
import ssl

from cryptography import x509

from probes import smtp, vantage
from probes.deadline import deadline
from probes.errors import CouldNotRun, reason
from probes.imap import ImapSession
from probes.tlsctx import peer_certificate, watched_handshake

MODES = ("https", "implicit", "smtp", "imap")


def leaf_certificate(host: str, port: int, mode: str, context: ssl.SSLContext,
                     timeout: float) -> x509.Certificate:
    """Complete a handshake the way a client of this endpoint would; return the leaf."""
    if mode not in MODES:
        raise ValueError(f"unknown TLS mode {mode!r}")
    endpoint = f"{host}:{port}"
    with deadline(timeout, endpoint, f"TLS handshake ({mode})") as bound:
        if mode == "smtp":
            session = smtp.connect(host, port, timeout, "handshake")
            try:
                smtp.starttls(session, context)
                return peer_certificate(session.sock)  # type: ignore[arg-type]  # TLS by now
            finally:
                session.close()
        if mode == "imap":
            imap = ImapSession(host, port, timeout, "handshake")
            try:
                imap.starttls(context)
                return peer_certificate(imap.client._imap.sock)  # noqa: SLF001 - no accessor
            finally:
                imap.client.shutdown()
        try:
            with socket.create_connection((host, port), timeout=bound.remaining(),
                                          source_address=vantage.source()) as raw:
                bound.watch(raw)
                with watched_handshake(context, bound.watch).wrap_socket(
                        raw, server_hostname=host) as tls:
                    return peer_certificate(tls)
        except ssl.SSLCertVerificationError:
            raise
        except OSError as exc:
            raise CouldNotRun(endpoint, "TLS handshake", reason(exc)) from exc
