"""Thin fixtures over the profile's targets, shared by every suite (testinfra-style).

Each returns a ready client bound to the profile's address, trust anchors and time-outs, or
skips the test as "not configured in <env>" when the profile lacks the target.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from plugins.profile import Profile, Section
from policy.api_contract import ApiContract, replace
from probes import vantage
from probes.http import http_client
from probes.secret import Mailbox, Secret


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


@pytest.fixture(scope="session")
def vantage_note() -> Callable[[Section], str]:
    """``vantage_note(section)``: what a check that servers relax for local clients (IMAP
    LOGINDISABLED, relaying) appends to its message when the suite connects from loopback or
    the target's own address; empty otherwise (probes/vantage.py)."""
    return lambda section: vantage.note_for(section.name, section["host"], section["port"])


@pytest.fixture(scope="session")
def api_contract(env_profile: Profile) -> ApiContract:
    """The platform API's paths, fields and health shape as ``[api]`` declares them (the
    seed's by default); every check that reads the API judges it through this."""
    return ApiContract.from_section(env_profile.data.get("api", {}))


@pytest.fixture
def api_login(api_contract: ApiContract,
              api: httpx.Client) -> Callable[[str, str], httpx.Response]:
    """POST the contract's login call. A token in the answer becomes a :class:`Secret` (masked
    repr, registered for redaction): ``response.json()`` returns the parsed answer holding it
    (httpx would parse the body again, into a plain string, on every call)."""

    def login(email: str, password: str) -> httpx.Response:
        response = api.post(api_contract.login_path,
                            json=api_contract.login_body(email, password))
        try:
            parsed = response.json()
        except ValueError:
            return response
        token = api_contract.token(parsed)
        if token is not None:
            replace(parsed, api_contract.token_pointer, Secret(token))
            response.json = lambda **_: parsed  # type: ignore[method-assign]  # masked token
        return response

    return login


@pytest.fixture
def admin_credentials(env_profile: Profile) -> tuple[str, Secret]:
    section = env_profile.section("api")
    return section["admin_email"], section.secret("admin_password")


@pytest.fixture
def mailboxes(env_profile: Profile) -> list[Mailbox]:
    """Test mailboxes (address, password) declared by the profile; skipped when none. The
    password is a :class:`Secret`: no repr of an account shows it."""
    accounts = env_profile.mailboxes()
    if not accounts:
        pytest.skip(f"not configured in {env_profile.name}: [[mailboxes]]")
    return accounts
