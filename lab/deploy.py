"""The lab as a deployment target: releases, ``deploy``, ``rollback``, maintenance, Redis restore.

The seed deploys a tagged version of the operator's repository (``git checkout $VERSION``),
stops the API, runs the migrations and starts the new version; its rollback checks out the
previous tag (``git describe --tags --abbrev=0 HEAD^``) and restarts. The lab does the same
with a real git repository, so pre-deployment checks (tag, clean tree) have something real to
judge:

- ``lab/releases/<version>/`` holds each release of the reference API: ``VERSION``,
  ``migrations/`` and ``NOTES.md`` (a file shared with an older release is a link to it), and
  ``NO_RESTART`` in a release whose deploy "succeeds" without restarting the API (1.3.0: the
  served version does not change, which the lifecycle must catch);
- ``.lab/api/releases`` is the upstream repository built from them: one commit and one tag
  (``v<version>``) per release, oldest first, with fixed dates so the commits are the same on
  every machine;
- ``.lab/api/current`` is the platform's checkout, at the deployed tag: the API serves the
  release found there (``lab/api/config.py``).

Data is not this module's business: the backup taken before a deploy and its restore belong
to mssante-check (``plugins/backups.py``); ``restore_redis`` is the one primitive it needs from
the lab (stop Redis, put the snapshot back, start), named by the lab's profile.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab import api as api_package
from lab import paths
from lab.process import LabError, run
from lab.services.api import Api
from lab.services.base import LabContext
from lab.services.redis import OS_USER as REDIS_USER
from lab.services.redis import Redis

RELEASES_DIR = Path(__file__).resolve().parent / "releases"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "MSSante LAB release",
                "GIT_AUTHOR_EMAIL": "release@lab.mssante.fr",
                "GIT_COMMITTER_NAME": "MSSante LAB release",
                "GIT_COMMITTER_EMAIL": "release@lab.mssante.fr"}
FIRST_RELEASE_DATE = 1735689600      # 2025-01-01T00:00:00Z; release n is dated n days later
NO_RESTART = "NO_RESTART"             # a release whose deploy leaves the running API alone


@dataclass(frozen=True)
class Release:
    version: str
    path: Path

    @property
    def tag(self) -> str:
        return tag(self.version)

    @property
    def notes(self) -> str:
        """The first line of NOTES.md: what the release does (or that it is broken on purpose)."""
        notes = self.path / "NOTES.md"
        first = notes.read_text().splitlines()[0] if notes.is_file() else ""
        return first.removeprefix(f"{self.version} — ")


def tag(version: str) -> str:
    """``1.1.0`` or ``v1.1.0`` → ``v1.1.0`` (the seed's tags)."""
    return "v" + version.removeprefix("v")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def releases() -> list[Release]:
    """Every release under lab/releases, oldest first."""
    found = [Release(p.name, p) for p in RELEASES_DIR.iterdir() if (p / "VERSION").is_file()]
    return sorted(found, key=lambda r: _version_key(r.version))


def upstream_dir() -> Path:
    return paths.service_dir("api") / "releases"


def checkout_dir() -> Path:
    """The platform's working tree (what the API serves): ``.lab/api/current``."""
    return paths.service_dir("api") / "current"


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run(["git", "-C", str(repo), "-c", "advice.detachedHead=false", *args],
               timeout=30, env=env).stdout.strip()


UPSTREAM_FORMAT = b"upstream-2"     # bumped when build_upstream changes: rebuilt everywhere


def _releases_digest() -> str:
    """SHA-256 over every release file (links followed) and the build format: the upstream is
    rebuilt when either moves."""
    digest = hashlib.sha256(UPSTREAM_FORMAT)
    for path in sorted(p for p in RELEASES_DIR.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(RELEASES_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_upstream() -> bool:
    """(Re)build the upstream repository when lab/releases changed; True when rebuilt."""
    upstream, stamp = upstream_dir(), paths.service_dir("api") / "releases.sha256"
    digest = _releases_digest()
    if (upstream / ".git").is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return False
    shutil.rmtree(upstream, ignore_errors=True)
    upstream.mkdir(parents=True)
    git(upstream, "init", "--quiet", "--initial-branch=main")
    for index, release in enumerate(releases()):
        for child in upstream.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(release.path, upstream, dirs_exist_ok=True, symlinks=False)
        date = f"@{FIRST_RELEASE_DATE + index * 86400} +0000"
        env = {**GIT_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        # A fresh index, so every file is hashed again: copytree keeps mtimes and a rewritten
        # file often gets the same inode, so git's stat cache took 1.1.0's VERSION (same size,
        # same mtime as 1.0.0's, copied the same second) for unchanged, and v1.1.0 said 1.0.0.
        git(upstream, "read-tree", "--empty")
        git(upstream, "add", "--all")
        git(upstream, "commit", "--quiet", "-m", f"Release {release.version}", env=env)
        git(upstream, "tag", release.tag)
    stamp.write_text(digest)
    return True


def ensure_platform() -> list[str]:
    """The upstream repository and the platform checkout exist, with every release tag fetched.

    A new checkout is placed at the release the API package ships (``lab/api/VERSION``), which
    is what the lab serves when nothing was ever deployed.
    """
    lines = []
    if build_upstream():
        lines.append(f"releases: upstream repository built from {RELEASES_DIR} "
                     f"({', '.join(r.tag for r in releases())})")
    checkout = checkout_dir()
    if not (checkout / ".git").is_dir():
        shutil.rmtree(checkout, ignore_errors=True)
        run(["git", "clone", "--quiet", str(upstream_dir()), str(checkout)], timeout=30)
        git(checkout, "checkout", "--quiet", "--detach", tag(api_package.version()))
        lines.append(f"platform: {checkout} checked out at {tag(api_package.version())}")
    else:
        git(checkout, "fetch", "--quiet", "--tags", "--force", "origin")
    return lines


def deployed() -> str:
    """``git describe --tags`` of the platform checkout (the package's release if none)."""
    if not (checkout_dir() / ".git").is_dir():
        return f"{tag(api_package.version())} (no checkout: the release shipped in lab/api)"
    return git(checkout_dir(), "describe", "--tags", "--always")


def _known(version: str) -> str:
    wanted = tag(version)
    known = [r.tag for r in releases()]
    if wanted not in known:
        raise LabError(f"unknown version {version}: the lab's releases are {', '.join(known)}")
    return wanted


def restarts(target: str) -> bool:
    """False for a release whose tree holds ``NO_RESTART`` (1.3.0): its deploy forgets to
    restart the API, so the running process keeps serving the version it started with."""
    try:
        git(checkout_dir(), "cat-file", "-e", f"{target}:{NO_RESTART}")
    except LabError:
        return True
    return False


def _switch(target: str, migrate: bool, restart: bool = True) -> list[str]:
    """Stop the API, check the tag out, optionally migrate, start it again (unless the
    release's deploy forgets the restart: then the running API is left alone)."""
    api, checkout = Api(), checkout_dir()
    lines = []
    if restart:
        api.stop()
        lines.append("api: stopped")
    git(checkout, "checkout", "--quiet", "--force", "--detach", target)
    lines.append(f"code: {checkout} at {target} ({git(checkout, 'rev-parse', '--short', 'HEAD')})")
    if migrate:
        try:
            # From the repository root: ``lab`` is not installed, it is found there.
            result = run([sys.executable, "-m", "lab.api", "migrate"], timeout=60,
                         env={"MSSANTE_API_ENV_FILE": str(api.env_file)},
                         cwd=paths.REPO_ROOT)
        except LabError as exc:
            raise LabError(f"migrations of {target} failed, the API is left stopped "
                           f"(roll back with `python -m lab rollback`): {exc}") from exc
        lines.append(f"migrations: {result.stdout.strip()}")
    if not restart:
        lines.append(f"api: not restarted ({NO_RESTART} in {target}): it keeps serving the "
                     "version it started with")
        return lines
    api.start(LabContext())
    lines.append(f"api: started, serving {target.removeprefix('v')}")
    return lines


def deploy(version: str) -> list[str]:
    """The seed's deploy for the lab: fetch tags, stop, checkout, migrate, start.

    It does not wait for health nor decide anything: that is the lifecycle's job.
    """
    lines = ensure_platform()
    target = _known(version)
    return lines + _switch(target, migrate=True, restart=restarts(target))


def previous_tag() -> str:
    """The seed's "last stable": ``git describe --tags --abbrev=0 HEAD^``."""
    try:
        return git(checkout_dir(), "describe", "--tags", "--abbrev=0", "HEAD^")
    except LabError as exc:
        raise LabError(f"no version before {deployed()} to roll back to") from exc


def rollback(version: str | None = None, force: bool = False) -> list[str]:
    """The seed's rollback of the code: confirm, stop, checkout the earlier tag, start.

    The confirmation is skipped with ``--force`` or ``ROLLBACK_AUTO=true`` (what the seed's
    deploy-production.sh sets when it rolls back by itself). The database and Redis come back
    from the backup through mssante-check (``python -m plugins.backups --restore ID``).
    """
    if not (checkout_dir() / ".git").is_dir():
        raise LabError("nothing was deployed: there is no platform checkout to roll back")
    lines = ensure_platform()
    target = _known(version) if version else previous_tag()
    if not (force or os.environ.get("ROLLBACK_AUTO") == "true"):
        if not sys.stdin.isatty():
            raise LabError("rollback needs a confirmation: pass --force or set ROLLBACK_AUTO=true")
        if input(f"Confirmer le rollback vers {target}? (yes/NO) ").strip() != "yes":
            raise LabError("rollback cancelled")
    return lines + _switch(target, migrate=False)


def maintenance(enabled: bool) -> str:
    """Switch the API's maintenance flag file (the seed's enable/disable-maintenance-mode)."""
    flag = Api().maintenance_flag
    if enabled:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text(f"enabled by `python -m lab maintenance on` at "
                        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        return f"maintenance: on ({flag})"
    flag.unlink(missing_ok=True)
    return "maintenance: off"


def restore_redis(rdb: Path) -> list[str]:
    """Stop Redis, replace its snapshot with ``rdb``, start it: Redis loads it at start."""
    if not rdb.is_file():
        raise LabError(f"{rdb}: no such snapshot")
    service = Redis()
    target = service.dir / "data" / "dump.rdb"
    service.stop()
    staged = target.with_suffix(".restoring")
    shutil.copyfile(rdb, staged)
    shutil.chown(staged, REDIS_USER, REDIS_USER)
    os.chmod(staged, 0o600)
    os.replace(staged, target)
    service.start(LabContext())
    return ["redis: stopped", f"redis: snapshot {rdb} restored to {target}", "redis: started"]


def releases_table() -> list[str]:
    current = deployed().split()[0]
    lines = [f"{'VERSION':<9}{'TAG':<9}{'':<3}NOTES"]
    for release in releases():
        mark = " *" if release.tag == current else ""
        lines.append(f"{release.version:<9}{release.tag:<9}{mark:<3}{release.notes}")
    lines.append(f"deployed: {deployed()}")
    return lines
