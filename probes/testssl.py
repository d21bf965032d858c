"""testssl.sh as a second opinion: what protocol versions and suites it finds offered.

A later test compares this with our sslyze-based verdicts (two independent scanners agreeing
is stronger evidence than one), and the benchmark times it. testssl.sh is a long shell
script, so every run is bounded by a timeout and its JSON file, not its screen output, is read.
Debian's testssl.sh 3.0.8 has no client-certificate option: endpoints that require one
(the MX port) cannot be cross-checked with it.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# testssl.sh ids for protocol findings and for the per-protocol cipher lists (-E), in our names.
_PROTOCOL_IDS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1",
                 "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
_CIPHER_ID = re.compile(r"^cipher-(ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x[0-9a-f]+$")
_CIPHER_PROTOCOLS = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                     "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}
# Protocols and the suites offered per protocol: what the cross-check needs.
CROSS_CHECK_ARGS = ("--protocols", "--cipher-per-proto")


@dataclass(frozen=True)
class TestsslFindings:
    """Protocols (our names, oldest first) and IANA suite names testssl.sh found offered."""

    __test__ = False  # not a pytest test class despite its name

    protocols: tuple[str, ...] = ()
    suites: dict[str, tuple[str, ...]] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None
    raw: list[dict[str, Any]] = field(default_factory=list)


def find_testssl() -> str:
    """The installed testssl.sh (Debian calls it ``testssl``)."""
    for name in ("testssl", "testssl.sh"):
        if found := shutil.which(name):
            return found
    raise FileNotFoundError("testssl.sh is not installed (Debian package testssl.sh)")


def run_testssl(host: str, port: int, starttls: str | None = None,
                args: tuple[str, ...] = CROSS_CHECK_ARGS,
                timeout_s: float = 600.0) -> TestsslFindings:
    """Run testssl.sh on host:port with ``args`` and read its flat JSON findings."""
    with tempfile.TemporaryDirectory(prefix="testssl-") as workdir:
        jsonfile = Path(workdir) / "findings.json"
        command = [find_testssl(), "--quiet", "--warnings", "off", "--color", "0",
                   "--ip", "one", "--jsonfile", str(jsonfile), *args]
        if starttls:
            command += ["--starttls", starttls]
        command.append(f"{host}:{port}")
        started = time.monotonic()
        try:
            subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return TestsslFindings(duration_s=time.monotonic() - started,
                                   error=f"testssl.sh did not finish within {timeout_s:.0f}s")
        duration = time.monotonic() - started
        try:
            entries = json.loads(jsonfile.read_text())
        except (OSError, ValueError) as exc:
            return TestsslFindings(duration_s=duration, error=f"no testssl.sh JSON: {exc}")
    protocols, suites = parse_findings(entries)
    return TestsslFindings(protocols, suites, duration, _scan_problem(entries), entries)


def parse_findings(
        entries: list[dict[str, Any]]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(protocols offered, {protocol: IANA suites offered}) from testssl.sh flat JSON."""
    offered = {_PROTOCOL_IDS[e["id"]] for e in entries
               if e.get("id") in _PROTOCOL_IDS and e.get("finding", "").startswith("offered")}
    suites: dict[str, list[str]] = {}
    for entry in entries:
        match = _CIPHER_ID.match(entry.get("id", ""))
        if match and entry.get("finding", "").split():
            suites.setdefault(_CIPHER_PROTOCOLS[match.group(1)], []).append(
                entry["finding"].split()[-1])
    order = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    return (tuple(p for p in order if p in offered),
            {p: tuple(suites[p]) for p in order if p in suites})


def _scan_problem(entries: list[dict[str, Any]]) -> str | None:
    """testssl.sh reports an unreachable or non-TLS target as a FATAL finding."""
    fatal = [e.get("finding", "") for e in entries if e.get("severity") == "FATAL"]
    return "; ".join(fatal) or None
