"""The platform's hosts as pytest-testinfra connections, declared in the profile's ``[[hosts]]``.

Each entry names a testinfra connection (``local://`` for the lab, ``ssh://user@host`` for a
real server) and what must hold on that host before a deployment: processes running (a
process runs when it holds the ports the profile binds to it, as ``ss -ltnp`` shows them: a
process of the same name running for something else proves nothing), systemd services active,
key files readable by their owner only (0600), free disk on the named paths, and the ports the
platform needs, free or held by the expected process. The same connection runs the
profile's deploy, rollback and maintenance commands (``run_command``), and reads resource use
for the deployment report, so a command meant for the server runs on the server.
"""
from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from plugins.profile import Profile, ProfileError
from probes.errors import CouldNotRun

T = TypeVar("T")
LIST_KEYS = ("processes", "services", "key_files", "disk_paths")
_HOLDER = re.compile(r'\("([^"]+)",pid=(\d+)')
# A process read after `ss` listed it may be gone (nginx reloads, PostgreSQL backends): the
# listing is taken again this many times before the check gives up with could-not-run.
INSPECT_ATTEMPTS = 3


@dataclass(frozen=True)
class Port:
    port: int
    process: str            # who may hold it: a process name (as `ss -p` shows it) or its start


@dataclass(frozen=True)
class HostSpec:
    name: str
    connection: str         # testinfra host spec: local://, ssh://user@host, paramiko://...
    processes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    key_files: tuple[str, ...] = ()
    disk_paths: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()


def host_specs(profile: Profile) -> list[HostSpec]:
    """``[[hosts]]`` entries (validated when the profile loads: plugins/profile.py ARRAYS);
    relative paths resolve against the profile's folder (they only make sense on
    ``local://``: give absolute paths for remote hosts)."""
    specs = []
    for entry in profile.data.get("hosts", []):
        lists = {key: tuple(entry.get(key, ())) for key in LIST_KEYS}
        for key in ("key_files", "disk_paths"):
            lists[key] = tuple(str((profile.path.parent / v).resolve()) for v in lists[key])
        ports = tuple(Port(port["port"], port["process"]) for port in entry.get("ports", []))
        specs.append(HostSpec(entry["name"], entry["connection"], ports=ports, **lists))
    return specs


def platform_host(profile: Profile) -> HostSpec | None:
    """The host that runs the deploy commands: ``[lifecycle] host``, else the first one."""
    specs = host_specs(profile)
    wanted = profile.data.get("lifecycle", {}).get("host")
    if wanted is None:
        return specs[0] if specs else None
    for spec in specs:
        if spec.name == wanted:
            return spec
    raise ProfileError(f"{profile.path}: [lifecycle] host '{wanted}' is not a [[hosts]] name")


@cache
def connect(connection: str) -> Any:
    """A testinfra host (cached per connection string, as testinfra caches its backends).

    ``ssh://`` connections are bounded (:func:`_bounded_ssh`): a silent host is an error within
    seconds, never a hang.
    """
    import testinfra

    if not connection.startswith("ssh://"):
        return testinfra.get_host(connection)
    host = testinfra.get_host(connection, ssh_extra_args=" ".join(SSH_OPTIONS),
                              timeout=SSH_CONNECT_TIMEOUT_S)
    _bounded_ssh(host.backend, connection)
    return host


SSH_CONNECT_TIMEOUT_S = 5        # TCP connect and the SSH handshake (ssh's ConnectTimeout)
SSH_COMMAND_TIMEOUT_S = 60       # one testinfra command on the host (run_command sets its own)
# BatchMode: never wait for a password or a host-key prompt; ServerAlive*: a host that goes
# silent after the handshake is given up after 2 x 5 s.
SSH_OPTIONS = (f"-o ConnectTimeout={SSH_CONNECT_TIMEOUT_S}", "-o BatchMode=yes",
               "-o ServerAliveInterval=5", "-o ServerAliveCountMax=2")


class HostUnreachable(CouldNotRun, ConnectionError):
    """ssh could not reach or log in to the host (exit 255): the check measured nothing."""


def _bounded_ssh(backend: Any, connection: str) -> None:
    """Give testinfra's ssh backend a command time-out and a could-not-run error.

    testinfra runs ssh without any time-out of its own and raises a bare RuntimeError when ssh
    exits 255 (connection refused, timed out, authentication failed); each command is wrapped
    in the host's coreutils ``timeout`` (unless run_command already did, with its own bound)
    and exit 255 becomes :class:`HostUnreachable`, which the report calls an *error*.
    """
    run_ssh = backend.run_ssh

    def bounded(command: str) -> Any:
        if not command.startswith("timeout "):
            command = (f"timeout --kill-after=2 {SSH_COMMAND_TIMEOUT_S} "
                       f"sh -c {shlex.quote(command)}")
        try:
            return run_ssh(command)
        except RuntimeError as exc:
            out = exc.args[0] if exc.args else None
            reason = (getattr(out, "stderr", "") or str(exc)).strip().splitlines()
            raise HostUnreachable(connection, "ssh",
                                  reason[-1] if reason else "exit 255") from None

    backend.run_ssh = bounded


@dataclass(frozen=True)
class CommandResult:
    command: str
    rc: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def tail(self) -> str:
        """The last lines of output: what a report shows of a command."""
        lines = (self.stdout + "\n" + self.stderr).strip().splitlines()
        return " | ".join(lines[-6:])


