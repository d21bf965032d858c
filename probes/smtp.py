"""SMTP sessions over smtplib, with STARTTLS, client certificates and a transcript.

smtplib does the protocol; this subclass records what crosses the wire (masking the client's
lines during AUTH) and bounds it by wall-clock deadlines (:mod:`probes.deadline`), never by a
per-read time-out that a server sending one byte a second, or an endless ``220-`` banner,
never trips:

- the connection and the banner together get ``timeout`` (the profile's ``connect_timeout_s``);
- every later command/reply exchange (a whole multi-line reply, STARTTLS with its handshake,
  the message data) gets ``read_timeout`` (default: ``timeout``; the caller's budget, longer
  for servers that answer a failed AUTH slowly on purpose).

The bounds live here, in ``send``/``getreply``/``starttls``, so no caller can forget them:
direct smtplib calls (``login``, ``sendmail``, ``mail``) are bounded too. Past a bound the
session raises :class:`~probes.deadline.DeadlineExceeded`, a *could not run*.

A connection refused, a name that does not resolve, a host unreachable, a connection cut
before the banner, or a banner that is not SMTP, raise :class:`~probes.errors.CouldNotRun`
naming ``host:port`` and the step. So does a STARTTLS handshake that fails for a reason other
than the certificate in :func:`starttls`; ``ssl.SSLCertVerificationError`` propagates (a
refused certificate is a failure of the platform). Inside :func:`attempt`, a cut or a TLS
alert after the banner is the server stopping the transaction (a refusal stage), not this.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import cast

from probes import vantage
from probes.deadline import Deadline, deadline
from probes.errors import CouldNotRun, reason
from probes.tlsctx import watched_handshake
from probes.transcript import Transcript


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that writes every command and reply into a Transcript, each exchange
    under one wall-clock deadline."""

    def __init__(self, host: str, port: int, timeout: float, transcript: Transcript,
                 local_hostname: str = "mssante-check.invalid",
                 read_timeout: float | None = None) -> None:
        self.transcript = transcript
        self.endpoint = f"{host}:{port}"
        self.read_timeout = timeout if read_timeout is None else read_timeout
        self._auth_in_progress = False
        self._data_next = False
        self._bound: Deadline | None = None
        self._command = "banner"
        self.timed_out = False          # a deadline passed: the session is no longer usable
        transcript.note(f"connect {host}:{port} (deadline {timeout:g} s for connection and "
                        f"banner, {self.read_timeout:g} s per exchange)")
        with self.bounded("connect", timeout) as bound, self._closed_on_failure():
            try:
                super().__init__(host, port, local_hostname=local_hostname,
                                 timeout=bound.remaining(), source_address=vantage.source())
            except smtplib.SMTPConnectError as exc:
                if exc.smtp_code != -1:
                    raise               # a real SMTP reply refusing the session: an answer
                raise CouldNotRun(self.endpoint, "banner",
                                  f"not an SMTP banner: {_printable(exc.smtp_error)}") from exc
            except (OSError, EOFError) as exc:
                if isinstance(exc, ssl.SSLCertVerificationError) or not _unreachable(exc):
                    raise
                raise CouldNotRun(self.endpoint, "connect", reason(exc)) from exc

    @contextmanager
    def _closed_on_failure(self) -> Iterator[None]:
        """A session that never got its banner leaves no socket open behind it."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    @contextmanager
    def bounded(self, step: str, seconds: float | None = None) -> Iterator[Deadline]:
        """Run one exchange under a deadline (``read_timeout`` unless ``seconds``); inside an
        enclosing exchange (STARTTLS's command inside STARTTLS) the enclosing deadline rules."""
        if self._bound is not None:
            yield self._bound
            return
        with deadline(seconds or self.read_timeout, self.endpoint, step) as bound:
            self._bound = bound
            try:
                if self.sock is not None:
                    bound.watch(self.sock)
                    self.sock.settimeout(bound.remaining())
                yield bound
            except CouldNotRun:
                self.timed_out = bound.fired or bound.expired
                raise
            finally:
                self._bound = None

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's private connection hook (absent from typeshed): the one place every
        # connection's socket passes through, so the deadline can watch it from creation.
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]  # see above
        if self._bound is not None:
            self._bound.watch(sock)
        return sock

    def starttls(self, *, context: ssl.SSLContext | None = None  # type: ignore[override]  # no keyfile/certfile
                 ) -> tuple[int, bytes]:
        with self.bounded("STARTTLS") as bound:
            if context is None:
                context = ssl.create_default_context()
            # watched_handshake offers the one method smtplib calls on a context (wrap_socket)
            watched = cast(ssl.SSLContext, watched_handshake(context, bound.watch))
            return super().starttls(context=watched)

    def send(self, s: str | bytes) -> None:  # type: ignore[override]  # what smtplib sends
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if text.upper().startswith("AUTH"):
            verb = " ".join(text.split()[:2])
            self.transcript.client(f"{verb} {'[REDACTED]' if len(text.split()) > 2 else ''}")
            self._auth_in_progress = True
            self._command = "AUTH"
        elif self._auth_in_progress:
            self.transcript.client("", secret=True)
        elif self._data_next:
            self.transcript.client(f"<message data, {len(text)} bytes>")
            self._data_next = False
            self._command = "message data"
        else:
            self.transcript.client(text)
            self._command = (text.split() or ["command"])[0].upper()
        with self.bounded(self._command):
            super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        with self.bounded(f"{self._command} reply"):
            code, message = super().getreply()
        self.transcript.server(f"{code} {message.decode('utf-8', 'replace')}")
        if code != 334:
            self._auth_in_progress = False
        self._data_next = code == 354
        return code, message


