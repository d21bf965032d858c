"""required_env on the platform (issue 13 item 7): the platform's env file, then the
environment of its port holder; never mssante-check's own environment. On a scripted host
(tests/unit/test_hosts.py); the real lab is in tests/suites/test_pre_deploy.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugins import profile
from plugins.platform_env import PlatformEnv
from probes.errors import CouldNotRun
from tests.unit.test_hosts import ScriptedHost, ss_line

PROFILE = """
[environment]
name = "p"
kind = "test"
required_env = ["DATABASE_URL"]
platform_env_file = "/opt/app/.env"
platform_env_port = 3000
env_file = "suite.env"

[[hosts]]
name = "platform"
connection = "local://"
"""


def platform(tmp_path: Path, host: ScriptedHost) -> PlatformEnv:
    (tmp_path / "suite.env").write_text("DATABASE_URL=set-for-the-suite\nNODE_ENV=production\n")
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    return PlatformEnv(profile.load(str(path)), host, "platform")


def test_the_env_file_is_read_first_and_the_process_only_when_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("ONLY_IN_THE_SUITE", "x")
    host = ScriptedHost([ss_line(3000, ("node", 7))], procs={7: b"FROM_PROCESS=1\0EMPTY=\0"},
                        files={"/opt/app/.env": "# settings\nDATABASE_URL=postgres://db\nBLANK=\n"})
    env = platform(tmp_path, host)
    assert env.lookup("DATABASE_URL") == ("postgres://db", "platform:/opt/app/.env")
    assert host.calls == 0                               # the file had it: no process read
    assert env.lookup("FROM_PROCESS") == (
        "1", "platform: environment of the process holding port 3000 (node, pid 7)")
    assert env.lookup("EMPTY") is None and env.lookup("BLANK") is None
    assert env.lookup("ONLY_IN_THE_SUITE") is None       # the suite's environment never counts
    assert env.lookup("NODE_ENV") is None                # nor its env_file
    assert env.searched() == ("platform:/opt/app/.env; platform: environment of the process "
                              "holding port 3000 (node, pid 7)")


def test_a_missing_env_file_is_not_set_and_an_unreadable_source_is_could_not_run(tmp_path):
    host = ScriptedHost([ss_line(3000, ("node", 7))], procs={7: b"A=1\0"})
    env = platform(tmp_path, host)
    assert env.lookup("DATABASE_URL") is None
    assert "platform:/opt/app/.env (does not exist)" in env.searched()
    stopped = platform(tmp_path, ScriptedHost([""]))
    with pytest.raises(CouldNotRun, match="no process holds port 3000"):
        stopped.lookup("DATABASE_URL")
