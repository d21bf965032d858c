"""Clients for the monitoring stack, bound to the profile (skipped where not configured)."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from plugins.profile import Profile
from probes.http import http_client


def _client(env_profile: Profile, section: str,
            timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    with http_client(env_profile.section(section), timeouts["http"]) as client:
        yield client


@pytest.fixture
def prometheus(env_profile: Profile, timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    yield from _client(env_profile, "prometheus", timeouts)


@pytest.fixture
def alertmanager(env_profile: Profile, timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    yield from _client(env_profile, "alertmanager", timeouts)


@pytest.fixture
def grafana(env_profile: Profile, timeouts: dict[str, float]) -> Iterator[httpx.Client]:
    yield from _client(env_profile, "grafana", timeouts)
