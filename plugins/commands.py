"""The profile's command templates as argument lists, run bounded on the platform host.

Why argument lists: a template such as ``{python} -m lab deploy {version}`` used to be filled
with shell-quoted values and handed to ``sh -c``, so a template that quotes a placeholder
(``'{version}'``) re-opened shell injection. Here the template is split first
(:func:`shlex.split`, the profile author's words), then each placeholder is substituted inside
its own argument, in one pass: a value with spaces, quotes or ``;`` stays one argument and is
never parsed again. Nothing runs through a shell on this side.

Why bounded: every command runs under a wall-clock time-out. On ``local://`` the argument list
is executed directly, in a session of its own, so a time-out kills its whole process group
(children included). On a remote testinfra host the list is joined with :func:`shlex.join`
(every argument quoted) and run under coreutils ``timeout``, which kills its process group on
the host (:func:`plugins.hosts.run_command`).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from plugins import hosts

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
KILL_GRACE_S = 5.0               # SIGTERM to the group, then SIGKILL after this


class CommandTimedOut(RuntimeError):
    """The command did not finish within its time-out; it was killed (its process group)."""


def build_argv(template: str, values: Mapping[str, str]) -> list[str]:
    """``shlex.split(template)``, then ``{name}`` placeholders replaced inside each argument.

    Only the names in ``values`` are replaced (others stay as written); a substituted value is
    never split nor substituted again. ValueError when the template is not a command line.
    """
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ValueError(f"not a command line ({exc}): {template!r}") from None
    if not words:
        raise ValueError("empty command")

    def fill(match: re.Match[str]) -> str:
        return values.get(match[1], match[0])

    return [PLACEHOLDER.sub(fill, word) for word in words]


def run(connection: str, argv: Sequence[str], timeout: float,
        env: Mapping[str, str] | None = None) -> hosts.CommandResult:
    """Run ``argv`` on the host named by a testinfra connection, bounded by ``timeout``.

    CommandTimedOut when it did not finish in time (killed with its process group).
    """
    if connection == "local://":
        return run_local(argv, timeout, env)
    result = hosts.run_command(hosts.connect(connection), shlex.join(argv), timeout,
                               dict(env) if env else None)
    if result.rc in (124, 137):          # coreutils timeout: timed out (137: killed after)
        raise CommandTimedOut(f"`{shlex.join(argv)}` did not finish within {timeout:g}s on "
                              f"{connection} (killed by timeout, exit {result.rc})")
    return result


def run_local(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> hosts.CommandResult:
    """Execute ``argv`` here (no shell) in its own session; on time-out, or if this call is
    interrupted (a phase deadline), its whole process group is killed."""
    command = shlex.join(argv)
    started = time.monotonic()
    process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace", cwd=cwd,
                               env={**os.environ, **env} if env else None,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise CommandTimedOut(f"`{command}` did not finish within {timeout:g}s: killed "
                              "(process group)") from None
    except BaseException:
        kill_group(process)
        raise
    return hosts.CommandResult(command, process.returncode, stdout, stderr,
                               time.monotonic() - started)


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the process group we started, SIGKILL it after a grace; never blocks longer
    (a daemon that escaped the group and holds our pipes is not waited for)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            if sig is signal.SIGTERM:
                os.killpg(process.pid, signal.SIGKILL)   # children that outlived the leader
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
