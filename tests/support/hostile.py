"""Hostile servers for the "bounded, always" tests: each misbehaves in one way a real platform can.

Every server listens on 127.0.0.1, port 0 (the kernel picks a free port), in daemon threads the
test starts itself, and stops on leaving its ``with`` block (or the ``hostile`` fixture's
teardown in tests/conftest.py). None of them ever gives a complete, valid answer, so no check
pointed at one may pass: it must end as *error* (could not run) or *failed* within its deadline.

Kinds (:data:`KINDS`):

- ``closed``: a port that was bound, then closed (connection refused);
- ``tarpit``: accepts, reads, never sends a byte;
- ``garbage``: sends lines of random bytes and noise, forever;
- ``smtp-slow-banner``: a valid SMTP banner, one byte per second;
- ``smtp-endless-banner``: ``220-`` continuation lines, a few per second, never a last line
  (per-read time-outs never trip);
- ``http-header-trickle``: ``HTTP/1.1 200 OK`` then one header byte every 2 s;
- ``http-body-trickle``: complete chunked headers, then a one-byte chunk every 2 s, forever;
- ``tls-self-signed``: completes a TLS handshake with a self-signed certificate, then answers
  like a working server (HTTP ``200`` with a plausible JSON body, or an SMTP-style banner): a
  client that does not verify the certificate would be fooled, one that does must *fail*. A
  client that waits for a banner instead of starting TLS gets SMTP offering STARTTLS (and,
  inside the TLS, AUTH), then the same self-signed handshake.

With ``tls=True`` the stream kinds run inside TLS with a certificate for ``localhost`` and
``127.0.0.1`` issued by :func:`bench_ca` (a test CA a profile can trust through ``ca_file``),
so the misbehaviour is reached after a verified handshake, as on an ``https://`` API.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
# The bench leaf verifies (handshakes reach the misbehaviour behind them) but expires within
# any profile's cert_fail_days (7 in the lab's), so a check judging the certificate fails on
# it: no check can pass against a hostile server because its certificate happens to be fine.
LEAF_DAYS = 3
KINDS = ("closed", "tarpit", "garbage", "smtp-slow-banner", "smtp-endless-banner",
         "http-header-trickle", "http-body-trickle", "tls-self-signed")

Behaviour = Callable[[socket.socket, threading.Event], None]


@dataclass(frozen=True)
class Target:
    """Where a hostile server listens and what it does."""

    kind: str
    host: str
    port: int
    tls: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls or self.kind == 'tls-self-signed' else 'http'}://{self.address}"


# ---- behaviours (one connection each; they return when the client leaves or the server stops)

def _drain(conn: socket.socket, stop: threading.Event, wait: float) -> bool:
    """Read and discard what the client sent for up to ``wait`` s; False once it has gone."""
    conn.settimeout(wait)
    try:
        return conn.recv(4096) != b""
    except (TimeoutError, ssl.SSLWantReadError):
        return not stop.is_set()
    except OSError:
        return False


def _send(conn: socket.socket, data: bytes) -> bool:
    try:
        conn.sendall(data)
        return True
    except OSError:
        return False


def _trickle(conn: socket.socket, stop: threading.Event, data: bytes, every: float) -> bool:
    """Send ``data`` one byte every ``every`` s (reading what the client sends meanwhile)."""
    for byte in data:
        if stop.is_set() or not _send(conn, bytes([byte])):
            return False
        if not _drain(conn, stop, every):
            return False
    return True


def _read_request(conn: socket.socket, stop: threading.Event, limit: float = 5.0) -> bytes:
    """What the client sent first (an HTTP request head), waiting at most ``limit`` s."""
    conn.settimeout(0.2)
    data = b""
    for _ in range(int(limit / 0.2)):
        if stop.is_set() or b"\r\n\r\n" in data or len(data) > 65536:
            break
        try:
            chunk = conn.recv(4096)
        except (TimeoutError, ssl.SSLWantReadError):
            if data:
                break
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def tarpit(conn: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set() and _drain(conn, stop, 0.5):
        pass


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    rng = random.Random(14)
    while not stop.is_set():
        if rng.random() < 0.5:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        else:
            line = "".join(rng.choice("#@!?~^%&*xyzq 0123456789") for _ in range(60)).encode()
        if not _send(conn, line + b"\r\n"):
            return
        _drain(conn, stop, 0.1)


def smtp_slow_banner(conn: socket.socket, stop: threading.Event) -> None:
    if not _trickle(conn, stop, b"220 hostile.invalid ESMTP slow banner\r\n", 1.0):
        return
    while not stop.is_set() and _drain(conn, stop, 0.5):
        if not _trickle(conn, stop, b"250 ok\r\n", 1.0):
            return


def smtp_endless_banner(conn: socket.socket, stop: threading.Event) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        if not _send(conn, f"220-hostile.invalid endless banner line {number}\r\n".encode()):
            return
        _drain(conn, stop, 0.2)


def http_header_trickle(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn, stop)
    if not _send(conn, b"HTTP/1.1 200 OK\r\n"):
        return
    while not stop.is_set():
        if not _trickle(conn, stop, b"X-Trickle: " + b"a" * 60 + b"\r\n", 2.0):
            return


def http_body_trickle(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn, stop)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" b"10\r\n" b'{"status": "ok",' b"\r\n")
    if not _send(conn, head):
        return
    while not stop.is_set():
        if not _send(conn, b"1\r\n \r\n"):
            return
        _drain(conn, stop, 2.0)


def plausible(conn: socket.socket, stop: threading.Event) -> None:
    """After the (self-signed) handshake, answer like a healthy server: HTTP when the client
    speaks first, otherwise an SMTP-style banner and ``250`` to every line."""
    request = _read_request(conn, stop, limit=1.0)
    if request.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS"):
        body = b'{"status": "ok", "version": "1.0.0", "schema": 1, "schema_expected": 1}'
        _send(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
              + body)
        return
    if not _send(conn, b"220 hostile.invalid ESMTP ready\r\n"):
        return
    while not stop.is_set() and _drain(conn, stop, 0.5):
        if not _send(conn, b"250 ok\r\n"):
            return


def smtp_after_starttls(conn: socket.socket, stop: threading.Event) -> None:
    """Inside the self-signed TLS a client should have refused: an SMTP server taking AUTH."""
    conn.settimeout(5)
    for line in conn.makefile("rb"):
        if stop.is_set():
            return
        verb = line.split(b" ", 1)[0].strip().upper()
        reply = (b"250-hostile.invalid\r\n250 AUTH PLAIN LOGIN\r\n" if verb == b"EHLO" else
                 b"221 bye\r\n" if verb == b"QUIT" else b"250 ok\r\n")
        if not _send(conn, reply) or verb == b"QUIT":
            return


BEHAVIOURS: dict[str, Behaviour] = {
    "tarpit": tarpit, "garbage": garbage, "smtp-slow-banner": smtp_slow_banner,
    "smtp-endless-banner": smtp_endless_banner, "http-header-trickle": http_header_trickle,
    "http-body-trickle": http_body_trickle, "tls-self-signed": plausible,
}


# ---- certificates

@dataclass(frozen=True)
class BenchPKI:
    """PEM files: the bench CA (``ca``), a leaf it issued for localhost/127.0.0.1 (valid for
    :data:`LEAF_DAYS`), and a self-signed certificate for the same names that no CA file
    contains (valid 30 days: what is wrong with it is only who signed it)."""

    ca: Path
    leaf_cert: Path
    leaf_key: Path
    self_signed_cert: Path
    self_signed_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                 issuer_key: ec.EllipticCurvePrivateKey, ca: bool, days: int = 30
                 ) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([
                       x509.DNSName("localhost"),
                       x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None,
           key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


@lru_cache(maxsize=1)
def bench_ca() -> BenchPKI:
    """The bench's certificates, made once per process in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="mssante-hostile-pki-"))
    ca_key, leaf_key, self_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("mssante-check hostile bench CA", ca_key,
                      "mssante-check hostile bench CA", ca_key, ca=True)
    leaf = _certificate("localhost", leaf_key, "mssante-check hostile bench CA", ca_key, ca=False,
                        days=LEAF_DAYS)
    self_signed = _certificate("localhost", self_key, "localhost", self_key, ca=False)
    return BenchPKI(ca=_write(folder / "ca.pem", ca),
                    leaf_cert=_write(folder / "leaf.pem", leaf),
                    leaf_key=_write(folder / "leaf-key.pem", key=leaf_key),
                    self_signed_cert=_write(folder / "self-signed.pem", self_signed),
                    self_signed_key=_write(folder / "self-signed-key.pem", key=self_key))


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# ---- the server

