"""SMTP sessions over smtplib, with STARTTLS, client certificates and a transcript.

smtplib does the protocol; this subclass only records what crosses the wire (masking the
client's lines during AUTH) and bounds every step with the session's timeout.
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

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


def connect(host: str, port: int, timeout: float, name: str,
            read_timeout: float | None = None) -> RecordingSMTP:
    """Open a plain SMTP session (banner read) recording into a new transcript ``name``.

    ``timeout`` bounds the connection and the banner; ``read_timeout``, when given, bounds
    every later reply instead (servers answer a failed AUTH slowly on purpose).
    """
    session = RecordingSMTP(host, port, timeout, Transcript(name))
    if read_timeout is not None and session.sock is not None:
        session.sock.settimeout(read_timeout)     # a STARTTLS socket inherits it
    return session


def ehlo_features(session: smtplib.SMTP) -> dict[str, str]:
    code, _ = session.ehlo()
    if code != 250:
        raise smtplib.SMTPResponseException(code, b"EHLO refused")
    return dict(session.esmtp_features)


def starttls(session: smtplib.SMTP, context: ssl.SSLContext) -> dict[str, str]:
    """STARTTLS, then EHLO again (RFC 3207); returns the post-TLS features."""
    session.starttls(context=context)
    _note_tls(session)
    return ehlo_features(session)


def _note_tls(session: smtplib.SMTP) -> None:
    """Put the negotiated protocol and suite in the transcript (when there is one)."""
    transcript = getattr(session, "transcript", None)
    sock = session.sock
    if transcript is not None and isinstance(sock, ssl.SSLSocket):
        cipher = sock.cipher()
        transcript.note(f"TLS established: {sock.version()} {cipher[0] if cipher else ''}")


# Header carried by every message mssante-check sends, so it can be found again and deleted.
MARKER_HEADER = "X-MSSante-Check"


def marked_message(sender: str, recipient: str, marker: str, subject: str) -> EmailMessage:
    """A test message tagged with ``marker`` in MARKER_HEADER (IMAP ``SEARCH HEADER`` finds it)."""
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"[mssante-check] {subject} {marker}"
    message[MARKER_HEADER] = marker
    message.set_content("Message de test automatique mssante-check. À supprimer.\n")
    return message


def close(session: smtplib.SMTP) -> None:
    try:
        session.quit()
    except (smtplib.SMTPException, OSError):
        session.close()


# Ways a server ends a transaction without a reply: a TLS alert (a refused client certificate
# surfaces at the first read after the handshake under TLS 1.3), a reset, a closed connection.
_CUT: tuple[type[BaseException], ...] = (smtplib.SMTPServerDisconnected, ssl.SSLError,
                                          ConnectionResetError, ConnectionAbortedError,
                                          BrokenPipeError)


@dataclass(frozen=True)
class Attempt:
    """How far one mail transaction got: ``accepted``, or the stage where the server stopped it.

    ``code`` is the stopping reply (None when the connection was cut instead); for an accepted
    attempt it is the last reply (DATA's, or RCPT's when no data was offered).
    """

    stage: str          # "ehlo" | "starttls" | "mail" | "rcpt" | "data" | "accepted"
    code: int | None
    reply: str

    @property
    def accepted(self) -> bool:
        return self.stage == "accepted"

    @property
    def refused(self) -> bool:
        """Stopped for good: a TLS alert or cut connection, 421 (the server closes the
        session) or a 5xx reply. A 4xx "try again later" is no refusal: the peer would retry."""
        return not self.accepted and (self.code is None or self.code == 421 or self.code >= 500)

    def __str__(self) -> str:
        verdict = ("accepted" if self.accepted else
                   f"{'refused' if self.refused else 'deferred'} at {self.stage.upper()}")
        answer = f"{self.code} {self.reply}" if self.code is not None else self.reply
        return f"{verdict} ({answer.strip()})"


def attempt(session: smtplib.SMTP, context: ssl.SSLContext | None, sender: str, recipient: str,
            data: bytes | None = None, mail_options: tuple[str, ...] = (),
            rcpt_options: tuple[str, ...] = ()) -> Attempt:
    """Run EHLO, STARTTLS (when ``context``), EHLO, MAIL, RCPT and DATA (when ``data``) until
    the server stops a step (a reply of 400 or more, or a cut connection); an envelope
    accepted without data is reset, never sent.

    A failure to verify the *server's* certificate is not the server stopping anything and
    propagates, as do time-outs and a STARTTLS the server does not offer
    (smtplib.SMTPNotSupportedError).
    """
    stage = "ehlo"
    try:
        code, reply = session.ehlo()
        if code >= 400:
            return Attempt(stage, code, _text(reply))
        if context is not None:
            stage = "starttls"
            session.starttls(context=context)
            _note_tls(session)
            stage = "ehlo"
            code, reply = session.ehlo()
            if code >= 400:
                return Attempt(stage, code, _text(reply))
        for stage, step in (("mail", lambda: session.mail(sender, list(mail_options))),
                            ("rcpt", lambda: session.rcpt(recipient, list(rcpt_options)))):
            code, reply = step()
            if code >= 400:
                return Attempt(stage, code, _text(reply))
        if data is None:
            session.rset()
            return Attempt("accepted", code, _text(reply))
        stage = "data"
        code, reply = session.data(data)
        return Attempt("accepted" if code < 400 else stage, code, _text(reply))
    except ssl.SSLCertVerificationError:
        raise
    except smtplib.SMTPResponseException as exc:
        return Attempt(stage, exc.smtp_code, _text(exc.smtp_error))
    except _CUT as exc:
        return Attempt(stage, None, f"connection cut: {type(exc).__name__}: {exc}")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
