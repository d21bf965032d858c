"""Process and port helpers shared by every lab service.

Daemons are started by hand (no systemd, no Docker), so the lab itself must know whether a
port is free, wait for a port to answer, and stop a process for good.
"""
from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from lab.ports import HOST


class LabError(RuntimeError):
    """A lab operation failed; the message is meant for the operator, on one line if possible."""


def port_open(port: int, host: str = HOST, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 15.0, host: str = HOST) -> bool:
    """Poll until host:port accepts connections or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return True
        time.sleep(0.05)
    return False


def wait_port_closed(port: int, timeout: float = 10.0, host: str = HOST) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(port, host):
            return True
        time.sleep(0.05)
    return False


def read_pid(pidfile: Path) -> int | None:
    """The pid recorded in pidfile if that process is alive, else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess keyword arguments that run a child as ``user`` with that user's own primary
    group and supplementary groups (what ``initgroups`` would give it).

    ``subprocess``'s ``user=`` alone switches the uid but keeps root's gid 0 and groups, so a
    daemon started from a checkout under a 0700 ``/root`` matches the folder's *group* class
    (no permission bits) and cannot even ``chdir`` there, whatever its ``o+x``.
    """
    if user is None:
        return {}
    try:
        account = pwd.getpwnam(user)
    except KeyError as exc:
        raise LabError(f"system user {user!r} does not exist: run `python -m lab install`") from exc
    return {"user": account.pw_uid, "group": account.pw_gid,
            "extra_groups": os.getgrouplist(user, account.pw_gid)}


def spawn(cmd: list[str], log: Path, pidfile: Path, env: dict[str, str] | None = None,
          user: str | None = None, cwd: Path | None = None) -> int:
    """Start a foreground daemon detached from us, logging to ``log``; record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            **as_user(user),
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def run(cmd: list[str], timeout: float = 60.0, user: str | None = None,
        env: dict[str, str] | None = None, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion with a bounded time; raise LabError with its output on
    failure."""
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                cwd=cwd, **as_user(user))
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{cmd[0]} did not finish within {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} not found: run `python -m lab install`") from exc
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise LabError(f"{' '.join(cmd[:3])} failed ({result.returncode}): {' | '.join(output)}")
    return result


def log_tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def write_if_changed(path: Path, content: str, mode: int | None = None) -> bool:
    """Write content when it differs from what is on disk; True when the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == content:
        if mode is not None:
            os.chmod(path, mode)
        return False
    path.write_text(content)
    if mode is not None:
        os.chmod(path, mode)
    return True
