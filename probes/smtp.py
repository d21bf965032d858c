"""SMTP sessions over smtplib, with STARTTLS, client certificates and a transcript.

smtplib does the protocol; this subclass only records what crosses the wire (masking the
client's lines during AUTH) and bounds every step with the session's timeout.
"""
from __future__ import annotations

import smtplib
import ssl

from probes.transcript import Transcript


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that writes every command and reply into a Transcript."""

    def __init__(self, host: str, port: int, timeout: float, transcript: Transcript,
                 local_hostname: str = "mssante-check.invalid") -> None:
        self.transcript = transcript
        self._auth_in_progress = False
        self._data_next = False
        transcript.note(f"connect {host}:{port} (timeout {timeout}s)")
        super().__init__(host, port, local_hostname=local_hostname, timeout=timeout)

    def send(self, s: str | bytes) -> None:  # type: ignore[override]
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if text.upper().startswith("AUTH"):
            verb = " ".join(text.split()[:2])
            self.transcript.client(f"{verb} {'[REDACTED]' if len(text.split()) > 2 else ''}")
            self._auth_in_progress = True
        elif self._auth_in_progress:
            self.transcript.client("", secret=True)
        elif self._data_next:
            self.transcript.client(f"<message data, {len(text)} bytes>")
            self._data_next = False
        else:
            self.transcript.client(text)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        self.transcript.server(f"{code} {message.decode('utf-8', 'replace')}")
        if code != 334:
            self._auth_in_progress = False
        self._data_next = code == 354
        return code, message


def connect(host: str, port: int, timeout: float, name: str) -> RecordingSMTP:
    """Open a plain SMTP session (banner read) recording into a new transcript ``name``."""
    return RecordingSMTP(host, port, timeout, Transcript(name))


def ehlo_features(session: smtplib.SMTP) -> dict[str, str]:
    code, _ = session.ehlo()
    if code != 250:
        raise smtplib.SMTPResponseException(code, b"EHLO refused")
    return dict(session.esmtp_features)


def starttls(session: smtplib.SMTP, context: ssl.SSLContext) -> dict[str, str]:
    """STARTTLS, then EHLO again (RFC 3207); returns the post-TLS features."""
    session.starttls(context=context)
    return ehlo_features(session)


def close(session: smtplib.SMTP) -> None:
    try:
        session.quit()
    except (smtplib.SMTPException, OSError):
        session.close()
