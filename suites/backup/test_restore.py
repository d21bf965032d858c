"""The seed's monthly test-restore: the latest backup restores to exactly what it recorded.

The backup must first pass verification: complete, matching its SHA-256 sums and its HMAC
manifest, its dump holding only data entries (a partial, corrupted or tampered one is refused
before anything is restored). Its database dump is then restored by pg_restore into a scratch
database and its Redis snapshot loaded by a scratch server; both must equal the fingerprint
taken when the backup was made: per-table row counts and content checksums, Redis keys and
values. A backup that cannot be restored identically is not a backup.
"""
from __future__ import annotations

import time

import psycopg
import pytest

from plugins import backup_fingerprint, backups

pytestmark = pytest.mark.service("backup")


@pytest.mark.requirement("LIFE-BACKUP-INTEGRITY")
def test_latest_backup_complete_and_intact(backup_settings, backup_key, record):
    found = backups.list_backups(backup_settings.dir)
    assert found, f"no backup in {backup_settings.dir} (from {backup_settings.dir_origin})"
    latest = found[0]
    record.measure("latest backup", latest.id)
    record.measure("size", backups.human_size(latest.size()))
    try:
        backups.verify(latest, backup_key, backup_settings)
    except backups.BackupError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.requirement("SEED-OPS-4")
def test_database_restores_identically(latest_backup, scratch_postgres, backup_settings, record):
    started = time.monotonic()
    backups.load_dump(latest_backup.path / "database.dump", scratch_postgres, backup_settings)
    record.measure("database restore", round(time.monotonic() - started, 2), "s")
    with psycopg.connect(**scratch_postgres, connect_timeout=10) as conn:
        restored = backup_fingerprint.database_fingerprint(conn)
    expected = latest_backup.fingerprint()["database"]
    record.measure("tables", len(restored))
    record.measure("rows", sum(t["rows"] for t in restored.values()))
    differences = backup_fingerprint.compare_database(expected, restored)
    assert not differences, (f"backup {latest_backup.id}: the restored database differs from "
                             "the backup's fingerprint: " + "; ".join(differences))


@pytest.mark.requirement("SEED-OPS-4")
def test_redis_restores_identically(latest_backup, scratch_redis, record):
    restored = backup_fingerprint.redis_fingerprint(scratch_redis)
    expected = latest_backup.fingerprint()["redis"]
    record.measure("redis keys", len(restored))
    differences = backup_fingerprint.compare_redis(expected, restored)
    assert not differences, (f"backup {latest_backup.id}: the restored Redis snapshot differs "
                             "from the backup's fingerprint: " + "; ".join(differences))