class HostileServer:
    """A threaded loopback listener running one behaviour per connection."""

    def __init__(self, kind: str, tls: bool = False) -> None:
        if kind not in BEHAVIOURS:
            raise ValueError(f"unknown hostile kind {kind!r} (one of {', '.join(KINDS)})")
        self.kind, self.tls = kind, tls
        pki = bench_ca()
        if kind == "tls-self-signed":
            self._context: ssl.SSLContext | None = _server_context(pki.self_signed_cert,
                                                                   pki.self_signed_key)
        elif tls:
            self._context = _server_context(pki.leaf_cert, pki.leaf_key)
        else:
            self._context = None
        self._stop = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self.target = Target(kind, HOST, self._listener.getsockname()[1], tls)

    def __enter__(self) -> Target:
        thread = threading.Thread(target=self._accept_loop, name=f"hostile-{self.kind}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return self.target

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                      name=f"hostile-{self.kind}-{self.accepted}")
            with self._lock:
                self._connections.append(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            behaviour = BEHAVIOURS[self.kind]
            if self.kind == "tls-self-signed" and not self._client_hello(conn):
                if not self._smtp_until_starttls(conn):
                    return
                behaviour = smtp_after_starttls
            if self._context is not None:
                conn = self._wrap(conn)
            behaviour(conn, self._stop)
        except (OSError, ssl.SSLError, ValueError):
            pass            # the client went away, or its handshake failed: nothing to say
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _wrap(self, conn: socket.socket) -> ssl.SSLSocket:
        assert self._context is not None
        conn.settimeout(10)
        tls = self._context.wrap_socket(conn, server_side=True)
        with self._lock:
            self._connections.append(tls)
        return tls

    @staticmethod
    def _client_hello(conn: socket.socket) -> bool:
        """Whether the client starts with a TLS ClientHello (implicit TLS, https)."""
        conn.settimeout(0.5)
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return False
        return first == b"\x16"

    def _smtp_until_starttls(self, conn: socket.socket) -> bool:
        """A silent client waits for a banner: greet as SMTP offering STARTTLS (then the
        self-signed handshake). Anything else it says first is not answered."""
        if not _send(conn, b"220 hostile.invalid ESMTP ready\r\n"):
            return False
        conn.settimeout(5)
        reader = conn.makefile("rb")
        for line in reader:
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                _send(conn, b"250-hostile.invalid\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                return _send(conn, b"220 ready to start TLS\r\n")
            elif verb == b"QUIT":
                _send(conn, b"221 bye\r\n")
                return False
            else:
                _send(conn, b"250 ok\r\n")
        return False


@contextmanager
def closed_port() -> Iterator[Target]:
    """A loopback port that was bound and closed again: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    sock.close()
    yield Target("closed", HOST, port)


@contextmanager
def hostile_server(kind: str, tls: bool = False) -> Iterator[Target]:
    """``with hostile_server("tarpit") as target:`` any kind of :data:`KINDS`."""
    if kind == "closed":
        with closed_port() as target:
            yield target
        return
    with HostileServer(kind, tls) as target:
        yield target
