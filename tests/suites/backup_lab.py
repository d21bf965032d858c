"""Shared by the lifecycle's own tests: the lab as a deployment target, with a fresh backup.

Backups go to a temporary ``BACKUP_DIR`` (the seed's variable, inherited by every suite the
tests run), so the tests never add to or read from the lab's own ``.lab/backups``.
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lab import api as api_package
from lab import deploy, paths
from plugins import backups
from plugins import profile as profiles
from plugins.profile import Profile


def lab_profile() -> Profile:
    return profiles.load("lab")


def served_version() -> dict[str, str]:
    """What the lab's API says it runs (its plain backend port, no TLS needed)."""
    return httpx.get("http://127.0.0.1:10080/version", timeout=5).json()


def redis_pid() -> int:
    """Redis's pid: a restore restarts Redis, so an unchanged pid proves it was not touched."""
    return int((paths.service_dir("redis") / "redis.pid").read_text().split()[0])


@pytest.fixture
def platform_lab(good_lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> backups.Backup:
    """The good lab serving its default release, a temporary BACKUP_DIR, one fresh backup."""
    deploy.ensure_platform()
    default = deploy.tag(api_package.version())
    if deploy.deployed() != default:
        pytest.fail(f"the lab serves {deploy.deployed()}, not {default}: an earlier run did not "
                    f"clean up (python -m lab rollback {default} --force, then restore its "
                    "backup with python -m plugins.backups --restore)", pytrace=False)
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    return backups.create(lab_profile())
