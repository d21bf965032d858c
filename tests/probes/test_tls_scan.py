"""The sslyze scanner against real local TLS servers started by the tests themselves.

``openssl s_server`` plays the HTTPS/implicit-TLS endpoints (good, legacy, mutual TLS); a
small Python server plays SMTP/IMAP STARTTLS and an HTTPS server sending HSTS. Nothing here
needs the lab.
"""
from __future__ import annotations

import datetime
import json
import os
import random
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from policy.tls import evaluate, load_policy
from probes.testssl import run_testssl
from probes.tls_scan import Hsts, TlsEndpoint, scan, scan_cached

REPO = Path(__file__).resolve().parents[2]
ANSSI = load_policy(REPO / "fixtures" / "policies" / "anssi-tls.toml")

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


# --- throwaway PKI and servers ------------------------------------------------------------------

def _write_pem(path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _certificate(cn: str, key: rsa.RSAPrivateKey, issuer: tuple[str, rsa.RSAPrivateKey] | None,
                 ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_cn, issuer_key = issuer or (cn, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.crt/key (CN=localhost), client.crt/key signed by the CA, and
    client-chain.pem (client then CA, as an operator's chain file is)."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate("Test CA", ca_key, None, ca=True)
    _write_pem(directory / "ca", ca, ca_key)
    for name in ("server", "client"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cn = "localhost" if name == "server" else "peer.test"
        _write_pem(directory / name, _certificate(cn, key, ("Test CA", ca_key)), key)
    (directory / "client-chain.pem").write_text((directory / "client.crt").read_text()
                                                + (directory / "ca.crt").read_text())
    return directory


def free_port() -> int:
    """A free TCP port in 11000-11999 on 127.0.0.1 (the brief keeps tests off the lab's ports)."""
    start = random.randrange(11000, 12000)
    for offset in range(1000):
        port = 11000 + (start - 11000 + offset) % 1000
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 11000-11999")


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class SServer:
    """``openssl s_server`` on a free port, stopped by ``stop()`` (idempotent)."""

    def __init__(self, pki: Path, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-quiet", "-www",
             "-cert", str(pki / "server.crt"), "-key", str(pki / "server.key"), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_port(self.port)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def s_server(pki: Path) -> Iterator[type]:
    started: list[SServer] = []

    def start(*args: str) -> SServer:
        started.append(SServer(pki, *args))
        return started[-1]

    yield start  # type: ignore[misc]  # the fixture yields its factory
    for server in started:
        server.stop()


class _Handler(socketserver.BaseRequestHandler):
    """Speaks just enough SMTP, IMAP or HTTP to get sslyze through to its TLS handshakes."""

    server: _TlsService

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            if self.server.mode == "https":
                self._https(self.server.context.wrap_socket(sock, server_side=True))
            elif self._starttls(sock):
                with self.server.context.wrap_socket(sock, server_side=True) as tls:
                    tls.recv(1024)
        except (OSError, ssl.SSLError):
            pass                              # rejected handshakes are the scan's business

    def _starttls(self, sock: socket.socket) -> bool:
        reader = sock.makefile("rb")
        smtp = self.server.mode == "smtp"
        sock.sendall(b"220 test ESMTP\r\n" if smtp else b"* OK test IMAP ready\r\n")
        while line := reader.readline(1024):
            command = line.strip().upper()
            if smtp and command.startswith((b"EHLO", b"HELO")):
                sock.sendall(b"250-test\r\n250 STARTTLS\r\n")
            elif command.endswith(b"STARTTLS"):
                sock.sendall(b"220 go ahead\r\n" if smtp else b". OK begin TLS\r\n")
                return True
            else:
                sock.sendall(b"502 no\r\n" if smtp else b". BAD no\r\n")
        return False

    def _https(self, tls: ssl.SSLSocket) -> None:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = tls.recv(4096)
            if not chunk:
                return
            request += chunk
        tls.sendall(b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=63072000; "
                    b"includeSubDomains\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        tls.close()


class _TlsService(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, pki: Path) -> None:
        self.mode = mode
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki / "server.crt", pki / "server.key")
        super().__init__(("127.0.0.1", free_port()), _Handler)


@pytest.fixture
def py_server(pki: Path) -> Iterator[type]:
    """``py_server("smtp"|"imap"|"https")`` → port of a running Python TLS service."""
    servers: list[_TlsService] = []

    def start(mode: str) -> int:
        server = _TlsService(mode, pki)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start  # type: ignore[misc]  # the fixture yields its factory
    for server in servers:
        server.shutdown()
        server.server_close()


def endpoint(port: int, **options: object) -> TlsEndpoint:
    return TlsEndpoint(options.pop("name", "local"), "127.0.0.1", port,  # type: ignore[arg-type]  # the options are TlsEndpoint's keywords
                       server_name="localhost", **options)  # type: ignore[arg-type]  # the options are TlsEndpoint's keywords


# --- tests ---------------------------------------------------------------------------------------

def test_good_server_passes_anssi_except_missing_hsts(s_server, pki: Path) -> None:
    server = s_server("-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
    result = scan(endpoint(server.port, http=True))
    assert result.error is None, result.error
    assert result.command_errors == {}
    assert result.accepted_protocols == ("TLSv1.2", "TLSv1.3")
    assert {s.name for s in result.protocols["TLSv1.2"]} == {
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
    assert all(s.key_exchange == "ECDH" and s.group for s in result.protocols["TLSv1.2"])
    assert "x25519" in (result.groups or ())
    assert result.certificate_chain == ((pki / "server.crt").read_text(),)
    assert result.certificate_chains[0][0].key_bits == 2048
    assert json.loads(result.to_json())["server_scan_results"][0]["server_location"]["port"] \
        == server.port
    verdicts = {r.rule_id: r.verdict for r in evaluate(ANSSI, result)}
    assert {k: v for k, v in verdicts.items() if v != "pass"} == {"hsts": "fail"}


def test_legacy_server_tls10_aes128_sha_is_seen_and_failed(s_server) -> None:
    server = s_server("-cipher", "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:@SECLEVEL=0",
                      "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2")
    result = scan(endpoint(server.port))
    assert result.error is None, result.error
    assert result.accepted_protocols == ("TLSv1.0", "TLSv1.1", "TLSv1.2")
    assert [s.name for s in result.protocols["TLSv1.0"]] == ["TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert result.protocols["TLSv1.0"][0].key_exchange is None      # static RSA: no ephemeral key
    results = {r.rule_id: r for r in evaluate(ANSSI, result)}
    assert results["protocols"].verdict == "fail"
    assert results["protocols"].offending == ["TLSv1.0", "TLSv1.1"]
    assert results["forward_secrecy"].offending == ["TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert results["cipher_suites_tls12"].verdict == "fail"


def test_testssl_sees_the_same_versions_and_suites(s_server) -> None:
    """A second, independent scanner (testssl.sh) agrees with ours on a legacy server."""
    server = s_server("-cipher", "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:@SECLEVEL=0",
                      "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2")
    ours = scan(endpoint(server.port))
    theirs = run_testssl("127.0.0.1", server.port, timeout_s=240)
    assert theirs.error is None, theirs.error
    assert theirs.protocols == ours.accepted_protocols == ("TLSv1.0", "TLSv1.1", "TLSv1.2")
    assert {p: sorted(names) for p, names in theirs.suites.items()} == {
        p: sorted(s.name for s in ours.protocols[p]) for p in ours.accepted_protocols}


def test_unreachable_port_is_a_quick_failed_scan() -> None:
    started = time.monotonic()
    result = scan(endpoint(free_port()), timeout_s=2)
    assert time.monotonic() - started < 5
    assert result.error and "rejected the connection" in result.error
    verdicts = {r.rule_id: r.verdict for r in evaluate(ANSSI, result)}
    assert set(verdicts.values()) == {"error", "not_applicable"} and verdicts["hsts"] != "error"


def test_silent_server_hits_the_deadline_not_a_hang() -> None:
    with socket.socket() as silent:                 # accepts TCP (backlog), never speaks TLS
        silent.bind(("127.0.0.1", free_port()))
        silent.listen(16)
        started = time.monotonic()
        result = scan(endpoint(silent.getsockname()[1]), timeout_s=1, deadline_s=2)
        elapsed = time.monotonic() - started
    assert elapsed < 4
    assert result.error is not None


def test_unusable_client_key_is_a_failed_scan(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    result = scan(endpoint(free_port(), client_cert=missing, client_key=missing))
    assert result.error and result.raw is None


@pytest.mark.parametrize("mode", ["smtp", "imap"])
def test_starttls(py_server, pki: Path, mode: str) -> None:
    result = scan(endpoint(py_server(mode), starttls=mode))
    assert result.error is None, result.error
    assert "TLSv1.2" in result.accepted_protocols
    assert result.certificate_chain == ((pki / "server.crt").read_text(),)


def test_hsts_header_is_read(py_server) -> None:
    result = scan(endpoint(py_server("https"), http=True))
    assert result.hsts == Hsts(max_age=63072000, include_subdomains=True, preload=False)
    hsts = next(r for r in evaluate(ANSSI, result) if r.rule_id == "hsts")
    assert hsts.verdict == "pass"


def test_client_certificate_reaches_a_server_that_requires_one(s_server, pki: Path) -> None:
    server = s_server("-Verify", "1", "-CAfile", str(pki / "ca.crt"))
    without = scan(endpoint(server.port))
    with_cert = scan(endpoint(server.port, client_cert=pki / "client-chain.pem",
                              client_key=pki / "client.key"))
    assert with_cert.error is None, with_cert.error
    assert with_cert.command_errors == {}          # SSL 2.0 included, despite the chain file
    assert with_cert.protocols["SSLv2"] == ()
    assert "TLSv1.2" in with_cert.accepted_protocols
    # without one, sslyze sees the requirement and says which checks it could not run
    assert without.client_auth == "REQUIRED"
    assert "CLIENT_CERTIFICATE_NEEDED" in without.command_errors["robot"]
    verdicts = {r.rule_id: r.verdict for r in evaluate(ANSSI, without)}
    assert verdicts["robot"] == "error" and verdicts["protocols"] == "pass"


def test_cache_returns_the_same_scan_without_rescanning(s_server, tmp_path: Path) -> None:
    server = s_server()
    first = scan_cached(endpoint(server.port), tmp_path)
    assert first.error is None
    server.stop()                                   # a rescan would now fail
    again = scan_cached(endpoint(server.port), tmp_path)
    assert again == first
    record = json.loads((tmp_path / "local.json").read_text())
    assert record["sslyze"]["sslyze_version"] and record["summary"]["protocols"]["TLSv1.3"]
    later_run = datetime.datetime.now(datetime.UTC)
    assert scan_cached(endpoint(server.port), tmp_path, fresh_after=later_run).error
    moved = scan_cached(endpoint(free_port()), tmp_path)          # same name, other endpoint
    assert moved.error is not None


def test_concurrent_workers_share_one_scan(s_server, tmp_path: Path) -> None:
    """Two processes (as two xdist workers) asking at once: one scans, the other reads."""
    server = s_server()
    code = ("import json, sys; from pathlib import Path\n"
            "from probes.tls_scan import TlsEndpoint, scan_cached\n"
            "scan = scan_cached(TlsEndpoint.from_dict(json.loads(sys.argv[1])), Path(sys.argv[2]))\n"
            "print(scan.started_at.isoformat(), scan.error)")
    args = [sys.executable, "-W", "ignore", "-c", code,
            json.dumps(endpoint(server.port).to_dict()), str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0].strip() for w in workers]
    assert outputs[0] == outputs[1]
    assert outputs[0].endswith("None")
