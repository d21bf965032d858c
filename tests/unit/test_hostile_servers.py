"""The hostile bench servers misbehave as documented (tests/support/hostile.py), so the bench
tests that rely on them test what they claim."""
from __future__ import annotations

import socket
import ssl
import time

import pytest

from tests.support.hostile import bench_ca


def _read_for(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(0.2)
    data, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(4096)
        except (TimeoutError, ssl.SSLWantReadError):
            continue
        if not chunk:
            break
        data += chunk
    return data


def test_closed_port_refuses(hostile):
    target = hostile("closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((target.host, target.port), timeout=2)


def test_tarpit_accepts_and_never_sends(hostile):
    target = hostile("tarpit")
    with socket.create_connection((target.host, target.port), timeout=2) as sock:
        sock.sendall(b"EHLO x\r\n")
        assert _read_for(sock, 1.0) == b""


def test_garbage_sends_noise(hostile):
    target = hostile("garbage")
    with socket.create_connection((target.host, target.port), timeout=2) as sock:
        data = _read_for(sock, 0.5)
    assert data.count(b"\r\n") >= 2 and not data.startswith((b"220", b"* OK", b"HTTP/"))


def test_smtp_banner_one_byte_a_second(hostile):
    target = hostile("smtp-slow-banner")
    with socket.create_connection((target.host, target.port), timeout=2) as sock:
        data = _read_for(sock, 1.5)
    assert data.startswith(b"2") and 1 <= len(data) <= 3


def test_endless_banner_never_ends(hostile):
    target = hostile("smtp-endless-banner")
    with socket.create_connection((target.host, target.port), timeout=2) as sock:
        lines = _read_for(sock, 1.0).split(b"\r\n")
    assert len(lines) >= 4 and all(line.startswith(b"220-") for line in lines[:-1])


def test_http_header_trickle(hostile):
    target = hostile("http-header-trickle")
    with socket.create_connection((target.host, target.port), timeout=2) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _read_for(sock, 1.0)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n" not in data
    assert len(data) <= len(b"HTTP/1.1 200 OK\r\n") + 2


def test_http_body_trickle_over_tls(hostile):
    target = hostile("http-body-trickle", tls=True)
    context = ssl.create_default_context(cafile=str(bench_ca().ca))
    with socket.create_connection((target.host, target.port), timeout=2) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _read_for(sock, 1.0)
    assert b"Transfer-Encoding: chunked\r\n\r\n" in data and not data.endswith(b"0\r\n\r\n")


def test_self_signed_tls_is_refused_by_a_verifying_client(hostile):
    target = hostile("tls-self-signed")
    context = ssl.create_default_context(cafile=str(bench_ca().ca))
    with socket.create_connection((target.host, target.port), timeout=2) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="localhost")


def test_self_signed_tls_answers_like_a_healthy_api(hostile):
    target = hostile("tls-self-signed")
    context = ssl._create_unverified_context()  # noqa: SLF001 - what a careless client does
    with socket.create_connection((target.host, target.port), timeout=2) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_for(sock, 1.0).startswith(b"HTTP/1.1 200 OK")
