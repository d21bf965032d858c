"""`make demo` works wherever root clones the project, including under a private (0700) folder.

The README promises `make demo` on a fresh machine as root; `/root` is 0700. The lab's daemons
run as their own users, so they must be "others" on that folder (their own groups, not root's
gid 0) and `lab install` must open it for traversal only. This test runs the newcomer's path for
real: a clone of this repository's HEAD (commit your change first: `git clone` sees only
commits) in a fresh 0700 folder, `make demo` (its own .venv, `lab install`, `lab up`,
`suites/post_deploy`), the report read back. The main lab is stopped meanwhile (one lab per
machine: same ports) and brought back up at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lab import control
from tests import labctl

DEMO_TIMEOUT_S = 540
# What the outer run must not pass to the inner one (its own .venv, lab dir, pytest options).
INHERITED = ("MSSANTE_", "PYTEST_", "VIRTUAL_ENV", "MAKE", "MFLAGS", "PYTHONPATH")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(INHERITED)}


def _groups(pid: int) -> tuple[set[int], set[int]]:
    """(real/effective/saved/fs gids, supplementary groups) of a live process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return set(map(int, fields["Gid"].split())), set(map(int, fields["Groups"].split()))


def _forget_postfix_instance(clone: Path) -> None:
    """`lab up` lists its Postfix config folder in the default instance's
    alternate_config_directories; drop the clone's so runs do not pile up there."""
    current = subprocess.run(["postconf", "-h", "alternate_config_directories"],
                             capture_output=True, text=True, timeout=10).stdout
    kept = [d for d in current.replace(",", " ").split() if not d.startswith(str(clone))]
    subprocess.run(["postconf", "-e", f"alternate_config_directories = {' '.join(kept)}"],
                   capture_output=True, timeout=10)


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
@pytest.mark.skipif(os.geteuid() != 0, reason="the README's make demo runs as root")
def test_make_demo_from_a_clone_in_a_0700_folder():
    labctl.hold_lab()
    private = Path(tempfile.mkdtemp(prefix="mssante-0700-"))     # 0700, owned by root
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    clone = private / "mssante-check"
    subprocess.run(["git", "clone", "--quiet", str(labctl.REPO), str(clone)], check=True,
                   capture_output=True, timeout=60)
    control.down()
    started = time.monotonic()
    try:
        demo = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True,
                              timeout=DEMO_TIMEOUT_S, env=_clean_env())
        wall = time.monotonic() - started
        output = demo.stdout + demo.stderr
        print(f"make demo in a 0700 clone: exit {demo.returncode} in {wall:.0f}s")
        assert demo.returncode == 0, output[-4000:]
        assert f"opened {private} for traversal (o+x)" in output, output[-4000:]
        assert stat.S_IMODE(private.stat().st_mode) == 0o701, "traversal only: no r, no w"
        results = json.loads((clone / "reports/runs/latest/results.json").read_text())
        outcomes = {r["nodeid"]: r["outcome"] for r in results["results"]}
        assert results["metadata"]["environment"].startswith("lab"), results["metadata"]
        assert {o for o in outcomes.values()} <= {"passed", "skipped"}, outcomes
        assert sum(o == "passed" for o in outcomes.values()) >= 15, outcomes
        # The daemons run with their own groups: never root's gid 0.
        postmaster = int((clone / ".lab/postgres/data/postmaster.pid").read_text().split()[0])
        for pidfile in (clone / ".lab/redis/redis.pid", clone / ".lab/prometheus/prometheus.pid"):
            pid = int(pidfile.read_text().split()[0])
            gids, groups = _groups(pid)
            assert 0 not in gids | groups, f"{pidfile.name}: gids {gids}, groups {groups}"
        gids, groups = _groups(postmaster)
        assert 0 not in gids | groups, f"postgres: gids {gids}, groups {groups}"
    finally:
        python = clone / ".venv/bin/python"
        subprocess.run([str(python) if python.exists() else sys.executable, "-m", "lab", "down"],
                       cwd=clone, capture_output=True, timeout=120, env=_clean_env())
        _forget_postfix_instance(clone)
        shutil.rmtree(private, ignore_errors=True)
        labctl.lab_up()