def run_command(host: Any, command: str, timeout: float,
                env: dict[str, str] | None = None) -> CommandResult:
    """Run a profile command on the host through ``sh -c``, bounded by coreutils ``timeout``
    (testinfra's ``run`` has no time-out of its own); ``env`` is prefixed with ``env``."""
    prefix = "env " + " ".join(f"{k}=%s" for k in env) + " " if env else ""
    started = time.monotonic()
    # Seconds as a decimal, never int(): int(0.5) is 0, which coreutils reads as "no limit".
    result = host.run("timeout --kill-after=5 %s " + prefix + "sh -c %s",
                      f"{max(timeout, 0.001):.3f}", *(env or {}).values(), command)
    return CommandResult(command, result.rc, result.stdout, result.stderr,
                         time.monotonic() - started)


def disk_free_gb(host: Any, path: str) -> float:
    """Free space (GB, 10^9 bytes) for unprivileged users on the filesystem holding ``path``."""
    result = host.run("df -Pk -- %s", path)
    if result.rc != 0:
        raise RuntimeError(f"df {path} failed: {result.stderr.strip()}")
    available_kb = int(result.stdout.strip().splitlines()[-1].split()[3])
    return available_kb * 1024 / 1e9


@dataclass(frozen=True)
class Holder:
    """A process listening on a port, as ``ss -p`` shows it (its ``comm``, 15 characters)."""

    name: str
    pid: int


def listeners(host: Any, port: int) -> tuple[Holder, ...] | None:
    """The processes listening on TCP ``port`` (empty when it is free), from one ``ss -ltnp``
    listing; None when a socket listens but ss shows no process (not root on that host)."""
    result = host.run("ss -Hltnp %s", f"sport = :{port}")
    if result.rc != 0:
        raise RuntimeError(f"ss failed: {result.stderr.strip()}")
    holders = tuple(dict.fromkeys(Holder(name, int(pid))
                                  for name, pid in _HOLDER.findall(result.stdout)))
    if result.stdout.strip() and not holders:
        return None
    return holders


def port_holders(host: Any, port: int) -> set[str]:
    """Names of the processes listening on TCP ``port`` (empty when it is free)."""
    holders = listeners(host, port)
    if holders is None:
        return {"(unknown: ss shows no process; run as root)"}
    return {holder.name for holder in holders}


def same_process(declared: str, shown: str) -> bool:
    """``shown`` (a ``comm``, cut at 15 characters by the kernel) is the declared name."""
    return shown == declared or (len(shown) == 15 and declared.startswith(shown))


def not_running(host: Any, spec: HostSpec, name: str) -> list[str]:
    """Why the declared process ``name`` is not running on ``spec`` (empty: it is): each port
    the profile binds to it must be held by a process of that name. A process of the same name
    that holds none of them (running for something else) does not count. One ``ss`` listing
    per port, so no process can vanish between listing and inspection. A listener ss cannot
    name (not root) is could-not-run, never a verdict."""
    problems = []
    for port in (p for p in spec.ports if p.process == name):
        holders = listeners(host, port.port)
        if holders is None:
            raise CouldNotRun(f"{spec.name}:{port.port}", "ss -ltnp",
                              "a socket listens but ss shows no process (run as root)")
        if not holders:
            problems.append(f"port {port.port} is free: no process holds it")
        elif not any(same_process(name, h.name) for h in holders):
            problems.append(f"port {port.port} is held by "
                            f"{', '.join(sorted({h.name for h in holders}))}, not {name}")
    return problems


def read_holder(host: Any, port: int, read: Callable[[Holder], T]) -> tuple[Holder, T] | None:
    """``read`` the first process holding ``port`` (e.g. its /proc/<pid>/environ); None when
    the port is free. A holder that exits before it is read (a reload) makes the listing be
    taken again, up to INSPECT_ATTEMPTS times: a vanished process is never a failure, and only
    an answer from a live holder is returned. ``read`` raises :class:`ProcessGone` for a process
    that no longer exists; anything else it raises is the caller's."""
    gone: list[int] = []
    for _ in range(INSPECT_ATTEMPTS):
        holders = listeners(host, port)
        if holders is None:
            raise CouldNotRun(f"port {port}", "ss -ltnp",
                              "a socket listens but ss shows no process (run as root)")
        if not holders:
            return None
        try:
            return holders[0], read(holders[0])
        except ProcessGone:
            gone.append(holders[0].pid)
    raise CouldNotRun(f"port {port}", "read the holder",
                      f"each process holding it exited before it could be read "
                      f"(pids {', '.join(map(str, gone))})")


class ProcessGone(Exception):
    """The process exited between the listing and its inspection."""


def resources(host: Any, paths: tuple[str, ...]) -> dict[str, Any]:
    """Load, memory and free disk of the host, for the deployment report."""
    load = host.run("cat /proc/loadavg").stdout.split()
    cpus = host.run("nproc").stdout.strip()
    meminfo = {}
    for line in host.run("cat /proc/meminfo").stdout.splitlines():
        key, _, value = line.partition(":")
        meminfo[key] = int(value.split()[0]) if value.split() else 0
    total = meminfo.get("MemTotal", 0) / 1024
    used = total - meminfo.get("MemAvailable", 0) / 1024
    return {"load1": float(load[0]) if load else None, "cpus": int(cpus) if cpus else None,
            "mem_used_mb": round(used), "mem_total_mb": round(total),
            "disk_free_gb": {path: round(disk_free_gb(host, path), 1) for path in paths}}


def relative(path: str, base: Path) -> str:
    """A path shown relative to ``base`` when below it (short, readable test ids)."""
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path
