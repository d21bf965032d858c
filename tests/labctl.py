"""Helpers for the suite's own tests: drive the lab and run a suite against it.

A suite is run in a subprocess exactly as a user runs it (``pytest suites/... --env lab``) and
judged from the ``results.json`` it writes, so these tests prove the real entry point.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import control
from plugins import profile as profiles
from probes.locks import acquire_flock

REPO = Path(__file__).resolve().parent.parent


LOCK_FILE = Path("/tmp/mssante-check-lab.lock")
_lock: list[Any] = []


def hold_lab() -> None:
    """Hold the lab for this test process: one lab per machine, so test sessions that break it
    take turns (the lock is released when the process ends)."""
    if _lock:
        return
    handle = LOCK_FILE.open("w")
    acquire_flock(handle, 1800, f"lab lock {LOCK_FILE} (another test session)", poll_s=1)
    _lock.append(handle)


def descendants(pid: int) -> set[int]:
    """pid and all its descendants, from /proc/<pid>/task/*/children."""
    found = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= descendants(child)
    return found


def lab_secrets() -> list[str]:
    """The lab's generated secrets (``.lab/secrets.env``) long enough to search reports for."""
    return [v for v in profiles.load("lab").env_file_values.values() if len(v) >= 6]


def lab_up(*faults: str) -> None:
    """Bring the whole lab to exactly these faults (only changed services restart)."""
    hold_lab()
    control.up(list(faults))


@dataclass
class SuiteRun:
    returncode: int
    results: dict[str, Any]
    stdout: str
    reports_dir: Path

    def outcomes(self) -> dict[str, str]:
        """nodeid (without the suites/ prefix path) → outcome."""
        return {r["nodeid"]: r["outcome"] for r in self.results["results"]}

    def failing(self) -> set[str]:
        return {n for n, o in self.outcomes().items() if o in ("failed", "error")}

    def with_outcome(self, outcome: str) -> set[str]:
        return {n for n, o in self.outcomes().items() if o == outcome}

    def messages(self) -> str:
        return "\n".join(f"{r['nodeid']}: {r['outcome']}: {r['message']}"
                         for r in self.results["results"])


def run_suite(*args: str, tmp_path: Path, env: dict[str, str] | None = None,
              timeout: float = 300) -> SuiteRun:
    """Run pytest on suites in a subprocess with --env lab; return its parsed results."""
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "pytest", *args, "--reports-dir", str(reports),
           "-p", "no:cacheprovider", "-q", "--tb=line"]
    if not any(a.startswith("--env") for a in args):
        cmd += ["--env", "lab"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    runs = sorted((reports / "runs").glob("*"), key=lambda p: p.stat().st_mtime)
    if not runs or not (runs[-1] / "results.json").exists():
        raise AssertionError(f"suite wrote no results (exit {proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = json.loads((runs[-1] / "results.json").read_text())
    return SuiteRun(proc.returncode, results, proc.stdout + proc.stderr, runs[-1])
