"""Accepting fake servers: a mail platform and API that let every login in, on loopback.

Against them the refusal checks fail (every password is accepted) and end-to-end fails
(nothing is ever delivered), so a run's reports are full of failure context. They are also
*leaky* on purpose, like a badly configured platform: the SMTP server echoes the user, the
password and the AUTH PLAIN base64 in its 235 reply, the IMAP server echoes the LOGIN
arguments, the API echoes the password it was sent and answers ``/health`` with its token in a
``postgresql://user:password@`` URL (before any login registered the token). Whatever of that reaches a report,
a transcript or the terminal must be masked (tests/plugin/test_no_secret_leak.py).

- SMTP (aiosmtpd): STARTTLS, AUTH PLAIN/LOGIN after TLS only, any credentials, takes every
  message and keeps none;
- IMAP: LOGINDISABLED before STARTTLS, then LOGIN (any credentials), an empty INBOX,
  SEARCH, IDLE, LOGOUT; the same on an implicit-TLS port;
- HTTPS API: ``/health`` (unhealthy), ``/version``, ``/api/v1/auth/login`` (a token for
  anything), ``/api/v1/mailboxes`` (with or without a token).

TLS uses the hostile bench's test CA (:func:`tests.support.hostile.bench_ca`): certificates for
``localhost`` and ``127.0.0.1``, made with ``cryptography``; a profile trusts it via ``ca_file``.
"""
from __future__ import annotations

import base64
import http.server
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.hostile import bench_ca

HOST = "127.0.0.1"


@dataclass(frozen=True)
class FakePlatform:
    """Where the fakes listen, the CA a client must trust, and the token the API hands out."""

    smtp_port: int
    imap_port: int
    imaps_port: int
    api_url: str
    ca_file: Path
    token: str
    closed_port: int            # nothing listens there (PostgreSQL, Redis: could not run)


def _server_context() -> ssl.SSLContext:
    pki = bench_ca()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.leaf_cert, pki.leaf_key)
    return context


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# ---- SMTP ---------------------------------------------------------------------------------------
class _Sink:
    """Takes every recipient and every message, and keeps nothing."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        return "250 2.0.0 taken"


def _authenticator(refuse: bool) -> Callable[..., AuthResult]:
    """Any credentials accepted (or, with ``refuse``, every one refused); the reply echoes
    them, raw and as AUTH PLAIN base64."""

    def judge(server: Any, session: Any, envelope: Any, mechanism: str,
              auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=not refuse)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        echo = f"{user}, password {password} ({plain})"
        if refuse:
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 refused {echo}")
        return AuthResult(success=True, message=f"235 2.7.0 welcome {echo}")

    return judge


# ---- IMAP ---------------------------------------------------------------------------------------
CAPS_PLAIN = "IMAP4rev1 STARTTLS LOGINDISABLED"
CAPS_TLS = "IMAP4rev1 AUTH=PLAIN"
CAPS_LOGGED_IN = "IMAP4rev1 IDLE UIDPLUS MOVE"


class _ImapHandler(socketserver.StreamRequestHandler):
    """One IMAP connection, answering just enough for the suites' checks to run."""

    timeout = 30
    implicit_tls = False
    refuse = False

    def setup(self) -> None:
        if self.implicit_tls:
            self.request = _server_context().wrap_socket(self.request, server_side=True)
        self.connection = self.request
        super().setup()
        self.tls, self.logged_in = self.implicit_tls, False

    def send(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())
        self.wfile.flush()

    def capabilities(self) -> str:
        return CAPS_LOGGED_IN if self.logged_in else CAPS_TLS if self.tls else CAPS_PLAIN

    def handle(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] fake IMAP ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "UID":
                command, _, args = args.partition(" ")
                command = command.upper()
            if not self.command(tag, command, args):
                return

    def command(self, tag: str, command: str, args: str) -> bool:
        """Answer one command; False ends the connection."""
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {self.capabilities()}", f"{tag} OK CAPABILITY completed")
        elif command == "STARTTLS" and not self.tls:
            self.send(f"{tag} OK begin TLS")
            self.request = _server_context().wrap_socket(self.request, server_side=True)
            self.connection = self.request
            self.rfile = self.request.makefile("rb")
            self.wfile = self.request.makefile("wb")
            self.tls = True
        elif command == "LOGIN" and self.refuse:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] refused {args}")
        elif command == "LOGIN":
            self.logged_in = True
            self.send(f"{tag} OK [CAPABILITY {CAPS_LOGGED_IN}] logged in with {args}")
        elif command == "AUTHENTICATE":
            self.send("+ ")
            answer = self.rfile.readline().decode("utf-8", "replace").strip()
            self.logged_in = True
            self.send(f"{tag} OK [CAPABILITY {CAPS_LOGGED_IN}] logged in with {answer}")
        elif command in ("SELECT", "EXAMINE"):
            self.send("* FLAGS (\\Seen \\Deleted)", "* 0 EXISTS", "* 0 RECENT",
                      "* OK [UIDVALIDITY 1] UIDs valid", "* OK [UIDNEXT 1] next UID",
                      f"{tag} OK [READ-WRITE] {command} completed")
        elif command == "SEARCH":
            self.send("* SEARCH", f"{tag} OK SEARCH completed")
        elif command == "IDLE":
            self.send("+ idling")
            while (done := self.rfile.readline()) and done.strip().upper() != b"DONE":
                pass
            self.send(f"{tag} OK IDLE terminated")
        elif command == "LOGOUT":
            self.send("* BYE fake IMAP logging out", f"{tag} OK LOGOUT completed")
            return False
        elif command in ("NOOP", "CHECK", "CLOSE", "EXPUNGE", "STORE", "ENABLE", "ID"):
            self.send(f"{tag} OK {command} completed")
        else:
            self.send(f"{tag} BAD {command} not understood")
        return True




