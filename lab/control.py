"""The lab's commands: install, up, down, status, reload.

``up`` is idempotent: it renders every service's configuration for the requested faults and
(re)starts only what changed or is not running; services a fault wants down are stopped. It
returns once every running service answers as the suites expect (Prometheus has scraped each
target, Alertmanager is wired), or fails within READY_TIMEOUT_S naming what is not ready.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab import faults as fault_catalogue
from lab import paths, pki, secrets
from lab.ports import ALL as PORTS
from lab.process import LabError, port_open, run
from lab.services import LabContext, Service, selected

CONTROL_LOCK = Path("/tmp/mssante-check-lab-control.lock")
READY_TIMEOUT_S = 30.0
PACKAGES = (
    # the lab's daemons
    "postfix", "dovecot-imapd", "dovecot-lmtpd", "dovecot-submissiond", "postgresql",
    "redis-server", "nginx", "prometheus", "prometheus-alertmanager",
    # reference tools the suite's tests and benchmarks compare against or look through
    "testssl.sh", "swaks", "wrk", "stunnel4", "chromium",
)


def missing_packages() -> list[str]:
    missing = []
    for package in PACKAGES:
        result = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def open_parents() -> list[str]:
    """Let the daemons' users traverse (not list) the folders above .lab/ (chmod o+x)."""
    opened = []
    for parent in paths.blocked_parents():
        os.chmod(parent, parent.stat().st_mode | 0o001)
        opened.append(f"opened {parent} for traversal (o+x) so lab daemons can reach .lab/")
    return opened


def install() -> str:
    """apt-get install the daemons the lab needs (root only); services are not started."""
    missing = missing_packages()
    notes = open_parents() if os.geteuid() == 0 else []
    if not missing:
        return "\n".join([*notes, "all lab packages are installed"])
    if os.geteuid() != 0:
        raise LabError(f"missing packages {' '.join(missing)}: run `sudo python -m lab install`")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], timeout=1200,
        env=env)
    return "\n".join([*notes, f"installed {' '.join(missing)}"])


def _save_state(faults: frozenset[str], only: list[str] | None) -> None:
    path = paths.state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"faults": sorted(faults), "only": only,
                                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))


def current_state() -> dict:
    try:
        return json.loads(paths.state_file().read_text())
    except (OSError, ValueError):
        return {"faults": [], "only": None}


def _check_ports_free(service: Service) -> None:
    """A port held by someone else is a clear error naming it (never a silent clash)."""
    for role, port in service.ports.items():
        if port_open(port):
            raise LabError(f"port {port} ({role}) is already in use by another process; "
                           f"free it or stop that process before `python -m lab up`")


@contextmanager
def _exclusive() -> Iterator[None]:
    """One lab command at a time on this machine: two concurrent `up`s would fight over
    the same daemons and ports."""
    CONTROL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(CONTROL_LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def up(faults: list[str] | None = None, only: list[str] | None = None) -> list[str]:
    """Start the lab (optionally broken); returns one line per service."""
    with _exclusive():
        return _up(faults, only)


def _up(faults: list[str] | None, only: list[str] | None) -> list[str]:
    active = fault_catalogue.validate(faults or [])
    if shutil.which("postconf") is None and not only:
        raise LabError("lab packages are not installed: run `python -m lab install` first")
    blocked = paths.blocked_parents()
    if blocked:
        raise LabError(f"lab daemons cannot reach {paths.lab_dir()}: {blocked[0]} is not "
                       "traversable by other users; run `python -m lab install` (as root, it "
                       "adds o+x) or set MSSANTE_LAB_DIR to a reachable folder")
    ctx = LabContext(faults=active, secrets=secrets.ensure())
    pki.ensure()
    from lab import deploy  # the platform checkout the API serves (a git tree with release tags)

    lines = deploy.ensure_platform()
    since = time.time()
    services = selected(only)
    moved: set[str] = set()     # started, restarted or stopped by this call
    for service in services:
        changed = service.configure(ctx)
        running = service.is_running()
        if not service.wanted(ctx):
            if running:
                service.stop()
                moved.add(service.name)
            lines.append(f"{service.name}: stopped (fault)")
            continue
        if running and not changed:
            lines.append(f"{service.name}: up")
            continue
        if running:
            service.stop()
        else:
            _check_ports_free(service)
        service.start(ctx)
        moved.add(service.name)
        lines.append(f"{service.name}: {'restarted' if running else 'started'}")
    _save_state(active, only)
    _wait_ready([s for s in services if s.wanted(ctx)], frozenset(moved), since)
    return lines


def _wait_ready(running: list[Service], moved: frozenset[str], since: float) -> None:
    """Return once no running service reports anything not ready; LabError after
    READY_TIMEOUT_S naming each service and what it still lacks."""
    names = frozenset(s.name for s in running)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        pending = [f"{s.name}: {why}" for s in running if (why := s.not_ready(names, moved, since))]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LabError(f"lab not ready after {READY_TIMEOUT_S:.0f}s: {' | '.join(pending)}")
        time.sleep(0.25)


def down() -> list[str]:
    with _exclusive():
        return _down()


def _down() -> list[str]:
    lines = []
    for service in reversed(selected()):
        if service.is_running():
            service.stop()
            lines.append(f"{service.name}: stopped")
    try:
        paths.state_file().unlink()
    except FileNotFoundError:
        pass
    return lines or ["lab: nothing was running"]


def reload() -> list[str]:
    """Apply the live files under .lab/ as edited by the operator (no re-rendering)."""
    lines = []
    for service in selected(current_state().get("only")):
        if service.is_running():
            service.reload()
            lines.append(f"{service.name}: reloaded")
    return lines


def status() -> list[str]:
    lines = []
    for service in selected():
        ports = service.port_status()
        state = "up" if service.is_running() and all(ports.values()) else (
            "partial" if service.is_running() else "down")
        detail = ", ".join(f"{role} {PORTS.get(role, service.ports[role])} "
                           f"{'open' if ok else 'closed'}" for role, ok in ports.items())
        lines.append(f"{service.name:<13}{state:<8}{detail}")
    faults = current_state().get("faults") or []
    lines.append(f"faults: {', '.join(faults) if faults else 'none'}")
    return lines
