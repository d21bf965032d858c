"""IMAP sessions over imapclient, each exchange under a wall-clock deadline, with a transcript.

imapclient speaks the protocol; every line the connection exchanges is recorded as evidence
(LOGIN/AUTHENTICATE arguments masked at the source, message literals summarised by size).

Bounds (:mod:`probes.deadline`), never per-read time-outs a trickling server defeats: the
connection, the welcome and imaplib's first CAPABILITY together get ``timeout`` (the profile's
``connect_timeout_s``); every later step (a method below, or, for direct ``session.client``
calls, each line read or written) gets ``read_timeout`` (default ``timeout``: the caller's
budget, longer where servers answer a failed LOGIN slowly on purpose). Past a bound the
session raises :class:`~probes.deadline.DeadlineExceeded`.

A connection refused, a name that does not resolve, a connection cut or a welcome that is not
IMAP raise :class:`~probes.errors.CouldNotRun` naming ``host:port`` and the step, as does a
TLS handshake failing for another reason than the certificate (implicit TLS or STARTTLS);
``ssl.SSLCertVerificationError`` propagates: a refused certificate is a failure.
"""
from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS, create_default_context

from probes import vantage
from probes.deadline import Deadline, deadline
from probes.errors import CouldNotRun, reason
from probes.tlsctx import watched_handshake
from probes.transcript import Transcript

Watch = Callable[[socket.socket], None]


