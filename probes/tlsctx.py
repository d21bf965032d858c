"""Client TLS contexts built from a profile's trust anchors (never the system store).

MSSanté clients must accept IGC Santé only, so verification uses exactly the anchors the
profile names; a chain to any other CA fails the handshake.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509


def client_context(ca_file: Path | None, cert: Path | None = None, key: Path | None = None,
                   verify: bool = True) -> ssl.SSLContext:
    """A TLS ≥ 1.2 client context verifying against ``ca_file`` (or not at all if verify=False)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        if ca_file is None:
            raise ValueError("no trust anchors (ca_file) configured for this target")
        context.load_verify_locations(cafile=str(ca_file))
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


def peer_certificate(sock: ssl.SSLSocket) -> x509.Certificate:
    """The leaf certificate the server presented on this connection."""
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("server presented no certificate")
    return x509.load_der_x509_certificate(der)


class watched_handshake:  # noqa: N801 - used like the context it stands for
    """An SSL context stand-in whose ``wrap_socket`` hands the TLS socket to ``watch`` before
    the handshake, so a deadline's watchdog (outside the main thread) can cut a handshake the
    server never finishes; smtplib's and imaplib's STARTTLS call only ``wrap_socket``."""

    def __init__(self, context: ssl.SSLContext, watch: Callable[[socket.socket], None]) -> None:
        self.context, self.watch = context, watch

    def wrap_socket(self, sock: socket.socket, server_hostname: str | None = None
                    ) -> ssl.SSLSocket:
        tls = self.context.wrap_socket(sock, server_hostname=server_hostname,
                                       do_handshake_on_connect=False)
        self.watch(tls)
        try:
            tls.do_handshake()
        except BaseException:
            tls.close()                 # the caller never gets it: close it here
            raise
        return tls
