"""The last backup is recent and complete: the seed's daily backups really ran.

Complete means every file of the backup's structure present, matching its SHA-256 sums and
its HMAC manifest, holding nothing a restore must refuse (the same verification a restore
performs before touching anything). Without the HMAC key the check cannot run: an error.
"""
from __future__ import annotations

import datetime as dt

import pytest

from plugins import backups

pytestmark = pytest.mark.service("backup")


@pytest.fixture(scope="module")
def backup_key(env_profile) -> bytes:
    try:
        return backups.hmac_key(env_profile)
    except backups.KeyMissing as exc:
        pytest.fail(f"could not run: {exc}", pytrace=False)


@pytest.mark.requirement("LIFE-PRE-BACKUP")
def test_latest_backup_recent_and_complete(env_profile, backup_key, record):
    cfg = backups.settings(env_profile)
    found = backups.list_backups(cfg.dir)
    assert found, f"no backup in {cfg.dir} (from {cfg.dir_origin})"
    latest = found[0]
    taken = dt.datetime.strptime(latest.id, "%Y%m%d_%H%M%S").replace(tzinfo=dt.UTC)
    age_h = (dt.datetime.now(dt.UTC) - taken).total_seconds() / 3600
    record.measure("latest backup", latest.id)
    record.measure("latest backup age", round(age_h, 1), "h")
    try:
        backups.verify(latest, backup_key, cfg)
    except backups.BackupError as exc:
        pytest.fail(str(exc), pytrace=False)
    assert age_h <= cfg.max_age_h, (
        f"latest backup {latest.id} is {age_h:.1f} h old (more than {cfg.max_age_h} h)")
