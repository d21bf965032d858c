"""A ``[[hosts]]`` entry over testinfra ``ssh://`` whose host never answers: the pre-deploy host
check is an *error* (could not run) within seconds, never a hang nor a failure.

No sshd is needed: the "host" is a listener this test opens on loopback, which accepts the TCP
connection (the kernel does) and never sends the SSH banner. Read-only against the lab's
profile: no lab lock.
"""
from __future__ import annotations

import socket
import time

from plugins import hosts
from tests.labctl import run_suite
from tests.profile_variants import lab_variant

CHECK = "suites/pre_deploy/test_host.py"


def test_silent_ssh_host_is_an_error_within_seconds(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        connection = f"ssh://127.0.0.1:{listener.getsockname()[1]}"
        profile = lab_variant(tmp_path, "labssh",
                              {'connection = "local://"': f'connection = "{connection}"'})
        started = time.monotonic()
        run = run_suite(CHECK, "--env", str(profile), "-k", "test_process_running and postgres",
                        tmp_path=tmp_path, timeout=60)
        elapsed = time.monotonic() - started
    results = run.results["results"]
    assert [r["outcome"] for r in results] == ["error"], run.messages()
    assert f"could not run: {connection}: ssh:" in results[0]["message"], run.messages()
    assert "timed out" in results[0]["message"]
    assert results[0]["duration_s"] < hosts.SSH_CONNECT_TIMEOUT_S + 3, results[0]
    assert elapsed < 30, elapsed
    print(f"silent ssh host: pre_deploy host check error in {results[0]['duration_s']:.1f}s "
          f"(run {elapsed:.1f}s)")
