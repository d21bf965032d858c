"""The lab's commands as an operator uses them: idempotent up, clean down, clear errors."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab import control, paths
from lab.faults import FAULTS
from lab.process import LabError
from lab.services import load
from tests import labctl

# Executables the lab starts; the Debian default instances are never started on these machines,
# so any such process alive after `down` is one the lab left behind.
LAB_PROCESSES = ("postgres", "redis-server", "nginx", "dovecot", "master", "prometheus",
                 "prometheus-alertmanager", "lab.api")


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=labctl.REPO,
                          capture_output=True, text=True, timeout=120)


def lab_processes() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [os.path.basename(a.decode(errors="replace")) for a in argv if a]
        text = " ".join(words)
        if words and (words[0].split(":")[0] in LAB_PROCESSES or "lab.api" in text
                      or str(paths.lab_dir()) in " ".join(a.decode(errors="replace") for a in argv)):
            found.append(f"{proc.name}: {text[:120]}")
    return found


def test_faults_lists_every_fault():
    out = lab("faults").stdout
    assert [line.split()[0] for line in out.splitlines()] == list(FAULTS)


def test_env_prints_the_lab_profile():
    assert lab("env").stdout.strip() == str(paths.profile_path())


def test_unknown_fault_is_a_clear_error():
    proc = lab("up", "--fault", "no-such-fault")
    assert proc.returncode == 1
    assert "unknown fault(s) no-such-fault" in proc.stderr


def test_up_twice_is_harmless(good_lab):
    lines = control.up([])
    assert all(line.endswith(": up") for line in lines), lines


def test_port_taken_by_someone_else_is_named(good_lab):
    redis = load("redis")
    redis.stop()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", redis.ports["redis"]))
    squatter.listen()
    try:
        with pytest.raises(LabError, match=r"port 10379 \(redis\) is already in use"):
            control.up([])
    finally:
        squatter.close()
        control.up([])


def test_down_leaves_no_process_and_up_comes_back(good_lab):
    labctl.hold_lab()
    control.down()
    try:
        assert lab_processes() == []
        assert "down" in "\n".join(control.status())
    finally:
        lines = control.up([])
    assert all(("started" in line) or ("stopped (fault)" in line) for line in lines), lines
    assert all(control.status()[i].split()[1] == "up" for i in range(len(lines)))
