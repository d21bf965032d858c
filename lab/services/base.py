"""What every lab service looks like to the lab's commands.

A service renders its plain configuration files under ``.lab/<name>/`` from the active
faults (``configure``), starts and stops its real daemon, and applies edited files on
``reload``. ``up`` restarts only the services whose configuration changed, so switching
faults in tests is cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab import paths
from lab.process import port_open, read_pid, terminate


@dataclass(frozen=True)
class LabContext:
    """Everything a service needs to render itself."""

    faults: frozenset[str] = field(default_factory=frozenset)
    secrets: dict[str, str] = field(default_factory=dict)

    def has(self, fault: str) -> bool:
        return fault in self.faults


class Service:
    """Base class: subclasses set ``name``, ``ports``, ``packages`` and implement the hooks."""

    name: str = ""
    ports: dict[str, int] = {}
    packages: tuple[str, ...] = ()      # Debian packages providing the daemon
    commands: tuple[str, ...] = ()      # executables that prove the packages are installed

    @property
    def dir(self) -> Path:
        return paths.service_dir(self.name)

    def wanted(self, ctx: LabContext) -> bool:
        """False when a fault says this service must be down."""
        return True

    def configure(self, ctx: LabContext) -> bool:
        """Write configuration for ctx; return True when any file changed."""
        raise NotImplementedError

    def start(self, ctx: LabContext) -> None:
        """Start the daemon and return once its ports answer; raise LabError otherwise."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the daemon; no process of it may remain."""
        raise NotImplementedError

    def reload(self) -> None:
        """Apply the configuration files as they are on disk now."""
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError

    def not_ready(self, running: frozenset[str], changed: frozenset[str],
                  since: float) -> str | None:
        """What this running service does not do yet as the suites expect (None: ready).

        ``running``: the services up after this ``lab up``; ``changed``: those it started,
        restarted or stopped; ``since``: when it began (epoch seconds). Open ports are checked
        by ``start``; this is for what comes later (a first scrape, a peer discovered).
        """
        return None

    def port_status(self) -> dict[str, bool]:
        return {role: port_open(port) for role, port in self.ports.items()}


class PidfileService(Service):
    """A daemon tracked by a pid file (ours or its own): stopping it means SIGTERM, a bounded
    wait, then SIGKILL — and the pid file goes with it."""

    stop_timeout: float = 15.0

    @property
    def pidfile(self) -> Path:
        raise NotImplementedError

    def stop(self) -> None:
        pid = read_pid(self.pidfile)
        if pid is not None:
            terminate(pid, timeout=self.stop_timeout)
        self.pidfile.unlink(missing_ok=True)

    def is_running(self) -> bool:
        return read_pid(self.pidfile) is not None
