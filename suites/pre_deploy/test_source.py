"""Checklist item 1 and deploy-production.sh's prerequisite: a tagged, clean platform checkout.

The seed reads ``git describe --tags`` (expected: v1.2.3) and refuses uncommitted changes. The
version about to be deployed (``--target-version``, implied by ``--deploy``) must be a tag of
the checkout; without one, the checkout itself must sit exactly on a tag.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.service("platform")


def git(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not (source / ".git").exists():
        pytest.fail(f"{source} is not a git checkout of the platform", pytrace=False)
    return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                          timeout=10)


@pytest.mark.requirement("SEED-TECH-1")
def test_version_is_a_tag(source_dir, target_version, record):
    described = git(source_dir, "describe", "--tags", "--always").stdout.strip()
    record.measure("git describe --tags", described)
    if target_version:
        tags = git(source_dir, "tag", "--list").stdout.split()
        candidates = {target_version, f"v{target_version.removeprefix('v')}"}
        assert candidates & set(tags), (
            f"version {target_version} is not a tag of {source_dir} (tags: {', '.join(tags)})")
    else:
        exact = git(source_dir, "describe", "--tags", "--exact-match")
        assert exact.returncode == 0, (
            f"{source_dir} is at {described}, not exactly on a tag")


@pytest.mark.requirement("LIFE-PRE-CLEAN")
def test_working_tree_clean(source_dir):
    status = git(source_dir, "status", "--porcelain")
    assert status.returncode == 0, f"git status failed: {status.stderr.strip()}"
    changes = status.stdout.splitlines()
    assert not changes, (f"{source_dir} has {len(changes)} uncommitted change(s): "
                         + "; ".join(line.strip() for line in changes[:5]))
