"""Vantage (probes/vantage.py): the source address per endpoint, its warning, and the probes
binding to the profile's ``source_address`` (real sockets on loopback, no lab)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from probes import smtp, vantage
from probes.errors import CouldNotRun
from probes.http import BoundedClient
from probes.imap import ImapSession


@pytest.fixture
def bound_from() -> Iterator[None]:
    yield
    vantage.bind_from(None)


def _own_address() -> str | None:
    """A non-loopback address of this host (the source towards a documentation address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_loopback_is_flagged_with_the_warning():
    seen = vantage.measure_all({"smtp": {"mx": {"host": "127.0.0.1", "port": 25}},
                                "api": {"url": "https://127.0.0.1:8443"}})
    assert [(v.endpoint, v.target, v.source, v.local, v.note) for v in seen] == [
        ("api", "127.0.0.1:8443", "127.0.0.1", True, "loopback"),
        ("smtp.mx", "127.0.0.1:25", "127.0.0.1", True, "loopback")]
    assert vantage.summary(seen) == [
        "api (127.0.0.1:8443), smtp.mx (127.0.0.1:25) from 127.0.0.1 — loopback: "
        "refusal and plaintext checks may be relaxed for local clients"]


def test_running_on_the_target_host_is_flagged():
    address = _own_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 route")
    seen = vantage.measure([("imap", address, 143)])[0]
    assert (seen.source, seen.local, seen.note) == (address, True, "the target's own address")
    assert "from outside" in vantage.note_for("imap", address, 143)


def test_remote_target_has_no_warning_and_unknown_names_say_why():
    address = _own_address()
    if address is not None:
        remote = vantage.measure([("smtp.mx", "192.0.2.1", 25)])[0]
        assert (remote.source, remote.local) == (address, False)
        assert vantage.note_for("smtp.mx", "192.0.2.1", 25) == ""
    lines = vantage.summary(vantage.measure([("api", "no-such-host.invalid", 443)]))
    assert lines[0].startswith("api (no-such-host.invalid:443) from unknown address "
                               "(no-such-host.invalid does not resolve")


def test_source_address_is_bound_except_where_the_client_cannot(bound_from):
    vantage.bind_from("127.0.0.2")
    seen = {v.endpoint: v.source for v in vantage.measure_all(
        {"imap": {"host": "127.0.0.1", "port": 143}, "redis": {"host": "127.0.0.1", "port": 6379}})}
    assert seen == {"imap": "127.0.0.2", "redis": "127.0.0.1"}


class _OneShot:
    """A TCP server on 127.0.0.1 that records each client's address and greets it."""

    def __init__(self, greeting: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self.greeting = greeting
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            with conn:
                conn.sendall(self.greeting)
                try:
                    conn.recv(1024)
                except OSError:
                    pass


@pytest.mark.parametrize("protocol", ["smtp", "imap", "http"])
def test_probes_connect_from_the_source_address(bound_from, protocol):
    greeting = {"smtp": b"220 fake ESMTP\r\n", "imap": b"* OK fake\r\n",
                "http": b""}[protocol]
    server = _OneShot(greeting)
    vantage.bind_from("127.0.0.2")
    if protocol == "smtp":
        smtp.close(smtp.connect("127.0.0.1", server.port, 5, "vantage"))
    elif protocol == "imap":
        try:                                        # the server hangs up after its greeting
            ImapSession("127.0.0.1", server.port, 5, "vantage").close()
        except CouldNotRun:
            pass
    else:
        with BoundedClient(deadline_s=2, base_url=f"http://127.0.0.1:{server.port}") as client:
            with pytest.raises(Exception):  # noqa: B017 - the server answers nothing: any error will do
                client.get("/")
    server.sock.close()
    assert server.peers == ["127.0.0.2"]
