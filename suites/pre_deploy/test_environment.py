"""Checklist item 4 (the seed's ``check-env.sh``) and ``NODE_ENV=production`` for production.

Each required variable is its own test, so the report names the missing one. Variables are
looked up where the *platform* reads them (plugins/platform_env.py): its env file on the
platform host (``[environment] platform_env_file``), then the environment of the process
holding ``platform_env_port``. mssante-check's own environment and env_file never count: they
hold the suite's secrets, not the platform's settings.
"""
from __future__ import annotations

import pytest

from plugins.platform_env import PlatformEnv, platform_env

pytestmark = pytest.mark.service("platform")


@pytest.fixture(scope="module")
def platform_variables(env_profile) -> PlatformEnv:
    return platform_env(env_profile)


@pytest.mark.requirement("SEED-TECH-4")
def test_required_variable_set(required_var, platform_variables, env_profile, record):
    found = platform_variables.lookup(required_var)
    assert found is not None, (
        f"{required_var} is not set on the platform (required by [environment] required_env of "
        f"{env_profile.path.name}; looked up in {platform_variables.searched()}; "
        "mssante-check's own environment does not count)")
    record.measure(f"{required_var} set in", found[1])


@pytest.mark.requirement("LIFE-PRE-NODE-ENV")
def test_node_env_is_production(env_profile, request):
    if env_profile.kind != "production":
        pytest.skip(f"not applicable to {env_profile.name}: NODE_ENV=production is required "
                    f"of production profiles (kind = {env_profile.kind})")
    platform_variables = request.getfixturevalue("platform_variables")
    found = platform_variables.lookup("NODE_ENV")
    shown = "not set" if found is None else f"{found[0]!r} in {found[1]}"
    assert found is not None and found[0] == "production", (
        f"NODE_ENV on the platform is {shown}: a production deployment needs "
        f"NODE_ENV=production (looked up in {platform_variables.searched()})")
