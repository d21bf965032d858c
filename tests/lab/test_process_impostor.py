"""The ``process-impostor`` fault (issue 13 item 10): Redis gone from its port while another
``redis-server`` runs on the host, holding an unrelated port.

A host check that looks for processes by name passes there (the false pass of issue 13 item 4);
``test_process_running`` judges who holds the declared port, so it must fail, and only for
Redis. Proven over real sockets and the real daemon, then back to good.
"""
from __future__ import annotations

import socket
from pathlib import Path

from lab import ports
from lab.services.redis import IMPOSTOR_PORT
from tests import labctl

CHECK = "suites/pre_deploy/test_host.py::test_process_running"


def _open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((ports.HOST, port)) == 0


def _redis_servers() -> list[int]:
    """Pids of the live processes named redis-server (what a by-name check would count)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "redis-server":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_impostor_fails_the_process_check_and_good_comes_back(good_lab, tmp_path):
    labctl.lab_up("process-impostor")
    try:
        assert not _open(ports.REDIS), "Redis still holds its port under process-impostor"
        assert _open(IMPOSTOR_PORT) and _redis_servers(), "no redis-server runs elsewhere"
        run = labctl.run_suite("suites/pre_deploy/test_host.py", "-k", "test_process_running",
                               tmp_path=tmp_path / "fault")
        assert run.failing() == {f"{CHECK}[platform-redis-server]"}, run.messages()
        message = run.results["results"]
        text = next(r["message"] for r in message
                    if r["nodeid"] == f"{CHECK}[platform-redis-server]")
        assert ("platform: redis-server is not running: port 10379 is free: no process holds "
                "it") in text, text
        assert len(run.with_outcome("passed")) == 6, run.messages()
    finally:
        labctl.lab_up()
    assert _open(ports.REDIS) and not _open(IMPOSTOR_PORT)
    good = labctl.run_suite("suites/pre_deploy/test_host.py", "-k", "test_process_running",
                            tmp_path=tmp_path / "good")
    assert good.failing() == set() and len(good.with_outcome("passed")) == 7, good.messages()
