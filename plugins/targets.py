"""Thin fixtures over the profile's targets, shared by every suite (testinfra-style).

Each returns a ready client bound to the profile's address, trust anchors and time-outs, or
skips the test as "not configured in <env>" when the profile lacks the target.
"""
from __future__ import annotations

from typing import Callable, Iterator

import httpx
import pytest

from plugins import redaction
from plugins.profile import Profile, Section
from probes.tlsctx import client_context


def http_client(section: Section, timeout: float) -> httpx.Client:
    """An httpx client for a profile section with ``url`` (and optional ``ca_file``)."""
    url = section["url"]
    verify: object = True
    if url.startswith("https://"):
        verify = client_context(section.path("ca_file")) if section.get("ca_file") else True
    return httpx.Client(base_url=url, verify=verify, timeout=timeout, follow_redirects=False)


@pytest.fixture(scope="session")
def timeouts(env_profile: Profile) -> dict[str, float]:
    return {"http": env_profile.threshold("http_timeout_s"),
            "connect": env_profile.threshold("connect_timeout_s")}


@pytest.fixture
def api(env_profile: Profile, timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    with http_client(env_profile.section("api"), timeouts["http"]) as client:
        yield client


@pytest.fixture
def frontend(env_profile: Profile, timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    with http_client(env_profile.section("frontend"), timeouts["http"]) as client:
        yield client


@pytest.fixture
def api_login(env_profile: Profile, api: httpx.Client) -> Callable[[str, str], httpx.Response]:
    """POST the seed's login call; any token in the answer is registered for redaction."""

    def login(email: str, password: str) -> httpx.Response:
        response = api.post("/api/v1/auth/login", json={"email": email, "password": password})
        try:
            token = response.json().get("data", {}).get("token")
        except (ValueError, AttributeError):
            token = None
        redaction.register(token)
        return response

    return login


@pytest.fixture
def admin_credentials(env_profile: Profile) -> tuple[str, str]:
    section = env_profile.section("api")
    return section["admin_email"], section.secret("admin_password")


@pytest.fixture
def mailboxes(env_profile: Profile) -> list[tuple[str, str]]:
    """Test mailboxes (address, password) declared by the profile; skipped when none."""
    accounts = env_profile.mailboxes()
    if not accounts:
        pytest.skip(f"not configured in {env_profile.name}: [[mailboxes]]")
    for _, password in accounts:
        redaction.register(password)
    return accounts
