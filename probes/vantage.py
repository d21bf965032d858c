"""Where the suite runs from: the local (source) address of its connections to each endpoint.

Servers judge clients by address: Dovecot drops LOGINDISABLED for a client on the server's own
IP, Postfix relays for ``mynetworks``. A run from the platform host, or over loopback, can
therefore see a correct server "fail" a plaintext check, or a relay check say nothing about the
internet. Every report says, per endpoint, which source address the suite used, and warns when
it is a loopback address or one of the target's own addresses.

The address is the one the kernel picks for a connection to the endpoint: a UDP ``connect()``
sends nothing and returns at once, and ``getsockname()`` then names the route's source. With
``[environment] source_address`` set, every probe binds to it (:func:`bind_from`, read by
probes/http.py, probes/smtp.py, probes/imap.py through :func:`source`), and so does this
measurement (PostgreSQL and Redis excepted: their client libraries cannot bind, so their
line shows the kernel's choice). Name resolution runs in daemon threads joined under one
bound: a resolver that hangs leaves the address "unknown", never the run hanging.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LOCAL_WARNING = "refusal and plaintext checks may be relaxed for local clients"
# Sections whose endpoint is a URL, and those with host and port.
URL_SECTIONS = ("api", "frontend", "prometheus", "alertmanager", "grafana")
HOST_SECTIONS = ("smtp.submission", "smtp.mx", "imap", "imaps", "postgres", "redis")
# libpq and redis-py offer no source address: their connections keep the kernel's choice, and
# the report measures them so (it must say where they really come from).
UNBOUND_SECTIONS = ("postgres", "redis")
DEFAULT_BOUND_S = 3.0

_bind: str | None = None


def bind_from(address: str | None) -> None:
    """Make every probe connect from ``address`` (None: let the kernel choose). Set once per
    process from the profile (pytest's configure, the health check's main)."""
    global _bind
    _bind = address


def source() -> tuple[str, int] | None:
    """``(address, 0)`` for ``socket.create_connection(source_address=...)``, or None."""
    return (_bind, 0) if _bind else None


def source_host() -> str | None:
    """The address alone (httpx's ``local_address``), or None."""
    return _bind


@dataclass(frozen=True)
class Vantage:
    """The suite's source address towards one endpoint."""

    endpoint: str                 # the profile section: "smtp.mx"
    target: str                   # host:port
    source: str | None            # None: could not be determined (see ``note``)
    local: bool                   # loopback, or one of the target's own addresses
    note: str = ""


def endpoints(profile_data: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(section, host, port) of every protocol endpoint the profile declares."""
    found: list[tuple[str, str, int]] = []
    for name in (*URL_SECTIONS, *HOST_SECTIONS):
        section: Any = profile_data
        for part in name.split("."):
            section = section.get(part) if isinstance(section, Mapping) else None
        if not isinstance(section, Mapping):
            continue
        if "url" in section:
            parts = urlsplit(section["url"])
            if parts.hostname:
                found.append((name, parts.hostname,
                              parts.port or (443 if parts.scheme == "https" else 80)))
        elif "host" in section and "port" in section:
            found.append((name, section["host"], section["port"]))
    return found


def _measure(name: str, host: str, port: int, bind: str | None) -> Vantage:
    target = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        return Vantage(name, target, None, False, f"{host} does not resolve: {exc}")
    addresses = {info[4][0] for info in infos}
    family, _, _, _, sockaddr = infos[0]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            if bind:
                probe.bind((bind, 0))
            probe.connect(sockaddr)
            local = probe.getsockname()[0]
    except OSError as exc:
        return Vantage(name, target, None, False, f"no route from {bind or 'here'}: {exc}")
    address = ipaddress.ip_address(local.split("%", 1)[0])
    if address.is_loopback:
        return Vantage(name, target, local, True, "loopback")
    if local in addresses:
        return Vantage(name, target, local, True, "the target's own address")
    return Vantage(name, target, local, False)


def measure_all(profile_data: Mapping[str, Any],
                bound_s: float = DEFAULT_BOUND_S) -> list[Vantage]:
    """One :class:`Vantage` per endpoint the profile declares."""
    return measure(endpoints(profile_data), bound_s)


def measure(targets: list[tuple[str, str, int]],
            bound_s: float = DEFAULT_BOUND_S) -> list[Vantage]:
    """One :class:`Vantage` per (name, host, port), measured side by side within ``bound_s``."""
    results: dict[int, Vantage] = {}

    def run(index: int, name: str, host: str, port: int) -> None:
        results[index] = _measure(name, host, port,
                                  None if name in UNBOUND_SECTIONS else _bind)

    threads = [threading.Thread(target=run, args=(i, *t), daemon=True,
                                name=f"vantage-{t[0]}") for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    end = time.monotonic() + bound_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    return [results.get(i) or Vantage(name, f"{host}:{port}", None, False,
                                      f"name resolution did not answer within {bound_s:g} s")
            for i, (name, host, port) in enumerate(targets)]


def note_for(name: str, host: str, port: int) -> str:
    """What a check whose verdict depends on the client's address appends to its message:
    empty from a remote vantage, else where the suite connected from and why it matters."""
    seen = measure([(name, host, port)])[0]
    if not seen.local:
        return ""
    return (f" [vantage: the suite connects to {seen.target} from {seen.source} "
            f"({seen.note}): servers may relax this check for local clients (Dovecot's "
            "LOGINDISABLED for its own address, Postfix's mynetworks); run it from outside]")


def summary(vantages: list[Vantage]) -> list[str]:
    """Report lines: endpoints sharing a source address and verdict grouped in one line."""
    groups: dict[tuple[str | None, bool, str], list[Vantage]] = {}
    for vantage in vantages:
        key = (vantage.source, vantage.local, vantage.note if vantage.source else vantage.target)
        groups.setdefault(key, []).append(vantage)
    lines = []
    for (address, local, note), members in groups.items():
        names = ", ".join(f"{v.endpoint} ({v.target})" for v in members)
        if address is None:
            lines.append(f"{names} from unknown address ({members[0].note})")
        elif local:
            lines.append(f"{names} from {address} — {note}: {LOCAL_WARNING}")
        else:
            lines.append(f"{names} from {address}")
    return lines
