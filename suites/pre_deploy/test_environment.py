"""Checklist item 4 (the seed's ``check-env.sh``) and ``NODE_ENV=production`` for production.

Each required variable is its own test, so the report names the missing one. Variables are
looked up as the suite reads every secret: the environment first, then the profile's env_file.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.service("platform")


@pytest.mark.requirement("SEED-TECH-4")
def test_required_variable_set(required_var, env_profile):
    env_file = env_profile.data["environment"].get("env_file")
    where = "the environment" + (f" or {env_file}" if env_file else "")
    assert env_profile.lookup_env(required_var), (
        f"{required_var} is not set (required by [environment] required_env of "
        f"{env_profile.path.name}; looked up in {where})")


@pytest.mark.requirement("LIFE-PRE-NODE-ENV")
def test_node_env_is_production(env_profile):
    if env_profile.kind != "production":
        pytest.skip(f"not applicable to {env_profile.name}: NODE_ENV=production is required "
                    f"of production profiles (kind = {env_profile.kind})")
    value = env_profile.lookup_env("NODE_ENV")
    shown = "not set" if value is None else f"{value!r}"
    assert value == "production", (
        f"NODE_ENV is {shown}: a production deployment needs NODE_ENV=production")
