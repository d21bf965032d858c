"""IMAP sessions over imapclient with bounded time-outs and a wire transcript.

imapclient speaks the protocol; every line the connection exchanges is recorded as evidence
(LOGIN/AUTHENTICATE arguments masked at the source, message literals summarised by size).
"""
from __future__ import annotations

import re
import socket
import ssl
from typing import Any, Callable

from imapclient import IMAPClient, SocketTimeout

from probes.transcript import Transcript


class ImapSession:
    """One IMAP connection: plain then STARTTLS, or implicit TLS."""

    def __init__(self, host: str, port: int, timeout: float, name: str,
                 implicit_tls: bool = False, context: ssl.SSLContext | None = None,
                 read_timeout: float | None = None) -> None:
        """``timeout`` bounds the connection (and every read unless ``read_timeout`` is given:
        servers answer a failed LOGIN slowly on purpose)."""
        self.transcript = Transcript(name)
        read = timeout if read_timeout is None else read_timeout
        self.transcript.note(f"connect {host}:{port} ({'TLS' if implicit_tls else 'plain'}, "
                             f"timeout {timeout}s, reads {read}s)")
        self.client = IMAPClient(host, port=port, ssl=implicit_tls, ssl_context=context,
                                 timeout=SocketTimeout(connect=timeout, read=read))
        # imapclient writes a command and its CRLF in two sends: with Nagle on, each command
        # waits for the server's delayed ACK (~40 ms), a client artefact, not server latency.
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transcript.server(_text(self.client.welcome))
        _record_wire(self.client, self.transcript)

    def capabilities(self) -> set[str]:
        """Capabilities as announced now (imapclient may answer from the last announcement)."""
        caps = {c.decode() if isinstance(c, bytes) else c for c in self.client.capabilities()}
        self.transcript.note("capabilities: " + " ".join(sorted(caps)))
        return caps

    def starttls(self, context: ssl.SSLContext) -> None:
        self.client.starttls(context)
        self.transcript.note(f"TLS established: {self.client._imap.sock.version()}")  # noqa: SLF001

    def login(self, user: str, password: str) -> None:
        self.client.login(user, password)

    def find(self, criteria: list[Any], folder: str = "INBOX") -> list[int]:
        """UIDs matching an IMAP SEARCH; the folder is selected again so new mail shows."""
        self.client.select_folder(folder)
        return self.client.search(criteria)

    def fetch_message(self, uid: int) -> bytes:
        """The whole message as stored (``BODY.PEEK[]``: reading it does not mark it seen)."""
        return self.client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]

    def delete(self, uids: list[int]) -> None:
        """Delete these messages only (UID EXPUNGE where UIDPLUS allows it)."""
        self.client.delete_messages(uids)
        self.client.expunge(uids if self.client.has_capability("UIDPLUS") else None)

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - closing must never mask the test's own outcome
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass


def _text(answer: bytes | str | None) -> str:
    if isinstance(answer, bytes):
        return answer.decode("utf-8", "replace")
    return "" if answer is None else str(answer)


_SECRET_COMMAND = re.compile(r"^(\S+\s+(?:LOGIN\s+\S+|AUTHENTICATE\s+\S+))", re.IGNORECASE)
_MAX_LINE = 300           # longer client data (an APPEND literal) is summarised by size


def _record_wire(client: IMAPClient, transcript: Transcript) -> None:
    """Record every line of this connection by wrapping its imaplib ``send``/``_get_line``.

    Per instance (not imapclient's module-wide logger), so two sessions open in one test keep
    separate transcripts; both imaplib's commands and imapclient's own go through ``send``.
    Secrets never reach the transcript: LOGIN/AUTHENTICATE lines keep only the command and the
    user name or mechanism, and client lines during an AUTHENTICATE exchange are masked whole.
    """
    imap = client._imap  # noqa: SLF001 - imapclient exposes no wire hook; it patches imaplib too
    send: Callable[[bytes], None] = imap.send
    get_line: Callable[[], bytes] = imap._get_line  # noqa: SLF001
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
        send(data)

    def recording_get_line() -> bytes:
        line = get_line()
        text = _text(line)
        if authenticating and text.startswith(authenticating[0] + " "):
            authenticating.clear()
        transcript.server(text)
        return line

    imap.send = recording_send
    imap._get_line = recording_get_line  # noqa: SLF001
