"""Which Alertmanager Prometheus sends to, compared with the profile's (probes/monitoring.py)."""
from __future__ import annotations

import pytest

from probes.monitoring import alertmanager_in_use, endpoint_key

ACTIVE = ["http://127.0.0.1:10093/api/v2/alerts"]


@pytest.mark.parametrize(("url", "key"), [
    ("http://127.0.0.1:10093", ("127.0.0.1", 10093)),
    ("https://AM.example.fr/", ("am.example.fr", 443)),
    ("http://[::1]/api/v2/alerts", ("::1", 80)),
])
def test_endpoint_key_defaults_the_port_by_scheme(url, key):
    assert endpoint_key(url) == key


def test_the_profiles_alertmanager_is_found_by_host_and_port():
    assert alertmanager_in_use(ACTIVE, "http://127.0.0.1:10093") == ACTIVE[0]
    assert alertmanager_in_use(ACTIVE, "http://127.0.0.1:10093/") == ACTIVE[0]


@pytest.mark.parametrize("profile_url", ["http://127.0.0.1:9", "http://127.0.0.2:10093",
                                         "http://localhost:10093"])
def test_another_alertmanager_is_not_the_profiles(profile_url):
    assert alertmanager_in_use(ACTIVE, profile_url) is None
    assert alertmanager_in_use([], profile_url) is None
