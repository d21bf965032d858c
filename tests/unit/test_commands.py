"""plugins/commands.py and the bounds of plugins/hosts.py, with real processes and sockets.

- a command template is split first, then filled: a version with spaces, quotes or ``;``
  stays one argument, also where the template quotes the placeholder;
- a time-out below one second stays that long (int() once made 0.5 s "no limit"), locally
  and through testinfra's coreutils ``timeout``; a timed-out command's children die with it;
- a testinfra ``ssh://`` host that accepts the connection and never speaks is a could-not-run
  error within seconds (no sshd needed: a listener that stays silent).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from plugins import commands, hosts, reporting

HOSTILE = ["1.1.0; touch /tmp/pwned", "1.1.0 --force", "1.1.0' ; id ; '", '1.1" $(id) "',
           "{python}", "a b\tc\nd"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("template", ["{python} -m lab deploy {version}",
                                      "{python} -m lab deploy '{version}'",
                                      '{python} -m lab deploy "{version}"'])
def test_a_value_is_one_argument_whatever_it_holds(template, value):
    argv = commands.build_argv(template, {"python": "/usr/bin/python3", "version": value})
    assert argv == ["/usr/bin/python3", "-m", "lab", "deploy", value]


def test_placeholder_inside_an_argument_and_unknown_names_kept():
    argv = commands.build_argv("deploy --tag=v{version} --at {when}", {"version": "1 2"})
    assert argv == ["deploy", "--tag=v1 2", "--at", "{when}"]


@pytest.mark.parametrize("template", ["", "   ", "deploy 'unterminated"])
def test_not_a_command_line_is_refused(template):
    with pytest.raises(ValueError):
        commands.build_argv(template, {})


def test_hostile_value_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    argv = commands.build_argv("echo {version}", {"version": f"x; touch {marker}"})
    result = commands.run("local://", argv, 5)
    assert result.rc == 0 and result.stdout.strip() == f"x; touch {marker}"
    assert not marker.exists()


def test_sub_second_timeout_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"]
    started = time.monotonic()
    with pytest.raises(commands.CommandTimedOut, match="within 0.5s"):
        commands.run("local://", argv, 0.5)
    assert time.monotonic() - started < 3
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the command's child outlived its time-out"


def test_testinfra_command_timeout_below_one_second():
    started = time.monotonic()
    result = hosts.run_command(hosts.connect("local://"), "sleep 30", 0.5)
    assert result.rc == 124                      # coreutils timeout: timed out
    assert time.monotonic() - started < 3


def test_silent_ssh_host_is_an_error_within_seconds():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)                       # accepts (kernel backlog), never speaks
        connection = f"ssh://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(hosts.HostUnreachable) as caught:
            hosts.connect(connection).run("true")
        elapsed = time.monotonic() - started
    assert elapsed < hosts.SSH_CONNECT_TIMEOUT_S + 3
    assert str(caught.value).startswith(f"could not run: {connection}: ssh:")
    assert reporting.could_not_run(caught.value)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().split(")")[-1].split()[0] != "Z"
