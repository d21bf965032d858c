"""The TLS endpoints a profile declares, and parametrisation over them.

Any test asking for the ``tls_endpoint`` fixture runs once per endpoint, with readable ids
(``test_x[imap-starttls]``), the way testinfra parametrises over hosts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins import environments
from plugins.profile import Profile

# profile section -> (endpoint name, how TLS starts)
SECTIONS = (
    ("api", "https-api", "https"),
    ("frontend", "https-front", "https"),
    ("smtp.mx", "smtp-mx", "smtp"),
    ("smtp.submission", "smtp-submission", "smtp"),
    ("imap", "imap-starttls", "imap"),
    ("imaps", "imaps", "implicit"),
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    section: str
    host: str
    port: int
    mode: str                   # https | smtp | imap | implicit
    ca_file: Path | None
    client_cert: Path | None = None
    client_key: Path | None = None

    @property
    def starttls(self) -> str | None:
        return self.mode if self.mode in ("smtp", "imap") else None


def tls_endpoints(profile: Profile) -> list[Endpoint]:
    endpoints = []
    for section_name, name, mode in SECTIONS:
        if not profile.has(section_name):
            continue
        section = profile.section(section_name)
        if mode == "https":
            from urllib.parse import urlsplit

            url = urlsplit(section["url"])
            if url.scheme != "https":
                continue
            host, port = url.hostname or "", url.port or 443
        else:
            if section.get("tls", "starttls") == "none":
                continue
            host, port = section["host"], section["port"]
        cert = key = None
        if section_name == "smtp.mx":
            cert, key = section.path("peer_cert"), section.path("peer_key")
        endpoints.append(Endpoint(name, section_name, host, port, mode,
                                  section.path("ca_file") or profile.path_of("trust", "anchors"),
                                  cert, key))
    return endpoints


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tls_endpoint" not in metafunc.fixturenames:
        return
    profile = environments.get_profile(metafunc.config)
    endpoints = tls_endpoints(profile) if profile else []
    if not endpoints:
        metafunc.parametrize("tls_endpoint", [pytest.param(None, marks=pytest.mark.skip(
            reason=f"not configured in {profile.name if profile else '?'}: no TLS endpoint"))])
        return
    metafunc.parametrize("tls_endpoint", endpoints, ids=[e.name for e in endpoints])