def _unreachable(exc: BaseException) -> bool:
    """A transport failure (refused, DNS, reset, EOF, a non-certificate TLS error), not an
    SMTP answer: smtplib's reply exceptions are OSErrors too, but they carry a reply."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, smtplib.SMTPException):
        return isinstance(exc, smtplib.SMTPServerDisconnected)
    return isinstance(exc, (OSError, EOFError))


def connect(host: str, port: int, timeout: float, name: str,
            read_timeout: float | None = None) -> RecordingSMTP:
    """Open a plain SMTP session (banner read) recording into a new transcript ``name``.

    ``timeout`` bounds the connection and the banner together; ``read_timeout``, when given,
    bounds every later exchange instead (servers answer a failed AUTH slowly on purpose).
    """
    return RecordingSMTP(host, port, timeout, Transcript(name), read_timeout=read_timeout)


def ehlo_features(session: smtplib.SMTP) -> dict[str, str]:
    code, _ = session.ehlo()
    if code != 250:
        raise smtplib.SMTPResponseException(code, b"EHLO refused")
    return dict(session.esmtp_features)


def starttls(session: smtplib.SMTP, context: ssl.SSLContext) -> dict[str, str]:
    """STARTTLS, then EHLO again (RFC 3207); returns the post-TLS features.

    A handshake that fails for another reason than the server's certificate, or a connection
    cut during it, is :class:`~probes.errors.CouldNotRun`; a refused certificate propagates.
    """
    try:
        session.starttls(context=context)
    except (OSError, EOFError) as exc:
        if not _unreachable(exc):
            raise
        raise CouldNotRun(str(getattr(session, "endpoint", getattr(session, "_host", "?"))),
                          "STARTTLS", reason(exc)) from exc
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
    """QUIT (bounded like any exchange) and close; a session past its deadline is closed at
    once, and closing never raises (it must not mask the check's own outcome)."""
    if getattr(session, "timed_out", False):
        session.close()
        return
    try:
        session.quit()
    except (smtplib.SMTPException, OSError, CouldNotRun):
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
        stage = "mail"
        code, reply = session.mail(sender, list(mail_options))
        if code >= 400:
            return Attempt(stage, code, _text(reply))
        stage = "rcpt"
        code, reply = session.rcpt(recipient, list(rcpt_options))
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


def _printable(reply: bytes | str) -> str:
    """The start of what a non-SMTP server sent, escaped (it may be binary noise)."""
    return repr(reply[:60])