class ImapSession:
    """One IMAP connection: plain then STARTTLS, or implicit TLS."""

    def __init__(self, host: str, port: int, timeout: float, name: str,
                 implicit_tls: bool = False, context: ssl.SSLContext | None = None,
                 read_timeout: float | None = None) -> None:
        """``timeout`` bounds the connection and welcome; ``read_timeout`` (default
        ``timeout``) every later step: servers answer a failed LOGIN slowly on purpose."""
        self.endpoint = f"{host}:{port}"
        self.read_timeout = timeout if read_timeout is None else read_timeout
        self.timed_out = False
        self._bound: Deadline | None = None
        self._sockets: list[socket.socket] = []   # every socket of this session, to close
        self.command = "welcome"        # the last command sent: names the step that stalls
        self.transcript = Transcript(name)
        self.transcript.note(f"connect {host}:{port} ({'TLS' if implicit_tls else 'plain'}, "
                             f"deadline {timeout:g} s for connection and welcome, "
                             f"{self.read_timeout:g} s per step)")
        with self.bounded("connect", timeout) as bound:
            try:
                self.client = _WatchedClient(
                    host, port, implicit_tls, context, self._watch,
                    SocketTimeout(connect=bound.remaining(), read=bound.remaining()))
            except (OSError, EOFError, imaplib.IMAP4.error) as exc:
                if isinstance(exc, ssl.SSLCertVerificationError):
                    raise
                step = ("welcome" if isinstance(exc, imaplib.IMAP4.error) else
                        "TLS handshake" if isinstance(exc, ssl.SSLError) else "connect")
                raise CouldNotRun(self.endpoint, step, reason(exc)) from exc
            finally:
                if not hasattr(self, "client"):     # no session: leave no socket open
                    for sock in self._sockets:
                        sock.close()
            # imapclient writes a command and its CRLF in two sends: with Nagle on, each
            # command waits for the server's delayed ACK (~40 ms), a client artefact.
            self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transcript.server(_text(self.client.welcome))
        _record_wire(self, self.client, self.transcript)

    @contextmanager
    def bounded(self, step: str, seconds: float | None = None) -> Iterator[Deadline]:
        """Run one step under a deadline (``read_timeout`` unless ``seconds``); inside an
        enclosing step, the enclosing deadline rules."""
        if self._bound is not None:
            yield self._bound
            return
        with deadline(seconds or self.read_timeout, self.endpoint, step) as bound:
            self._bound = bound
            try:
                sock = self._socket()
                if sock is not None:
                    bound.watch(sock)
                    sock.settimeout(bound.remaining())
                yield bound
            except CouldNotRun:
                self.timed_out = bound.fired or bound.expired
                raise
            finally:
                self._bound = None

    def _socket(self) -> socket.socket | None:
        client = getattr(self, "client", None)
        return None if client is None else client._imap.sock  # noqa: SLF001 - no accessor

    def _watch(self, sock: socket.socket) -> None:
        self._sockets.append(sock)
        if self._bound is not None:
            self._bound.watch(sock)

    def capabilities(self) -> set[str]:
        """Capabilities as announced now (imapclient may answer from the last announcement)."""
        with self.bounded("CAPABILITY"):
            caps = {c.decode() if isinstance(c, bytes) else c for c in self.client.capabilities()}
        self.transcript.note("capabilities: " + " ".join(sorted(caps)))
        return caps

    def starttls(self, context: ssl.SSLContext) -> None:
        """STARTTLS; a handshake failing for another reason than the certificate, or the
        connection cut, is CouldNotRun (a refused certificate propagates)."""
        with self.bounded("STARTTLS") as bound:
            try:
                self.client.starttls(watched_handshake(context, bound.watch))
            except (OSError, EOFError, imaplib.IMAP4.abort) as exc:
                if isinstance(exc, ssl.SSLCertVerificationError) or (
                        isinstance(exc, imaplib.IMAP4.abort)
                        and not str(exc).startswith("socket error")):
                    raise
                raise CouldNotRun(self.endpoint, "STARTTLS", reason(exc)) from exc
        tls = self.client._imap.sock  # noqa: SLF001 - imapclient has no accessor
        self.transcript.note(f"TLS established: {tls.version()}")

    def login(self, user: str, password: str) -> None:
        with self.bounded("LOGIN"):
            self.client.login(user, password)

    def select(self, folder: str = "INBOX", readonly: bool = False) -> dict[bytes, Any]:
        with self.bounded("SELECT"):
            return self.client.select_folder(folder, readonly=readonly)

    def find(self, criteria: list[Any], folder: str = "INBOX") -> list[int]:
        """UIDs matching an IMAP SEARCH; the folder is selected again so new mail shows."""
        with self.bounded("SELECT/SEARCH"):
            self.client.select_folder(folder)
            return self.client.search(criteria)

    def fetch_message(self, uid: int) -> bytes:
        """The whole message as stored (``BODY.PEEK[]``: reading it does not mark it seen)."""
        with self.bounded("FETCH"):
            return self.client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]

    def delete(self, uids: list[int]) -> None:
        """Delete these messages only (UID EXPUNGE where UIDPLUS allows it)."""
        with self.bounded("STORE/EXPUNGE"):
            self.client.delete_messages(uids)
            self.client.expunge(uids if self.client.has_capability("UIDPLUS") else None)

    def idle(self, wait: float = 0.2) -> list[Any]:
        """Enter IDLE, collect what the server pushes for ``wait`` s, leave IDLE (DONE and its
        tagged answer), all under one step's deadline."""
        with self.bounded("IDLE"):
            self.client.idle()
            try:
                return self.client.idle_check(timeout=wait)
            finally:
                self.client.idle_done()

    def close(self) -> None:
        """LOGOUT (bounded) and close; never raises, and a session past a deadline is only
        shut down (closing must never mask the test's own outcome)."""
        if not self.timed_out:
            try:
                with self.bounded("LOGOUT"):
                    self.client.logout()
                return
            except Exception:  # noqa: BLE001 - see above
                pass
        try:
            self.client.shutdown()
        except Exception:  # noqa: BLE001 - closing must not mask the session's outcome
            pass


class _WatchedClient(IMAPClient):
    """IMAPClient whose sockets are handed to ``watch`` as soon as they exist (before the
    welcome, before the handshake), so a deadline's watchdog can cut them in any thread."""

    def __init__(self, host: str, port: int, implicit_tls: bool,
                 context: ssl.SSLContext | None, watch: Watch, timeout: SocketTimeout) -> None:
        self._watch_socket = watch
        super().__init__(host, port=port, ssl=implicit_tls, ssl_context=context,
                         timeout=timeout)

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - imapclient's name
        connect = self._timeout.connect
        if self.ssl:
            return _WatchedTLS(self.host, self.port, self.ssl_context, connect,
                               self._watch_socket)
        return _WatchedPlain(self.host, self.port, connect, self._watch_socket)


