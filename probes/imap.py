"""IMAP sessions over imapclient with bounded time-outs and a step transcript.

imapclient speaks the protocol; we record each step (capabilities, STARTTLS, LOGIN with the
password masked) as evidence.
"""
from __future__ import annotations

import ssl

from imapclient import IMAPClient

from probes.transcript import Transcript


class ImapSession:
    """One IMAP connection: plain then STARTTLS, or implicit TLS."""

    def __init__(self, host: str, port: int, timeout: float, name: str,
                 implicit_tls: bool = False, context: ssl.SSLContext | None = None) -> None:
        self.transcript = Transcript(name)
        self.transcript.note(f"connect {host}:{port} ({'TLS' if implicit_tls else 'plain'}, "
                             f"timeout {timeout}s)")
        self.client = IMAPClient(host, port=port, ssl=implicit_tls, ssl_context=context,
                                 timeout=timeout)
        self.transcript.server(_text(self.client.welcome))

    def capabilities(self) -> set[str]:
        caps = {c.decode() if isinstance(c, bytes) else c for c in self.client.capabilities()}
        self.transcript.client("CAPABILITY")
        self.transcript.server("CAPABILITY " + " ".join(sorted(caps)))
        return caps

    def starttls(self, context: ssl.SSLContext) -> None:
        self.transcript.client("STARTTLS")
        self.client.starttls(context)
        self.transcript.note(f"TLS established: {self.client._imap.sock.version()}")  # noqa: SLF001

    def login(self, user: str, password: str) -> None:
        self.transcript.client(f"LOGIN {user} [REDACTED]")
        self.transcript.server(_text(self.client.login(user, password)))

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