class _Threading(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-handshake (certificate checks do) are not news."""


# ---- HTTPS API ----------------------------------------------------------------------------------
def _api_handler(token: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                dsn = f"postgresql://mssante:{token}@db.internal/mssante"
                self.reply(503, {"status": "degraded",
                                 "checks": {"db": {"status": "down", "dsn": dsn}}})
            elif self.path == "/version":
                self.reply(200, {"version": "1.0.0", "schema": 1, "schema_expected": 1})
            elif self.path == "/api/v1/mailboxes":
                self.reply(200, {"data": [], "session": token})
            else:
                self.reply(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                sent = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                sent = {}
            if self.path == "/api/v1/auth/login":
                self.reply(200, {"data": {"token": token}, "echo": sent})
            else:
                self.reply(404, {"error": f"no {self.path}", "echo": sent})

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def accepting_platform(token: str, refuse_logins: bool = False) -> Iterator[FakePlatform]:
    """Start the fakes (SMTP, IMAP, IMAPS, HTTPS API) on loopback; stop them on exit.

    ``refuse_logins``: SMTP AUTH and IMAP LOGIN are refused instead (still echoing what they
    were sent), so a client fails inside its library, credentials in its frames' locals.
    """
    smtp = Controller(_Sink(), hostname=HOST, port=_free_port(), tls_context=_server_context(),
                      auth_require_tls=True, authenticator=_authenticator(refuse_logins),
                      data_size_limit=None)
    handlers = {tls: type("Handler", (_ImapHandler,), {"implicit_tls": tls,
                                                       "refuse": refuse_logins})
                for tls in (False, True)}
    imap = _Threading((HOST, 0), handlers[False])
    imaps = _Threading((HOST, 0), handlers[True])
    api = http.server.ThreadingHTTPServer((HOST, 0), _api_handler(token))
    api.daemon_threads = True
    api.socket = _server_context().wrap_socket(api.socket, server_side=True)
    servers: list[socketserver.BaseServer] = [imap, imaps, api]
    smtp.start()
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1},
                                daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield FakePlatform(smtp_port=smtp.port, imap_port=imap.server_address[1],
                           imaps_port=imaps.server_address[1],
                           api_url=f"https://{HOST}:{api.server_address[1]}",
                           ca_file=bench_ca().ca, token=token, closed_port=_free_port())
    finally:
        smtp.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