class _WatchedPlain(IMAP4WithTimeout):
    def __init__(self, host: str, port: int, timeout: float | None, watch: Watch) -> None:
        self._watch_socket = watch
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        # imapclient's, from the profile's source address (probes/vantage.py) when it sets one.
        sock = socket.create_connection((self.host, self.port),
                                        self._timeout if timeout is None else timeout,
                                        source_address=vantage.source())
        self._watch_socket(sock)
        return sock


class _WatchedTLS(IMAP4_TLS):
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None,
                 timeout: float | None, watch: Watch) -> None:
        self._watch_socket = watch
        super().__init__(host, port, context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        raw = socket.create_connection((self.host, self.port),
                                       timeout=self._timeout if timeout is None else timeout,
                                       source_address=vantage.source())
        self._watch_socket(raw)
        context = self.ssl_context or create_default_context()
        return watched_handshake(context, self._watch_socket).wrap_socket(
            raw, server_hostname=self.host)


def _text(answer: bytes | str | None) -> str:
    if isinstance(answer, bytes):
        return answer.decode("utf-8", "replace")
    return "" if answer is None else str(answer)


_SECRET_COMMAND = re.compile(r"^(\S+\s+(?:LOGIN\s+\S+|AUTHENTICATE\s+\S+))", re.IGNORECASE)
_MAX_LINE = 300           # longer client data (an APPEND literal) is summarised by size


def _record_wire(session: ImapSession, client: IMAPClient, transcript: Transcript) -> None:
    """Record every line of this connection by wrapping its imaplib ``send``/``_get_line``.

    Per instance (not imapclient's module-wide logger), so two sessions open in one test keep
    separate transcripts; both imaplib's commands and imapclient's own go through ``send``.
    Secrets never reach the transcript: LOGIN/AUTHENTICATE lines keep only the command and the
    user name or mechanism, and client lines during an AUTHENTICATE exchange are masked whole.
    Each line sent or read (and each literal) is bounded by the session's step deadline, so
    direct ``session.client`` calls are bounded too.
    """
    imap = client._imap  # noqa: SLF001 - imapclient exposes no wire hook; it patches imaplib too
    send: Callable[[bytes], None] = imap.send
    get_line: Callable[[], bytes] = imap._get_line  # noqa: SLF001 - imaplib's only wire hook
    read: Callable[[int], bytes] = imap.read
    authenticating: list[str] = []          # the AUTHENTICATE command's tag while in progress

    def recording_send(data: bytes) -> None:
        text = _text(data).rstrip("\r\n")
        secret = _SECRET_COMMAND.match(text)
        if authenticating:
            transcript.client("", secret=True)
        elif secret:
            transcript.client(f"{secret.group(1)} [REDACTED]")
            if " AUTHENTICATE " in text.upper():
                authenticating.append(text.split()[0])
        elif not text:
            pass                            # imapclient ends some commands with a bare CRLF
        elif len(text) > _MAX_LINE or "\n" in text:
            transcript.client(f"<{len(data)} bytes of literal data>")
        else:
            transcript.client(text)
        if (secret or text) and not authenticating and len(text) <= _MAX_LINE:
            words = text.split()
            session.command = (words[1] if len(words) > 1 else words[0]).upper()
        with session.bounded(session.command):
            send(data)

    def recording_get_line() -> bytes:
        with session.bounded(f"{session.command} reply"):
            line = get_line()
        text = _text(line)
        if authenticating and text.startswith(authenticating[0] + " "):
            authenticating.clear()
        transcript.server(text)
        return line

    def bounded_read(size: int) -> bytes:
        with session.bounded(f"{session.command} literal"):
            return read(size)

    imap.send = recording_send
    imap._get_line = recording_get_line  # noqa: SLF001 - imaplib's only wire hook
    imap.read = bounded_read
