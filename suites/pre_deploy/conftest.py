"""Parametrisation of the pre-deployment checklist over what the profile declares.

Every item the profile lists (a required variable, a certificate file, a host's process, key
file, disk path or port) becomes its own test with a readable id, so a failure names the item:
``test_required_variable_set[DATABASE_PASSWORD]``, ``test_port_free_or_expected[platform-10025]``.
A list the profile leaves empty is one test skipped as "not configured in <env>".
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugins import environments, hosts
from plugins.profile import NotConfigured, Profile

REPO = Path(__file__).resolve().parent.parent.parent


def _certificate_files(profile: Profile) -> list[tuple[str, tuple[str, Path]]]:
    entries = profile.data.get("certificates", {}).get("files", [])
    return [(e["name"], (e["name"], (profile.path.parent / e["cert"]).resolve()))
            for e in entries if "cert" in e]


def _per_host(attribute: str, label: Callable[[Any], str]) -> Callable[[Profile], list]:
    def items(profile: Profile) -> list[tuple[str, tuple[hosts.HostSpec, Any]]]:
        return [(f"{spec.name}-{label(value)}", (spec, value))
                for spec in hosts.host_specs(profile) for value in getattr(spec, attribute)]
    return items


# fixture name -> (items from the profile, what the profile would have to declare)
PARAMETERS: dict[str, tuple[Callable[[Profile], list], str]] = {
    "required_var": (lambda p: [(v, v) for v in p.data["environment"].get("required_env", [])],
                     "[environment] required_env"),
    "cert_file": (_certificate_files, "[[certificates.files]]"),
    "host_process": (_per_host("processes", str), "[[hosts]] processes"),
    "host_service": (_per_host("services", str), "[[hosts]] services"),
    "key_file": (_per_host("key_files", lambda p: hosts.relative(p, REPO)), "[[hosts]] key_files"),
    "disk_path": (_per_host("disk_paths", lambda p: hosts.relative(p, REPO)),
                  "[[hosts]] disk_paths"),
    "platform_port": (_per_host("ports", lambda p: str(p.port)), "[[hosts]] ports"),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    profile = environments.get_profile(metafunc.config)
    for name, (items, declared) in PARAMETERS.items():
        if name not in metafunc.fixturenames:
            continue
        found = items(profile) if profile else []
        if not found:
            env = profile.name if profile else "?"
            metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
                reason=f"not configured in {env}: {declared}"))], ids=["none"])
            continue
        metafunc.parametrize(name, [value for _, value in found], ids=[i for i, _ in found])


@pytest.fixture(scope="session")
def platform(env_profile: Profile) -> tuple[hosts.HostSpec, Any]:
    """The host the deploy commands run on, and its testinfra connection."""
    spec = hosts.platform_host(env_profile)
    if spec is None:
        raise NotConfigured(env_profile.name, "[[hosts]]")
    return spec, hosts.connect(spec.connection)


@pytest.fixture(scope="session")
def source_dir(env_profile: Profile) -> Path:
    """The platform's git checkout (``[lifecycle] source_dir``)."""
    path = env_profile.section("lifecycle").path("source_dir")
    if path is None:
        raise NotConfigured(env_profile.name, "[lifecycle] source_dir")
    return path
