"""Host checks by what the platform runs (issue 13 item 6), on a scripted testinfra host.

Pure units: the host answers ``ss -ltnp`` and file reads from a script, so the races a real
host produces now and then (a holder exits between the listing and its inspection) happen on
every run. The real sockets are in tests/lab/test_process_impostor.py and
tests/suites/test_pre_deploy.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from plugins import hosts
from plugins.hosts import HostSpec, Port
from probes.errors import CouldNotRun


@dataclass
class Result:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""


def ss_line(port: int, *holders: tuple[str, int]) -> str:
    users = ",".join(f'("{name}",pid={pid},fd=6)' for name, pid in holders)
    return f"LISTEN 0 511 127.0.0.1:{port} 0.0.0.0:* users:({users})\n"


@dataclass
class ScriptedHost:
    """Each ``ss`` call returns the next listing; /proc files are what ``procs`` holds now."""

    listings: list[str]
    procs: dict[int, bytes] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    def run(self, command: str, *args: str) -> Result:
        assert command.startswith("ss ")
        listing = self.listings[min(self.calls, len(self.listings) - 1)]
        self.calls += 1
        return Result(stdout=listing)

    def file(self, path: str) -> ScriptedFile:
        return ScriptedFile(self, path)


@dataclass
class ScriptedFile:
    host: ScriptedHost
    path: str

    @property
    def exists(self) -> bool:
        if not self.path.startswith("/proc/"):
            return self.path in self.host.files
        return int(self.path.split("/")[2]) in self.host.procs

    @property
    def content_string(self) -> str:
        return self.host.files[self.path]

    @property
    def content(self) -> bytes:
        pid = int(self.path.split("/")[2])
        if pid not in self.host.procs:
            raise RuntimeError(f"Unexpected output: cat: {self.path}: No such file or directory")
        return self.host.procs[pid]


SPEC = HostSpec("platform", "local://", processes=("redis-server", "nginx"),
                ports=(Port(6379, "redis-server"), Port(443, "nginx"), Port(80, "nginx")))


def test_a_process_runs_when_it_holds_its_ports():
    host = ScriptedHost([ss_line(6379, ("redis-server", 10))])
    assert hosts.not_running(host, SPEC, "redis-server") == []


def test_a_same_named_process_elsewhere_does_not_count():
    """The impostor holds another port, so ss on the declared one shows nothing (free) or
    someone else."""
    free = ScriptedHost([""])
    assert hosts.not_running(free, SPEC, "redis-server") == [
        "port 6379 is free: no process holds it"]
    other = ScriptedHost([ss_line(6379, ("python3", 11))])
    assert hosts.not_running(other, SPEC, "redis-server") == [
        "port 6379 is held by python3, not redis-server"]


def test_every_declared_port_must_be_held():
    host = ScriptedHost([ss_line(443, ("nginx", 20), ("nginx", 21)), ""])
    assert hosts.not_running(host, SPEC, "nginx") == ["port 80 is free: no process holds it"]


def test_a_listener_ss_cannot_name_is_could_not_run():
    host = ScriptedHost(["LISTEN 0 511 127.0.0.1:6379 0.0.0.0:*\n"])
    with pytest.raises(CouldNotRun, match="ss shows no process"):
        hosts.not_running(host, SPEC, "redis-server")


def test_comm_cut_at_15_characters_is_the_same_process():
    assert hosts.same_process("prometheus-alertmanager", "prometheus-aler")
    assert not hosts.same_process("redis-server", "redis-server-x")


def environ(holder: hosts.Holder, host: ScriptedHost) -> bytes:
    try:
        return host.file(f"/proc/{holder.pid}/environ").content
    except RuntimeError:
        raise hosts.ProcessGone(holder.pid) from None


def test_a_holder_that_vanishes_is_read_again_not_a_failure():
    """nginx reloads: the first listing names pid 30, gone before it is read; the second
    names its successor, which is read."""
    host = ScriptedHost([ss_line(443, ("nginx", 30)), ss_line(443, ("nginx", 31))],
                        procs={31: b"A=1\0"})
    holder, data = hosts.read_holder(host, 443, lambda h: environ(h, host))
    assert holder == hosts.Holder("nginx", 31) and data == b"A=1\0"
    assert host.calls == 2


def test_holders_that_keep_vanishing_are_could_not_run():
    host = ScriptedHost([ss_line(443, ("nginx", pid)) for pid in (40, 41, 42)])
    with pytest.raises(CouldNotRun, match=r"exited before it could be read \(pids 40, 41, 42\)"):
        hosts.read_holder(host, 443, lambda h: environ(h, host))
    assert hosts.read_holder(ScriptedHost([""]), 443, lambda h: environ(h, host)) is None
