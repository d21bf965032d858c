"""plugins.reporting.could_not_run: one classification for every exception family a check can
end on. Could-not-run is *error*; a refused certificate, whatever wraps it, and every answer
the platform gave (a reply code, a login refused, an HTTP status) are *failed*."""
from __future__ import annotations

import errno
import imaplib
import smtplib
import socket
import ssl

import httpx
import psycopg
import pytest
import redis
from imapclient.exceptions import IMAPClientAbortError, LoginError

from plugins.reporting import could_not_run
from probes.deadline import DeadlineExceeded
from probes.errors import Blocked, CouldNotRun, SecretNotSet


def raised_from(outer: BaseException, inner: BaseException, explicit: bool = True
                ) -> BaseException:
    """``outer`` raised from (or, ``explicit=False``, while handling) ``inner``."""
    try:
        try:
            raise inner
        except BaseException as exc:
            if explicit:
                raise outer from exc
            raise outer  # noqa: B904 - the implicit context is what this case tests
    except BaseException as caught:  # noqa: BLE001 - what the test returns
        return caught


def cert_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    error.verify_message = "self-signed certificate"
    return error


COULD_NOT_RUN = {
    # sockets
    "refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    "reset": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    "socket time-out": TimeoutError("timed out"),
    "DNS": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "no route": OSError(errno.EHOSTUNREACH, "No route to host"),
    "network unreachable": OSError(errno.ENETUNREACH, "Network is unreachable"),
    "EOF": EOFError("EOF"),
    # TLS stopped for a non-certificate reason
    "TLS protocol": ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    "TLS EOF": ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    # smtplib: the transport behind the disconnection
    "SMTP timed out": smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out"),
    "SMTP reset": raised_from(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
                              ConnectionResetError(errno.ECONNRESET, "reset"), explicit=False),
    # imaplib / imapclient
    "IMAP EOF": imaplib.IMAP4.abort("socket error: EOF"),
    "imapclient abort on socket error": IMAPClientAbortError("socket error: [Errno 104] reset"),
    # httpx
    "httpx connect": httpx.ConnectError("All connection attempts failed"),
    "httpx read time-out": httpx.ReadTimeout("timed out"),
    "httpx pool time-out": httpx.PoolTimeout("no connection"),
    "httpx garbage": httpx.RemoteProtocolError("illegal status line"),
    "httpx cut": httpx.ReadError("connection reset"),
    # redis
    "redis connection": redis.ConnectionError("Error 111 connecting"),
    "redis time-out": redis.TimeoutError("Timeout reading from socket"),
    "redis garbage": redis.exceptions.InvalidResponse("Protocol Error: b'x'"),
    # psycopg
    "psycopg connection": psycopg.OperationalError("connection failed: Connection refused"),
    "psycopg statement time-out": psycopg.errors.QueryCanceled(
        "canceling statement due to statement timeout"),
    # the probes' own
    "CouldNotRun": CouldNotRun("127.0.0.1:25", "banner", "cut before the banner"),
    "DeadlineExceeded": DeadlineExceeded("127.0.0.1:25", "banner", 5),
    "Blocked": Blocked("127.0.0.1:143", "login", "NO"),
    "secret not set": SecretNotSet("[redis] password_env", "REDIS_PASSWORD", "[redis]"),
    "DeadlineExceeded raised while closing after a certificate error": raised_from(
        DeadlineExceeded("127.0.0.1:25", "QUIT", 5), cert_error(), explicit=False),
    # pytest-timeout's own kill
    "pytest-timeout": pytest.fail.Exception("Timeout >300.0s"),
}

FAILED = {
    "certificate refused": cert_error(),
    "certificate refused, wrapped by httpx": raised_from(httpx.ConnectError("[SSL] verify"),
                                                        cert_error()),
    "certificate refused, seen by httpx while handling": raised_from(
        httpx.ConnectError("[SSL] verify"), cert_error(), explicit=False),
    "certificate refused, wrapped twice": raised_from(
        redis.ConnectionError("SSL"), raised_from(OSError("tls"), cert_error())),
    "assertion": AssertionError("/health says degraded"),
    "SMTP reply": smtplib.SMTPResponseException(554, b"5.7.1 relay denied"),
    "SMTP banner refusing the session": smtplib.SMTPConnectError(554, b"no service"),
    "STARTTLS not offered": smtplib.SMTPNotSupportedError("STARTTLS extension not supported"),
    "SMTP server hung up after answering": smtplib.SMTPServerDisconnected(
        "Connection unexpectedly closed"),
    "SMTP AUTH refused": smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
    "IMAP login refused": LoginError("[AUTHENTICATIONFAILED] Authentication failed."),
    "IMAP protocol error": imaplib.IMAP4.error("SELECT command error: BAD"),
    "IMAP STARTTLS not supported": imaplib.IMAP4.abort("TLS not supported by server"),
    "HTTP status": httpx.HTTPStatusError("503", request=httpx.Request("GET", "https://x/"),
                                         response=httpx.Response(503)),
    "redis reply": redis.ResponseError("NOAUTH Authentication required."),
    "psycopg query": psycopg.errors.UndefinedTable("relation does not exist"),
    "pytest.fail": pytest.fail.Exception("version 1.0.0, expected 1.1.0"),
    "a plain OSError": OSError(errno.EACCES, "Permission denied"),
    "KeyError": KeyError("status"),
}


@pytest.mark.parametrize("name", COULD_NOT_RUN)
def test_could_not_run_is_an_error(name):
    assert could_not_run(COULD_NOT_RUN[name]), f"{name} must be reported as error"


@pytest.mark.parametrize("name", FAILED)
def test_answers_and_refused_certificates_are_failures(name):
    assert not could_not_run(FAILED[name]), f"{name} must be reported as failed"
