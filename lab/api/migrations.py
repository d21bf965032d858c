"""Schema migrations: ``migrations/NNNN_name.sql`` applied in order, recorded with a checksum.

Each file runs in its own transaction and gets a row in ``schema_migrations``; a session
advisory lock keeps two processes (the API starting, ``python -m lab.api migrate``) from
applying the same file twice. A recorded file whose content changed since is an error, not a
silent re-run: the schema would no longer be what the file says. Rolling back a release means
restoring the database dump taken before it (the seed's rollback), so there are no "down" files;
an older release on a newer schema shows it in ``/version`` (``schema`` != ``schema_expected``).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from lab.api import MIGRATIONS_DIR

FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
LOCK_KEY = 0x6D7373616E7465   # "mssante": any constant shared by every API process

_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str        # "0001"
    name: str           # "init"
    sql: str
    checksum: str       # sha256 of the file

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of this release, in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        text = path.read_text()
        found.append(Migration(match["version"], match["name"], text,
                               hashlib.sha256(text.encode()).hexdigest()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


def expected(directory: Path = MIGRATIONS_DIR) -> str | None:
    """The schema this release expects: its latest migration."""
    migrations = available(directory)
    return migrations[-1].label if migrations else None


def current(conn: psycopg.Connection) -> str | None:
    """The latest migration recorded in the database (None on an empty database)."""
    found = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    assert found is not None, "a SELECT without FROM returns exactly one row"
    if found[0] is None:
        return None
    row = conn.execute("SELECT version || '_' || name FROM schema_migrations "
                       "ORDER BY version DESC LIMIT 1").fetchone()
    return row[0] if row else None


def apply_pending(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the files not yet recorded; return their labels. ``conn`` must be in autocommit."""
    migrations = available(directory)
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(_TABLE)
        recorded: dict[str, str] = dict(
            conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        applied = []
        for migration in migrations:
            if migration.version in recorded:
                if recorded[migration.version] != migration.checksum:
                    raise MigrationError(f"{migration.label}.sql changed after it was applied")
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute("INSERT INTO schema_migrations (version, name, checksum) "
                             "VALUES (%s, %s, %s)",
                             (migration.version, migration.name, migration.checksum))
            applied.append(migration.label)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
