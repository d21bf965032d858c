"""The database part of a backup: ``pg_dump --format=custom`` out, ``pg_restore`` back in.

A plain SQL dump can only be restored through ``psql``, which executes meta-commands: a line
``\\! cmd`` in a dump runs ``cmd`` as the operator. ``pg_restore`` talks to the server directly
and has no meta-commands, so ``database.dump`` is the only file a restore reads, and nothing
from a backup ever goes through ``psql``.

What the archive may hold is an allow-list of ``pg_restore --list`` entry types, checked when
the backup is made (a database that holds anything else cannot be backed up by this tool) and
again before every restore. It is what this application's data consists of: tables and their
rows, sequences and their values, column defaults, constraints and indexes, all in the
``public`` schema. Refused, because restoring them runs code or changes more than the data:
FUNCTION, PROCEDURE, AGGREGATE, TRIGGER, EVENT TRIGGER, RULE, EXTENSION, LANGUAGE, VIEW and
MATERIALIZED VIEW (their queries call functions), CAST, OPERATOR, TYPE and DOMAIN (input
functions and checks), FOREIGN DATA WRAPPER and SERVER, PUBLICATION and SUBSCRIPTION, ACL and
DEFAULT ACL (privileges are not restored: ``--no-privileges``), and any other schema. The lab's
schema needs none of them; a release that adds one must add its type here, with the reason.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from plugins import redaction
from plugins.backup_manifest import BackupError

ALLOWED_ENTRIES = ("TABLE DATA", "TABLE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SEQUENCE",
                   "DEFAULT", "FK CONSTRAINT", "CHECK CONSTRAINT", "CONSTRAINT", "INDEX")
ALLOWED_SCHEMA = "public"
_ENTRY = re.compile(r"^\d+; \d+ \d+ (.+)$")


def run_tool(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
             user: str | None = None, stdin: Any = None) -> subprocess.CompletedProcess[bytes]:
    """A local tool with a bounded time; a failure is a BackupError with its last lines."""
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=timeout, user=user,
                                env={**os.environ, **(env or {})}, stdin=stdin)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{Path(cmd[0]).name} did not finish within {timeout:g}s") from exc
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} not found (set [backup] pg_bin)") from exc
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BackupError(redaction.redact(f"{Path(cmd[0]).name} failed ({result.returncode}): "
                                           + " | ".join(tail)))
    return result


def _connection(conninfo: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """``--dbname`` as a connection string (a dbname with ``=`` stays a name) and the
    password in PGPASSWORD, never on the command line."""
    keys = {k: conninfo[k] for k in ("host", "port", "dbname", "user") if conninfo.get(k)}
    env = {"PGCONNECT_TIMEOUT": "10"}
    if conninfo.get("password"):
        env["PGPASSWORD"] = str(conninfo["password"])
    return ["--no-password", f"--dbname={make_conninfo(**keys)}"], env


def dump_database(pg_dump: str, conninfo: dict[str, Any], target: Path, timeout: float,
                  compress: int = 6) -> None:
    """pg_dump's custom format, without owners or grants (restorable into any database);
    ``compress=0`` leaves the rows as plain bytes in the archive (the tests edit them)."""
    args, env = _connection(conninfo)
    run_tool([pg_dump, *args, "--format=custom", "--no-owner", "--no-privileges",
              f"--compress={compress}", f"--file={target}"], timeout, env=env)


def check_entries(pg_restore: str, dump: Path, timeout: float = 60) -> int:
    """Refuse an archive with any entry outside the allow-list; returns the entry count."""
    try:
        listing = run_tool([pg_restore, "--list", str(dump)], timeout).stdout.decode(
            errors="replace")
    except BackupError as exc:
        raise BackupError(f"{dump.name}: not an archive pg_restore can read ({exc})") from exc
    count = 0
    for line in listing.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = _ENTRY.match(line)
        entry = match.group(1) if match else ""
        kind = next((k for k in ALLOWED_ENTRIES if entry.startswith(k + " ")), None)
        shown = redaction.redact(line[:160])
        if kind is None:
            raise BackupError(f"{dump.name}: entry '{shown}' is not part of a data backup of "
                              "this application (allowed: " + ", ".join(ALLOWED_ENTRIES)
                              + "), refused")
        schema = entry[len(kind) + 1:].split(" ", 1)[0]
        if schema != ALLOWED_SCHEMA:
            raise BackupError(f"{dump.name}: entry '{shown}' is in schema '{schema}', not "
                              f"'{ALLOWED_SCHEMA}', refused")
        count += 1
    if count == 0:
        raise BackupError(f"{dump.name}: the archive holds no entries")
    return count


def restore_dump(pg_restore: str, dump: Path, conninfo: dict[str, Any], timeout: float) -> int:
    """Check the archive's entries, then pg_restore it in one transaction that stops at the
    first error (all restored, or nothing); returns the number of entries."""
    count = check_entries(pg_restore, dump)
    args, env = _connection(conninfo)
    run_tool([pg_restore, *args, "--single-transaction", "--exit-on-error", "--no-owner",
              "--no-privileges", str(dump)], timeout, env=env)
    return count
