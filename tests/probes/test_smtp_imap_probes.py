"""probes.smtp and probes.imap against hostile servers (real sockets on loopback): every
exchange ends within its deadline (+ 1 s) as could-not-run naming ``host:port`` and the step,
in the main thread (SIGALRM) and in worker threads (the socket watchdog); a self-signed
certificate is refused (``SSLCertVerificationError``, a failure); ``smtp.attempt`` still
reports the server cutting a transaction as a refusal stage."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from plugins.reporting import could_not_run
from probes import smtp
from probes.deadline import DeadlineExceeded
from probes.errors import CouldNotRun
from probes.imap import ImapSession
from probes.tlsctx import client_context
from tests.support.hostile import KINDS, bench_ca

DEADLINE_S = 1.0
UNREACHABLE_KINDS = [kind for kind in KINDS if kind != "tls-self-signed"]


def _context() -> ssl.SSLContext:
    return client_context(bench_ca().ca)


def _smtp_exchange(host: str, port: int) -> None:
    session = smtp.connect(host, port, DEADLINE_S, "bench-smtp")
    try:
        smtp.ehlo_features(session)
        smtp.starttls(session, _context())
    finally:
        smtp.close(session)


def _imap_exchange(host: str, port: int, implicit: bool = False) -> None:
    session = ImapSession(host, port, DEADLINE_S, "bench-imap", implicit_tls=implicit,
                          context=_context() if implicit else None)
    try:
        session.capabilities()
        if not implicit:
            session.starttls(_context())
    finally:
        session.close()


def _timed(call: Callable[[], None]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test judges it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _in_thread(call: Callable[[], None]) -> tuple[float, BaseException | None]:
    outcome: list[tuple[float, BaseException | None]] = []
    worker = threading.Thread(target=lambda: outcome.append(_timed(call)), daemon=True)
    worker.start()
    worker.join(DEADLINE_S + 10)
    assert outcome, "the exchange was still running in its thread"
    return outcome[0]


def _assert_could_not_run(address: str, elapsed: float, exc: BaseException | None) -> None:
    assert isinstance(exc, CouldNotRun), f"expected could-not-run, got {exc!r}"
    assert could_not_run(exc)
    assert address in str(exc), str(exc)
    assert elapsed < DEADLINE_S + 1, f"{elapsed:.2f} s for a {DEADLINE_S} s deadline"


@pytest.mark.parametrize("kind", UNREACHABLE_KINDS)
def test_smtp_against_hostile_server_is_could_not_run(hostile, kind):
    target = hostile(kind)
    _assert_could_not_run(target.address, *_timed(lambda: _smtp_exchange(target.host,
                                                                          target.port)))


@pytest.mark.parametrize("kind", UNREACHABLE_KINDS)
def test_imap_against_hostile_server_is_could_not_run(hostile, kind):
    target = hostile(kind)
    _assert_could_not_run(target.address, *_timed(lambda: _imap_exchange(target.host,
                                                                          target.port)))


@pytest.mark.parametrize("kind", UNREACHABLE_KINDS)
def test_implicit_tls_imap_against_hostile_server_is_could_not_run(hostile, kind):
    target = hostile(kind, tls=True)
    _assert_could_not_run(target.address, *_timed(
        lambda: _imap_exchange(target.host, target.port, implicit=True)))


@pytest.mark.parametrize("kind", ["tarpit", "smtp-slow-banner", "smtp-endless-banner"])
def test_bounded_in_a_worker_thread(hostile, kind):
    """The health check runs its checks in threads, where SIGALRM cannot reach: the watchdog
    shuts the watched sockets down instead."""
    target = hostile(kind)
    _assert_could_not_run(target.address, *_in_thread(
        lambda: _smtp_exchange(target.host, target.port)))
    tls = hostile(kind, tls=True)
    _assert_could_not_run(tls.address, *_in_thread(
        lambda: _imap_exchange(tls.host, tls.port, implicit=True)))


def test_self_signed_certificate_is_refused_not_could_not_run(hostile):
    target = hostile("tls-self-signed")
    for call in (lambda: _smtp_exchange(target.host, target.port),
                 lambda: _imap_exchange(target.host, target.port, implicit=True)):
        elapsed, exc = _timed(call)
        assert isinstance(exc, ssl.SSLCertVerificationError), repr(exc)
        assert not could_not_run(exc)
        assert elapsed < DEADLINE_S + 1


@contextmanager
def scripted_smtp(after_ehlo: str) -> Iterator[tuple[str, int]]:
    """An SMTP server that greets and answers EHLO, then on MAIL either says nothing
    (``"silent"``) or closes the connection (``"cut"``)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 scripted ESMTP\r\n")
                for line in lines:
                    if line.upper().startswith(b"EHLO"):
                        conn.sendall(b"250-scripted\r\n250 SIZE 1000\r\n")
                    elif line.upper().startswith(b"MAIL") and after_ehlo == "cut":
                        return
                    elif line.upper().startswith(b"MAIL"):
                        stop.wait(10)
                        return

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        yield server.getsockname()[:2]
    finally:
        stop.set()
        server.close()
        worker.join(2)


def test_attempt_against_a_silent_server_is_could_not_run_not_a_refusal():
    with scripted_smtp("silent") as (host, port):
        session = smtp.connect(host, port, DEADLINE_S, "silent")
        elapsed, exc = _timed(lambda: smtp.attempt(session, None, "a@x.fr", "b@y.fr"))
        smtp.close(session)
    assert isinstance(exc, DeadlineExceeded), repr(exc)
    assert "MAIL" in str(exc) and elapsed < DEADLINE_S + 1


def test_attempt_cut_by_the_server_is_still_a_refusal_stage():
    with scripted_smtp("cut") as (host, port):
        session = smtp.connect(host, port, DEADLINE_S, "cut")
        result = smtp.attempt(session, None, "a@x.fr", "b@y.fr")
        smtp.close(session)
    assert (result.stage, result.code, result.refused) == ("mail", None, True), result
