"""Backups of the real lab: the seed's layout, its listing, the test-restore, and refusals.

A partial backup (a file missing) and a corrupted one (one byte changed) must be refused with
a message naming the file before anything is restored: Redis keeps running with the same pid
and the data is unchanged. A restore whose result differs from the backup's fingerprint must
fail loudly, listing the difference.
"""
from __future__ import annotations

import json
import stat
import subprocess
import sys

from plugins import backup_dump, backup_manifest, backups
from tests.labctl import run_suite
from tests.suites.backup_lab import lab_profile, platform_lab, redis_pid  # noqa: F401 - fixture

SEED_FIELDS = ("version", "date", "deployed_by", "hostname", "git_commit", "git_branch",
               "backup_path", "status")


def backups_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m plugins.backups --env lab ...`` as an operator runs it (BACKUP_DIR inherited)."""
    return subprocess.run([sys.executable, "-m", "plugins.backups", "--env", "lab", *args],
                          capture_output=True, text=True, timeout=120)


def test_backup_has_the_seed_layout(platform_lab):
    backup = platform_lab
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o700
    for name in backups.REQUIRED:
        mode = stat.S_IMODE((backup.path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {mode:o}"
    info = json.loads((backup.path / "deployment-info.json").read_text())
    assert all(info.get(key) for key in SEED_FIELDS), info
    assert info["status"] == "success" and info["version"] == "v1.0.0"
    assert (backup.path / "git-commit.txt").read_text().strip() == info["git_commit"]
    # SHA256SUMS is in sha256sum's own format: the standard tool agrees with it.
    check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=backup.path,
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    listing = backups_cli("--list", "--verify")
    assert listing.returncode == 0, listing.stderr
    assert f"{backup.id}      v1.0.0" in listing.stdout and "✅ Complet" in listing.stdout
    assert "Dernières versions Git:" in listing.stdout and "• v1.2.0" in listing.stdout


def test_suite_restores_latest_backup_identically(platform_lab, tmp_path):
    run = run_suite("suites/backup", tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.with_outcome("passed") == {
        "suites/backup/test_restore.py::test_latest_backup_complete_and_intact",
        "suites/backup/test_restore.py::test_database_restores_identically",
        "suites/backup/test_restore.py::test_redis_restores_identically"}, run.messages()


def test_corrupted_backup_is_refused_before_any_restore(platform_lab, tmp_path):
    backup = platform_lab
    dump = backup.path / "database.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    before, pid = backups.fingerprint(lab_profile()), redis_pid()

    restore = backups_cli("--restore", backup.id, "--force")
    assert restore.returncode == 1
    assert "corrupted: database.dump does not match its SHA-256" in restore.stderr
    assert redis_pid() == pid, "Redis was restarted: the restore began"
    assert backups.compare(before, backups.fingerprint(lab_profile())) == []

    listing = backups_cli("--list", "--verify")
    assert listing.returncode == 1 and "❌ Corrompu" in listing.stdout
    run = run_suite("suites/backup", tmp_path=tmp_path)
    outcomes = run.outcomes()
    assert outcomes["suites/backup/test_restore.py::test_latest_backup_complete_and_intact"] \
        == "failed"
    for name in ("test_database_restores_identically", "test_redis_restores_identically"):
        assert outcomes[f"suites/backup/test_restore.py::{name}"] == "error"
    assert "refusing to restore" in run.messages()


def test_partial_backup_is_refused_before_any_restore(platform_lab):
    backup = platform_lab
    (backup.path / "redis.rdb").unlink()
    pid = redis_pid()
    restore = backups_cli("--restore", backup.id, "--force")
    assert restore.returncode == 1
    assert f"backup {backup.id} is partial: missing redis.rdb" in restore.stderr
    assert redis_pid() == pid
    listing = backups_cli("--list")
    assert "⚠️ Partiel" in listing.stdout


def test_restore_without_confirmation_is_refused(platform_lab):
    restore = backups_cli("--restore", platform_lab.id)
    assert restore.returncode == 1
    assert "confirmation needed" in restore.stderr


def resign(backup: backups.Backup) -> None:
    """Recompute SHA256SUMS and the HMAC manifest with the lab's key, as only the key's holder
    can: the backup passes verification whatever was changed."""
    files = {n: backup_manifest.file_digest(backup.path / n) for n in backups.DATA_FILES}
    (backup.path / "SHA256SUMS").write_text("".join(f"{files[n][1]}  {n}\n" for n in files))
    (backup.path / "MANIFEST.hmac").write_text(
        backup_manifest.sign(backups.hmac_key(lab_profile()), backup.id, files))


def test_live_restore_fails_loudly_on_any_difference(platform_lab):
    """A fingerprint that no longer matches what the backup holds (re-signed with the key, so
    the backup itself passes verification): the restore runs, then reports the difference."""
    backup = platform_lab
    recorded = backup.fingerprint()
    recorded["database"]["public.users"]["rows"] += 1
    (backup.path / "fingerprint.json").write_text(json.dumps(recorded))
    resign(backup)

    restore = backups_cli("--restore", backup.id, "--force")
    assert restore.returncode == 1, restore.stdout
    assert "restored data differs from the backup's fingerprint" in restore.stderr
    users = recorded["database"]["public.users"]["rows"]
    assert f"database: public.users: {users - 1} rows instead of {users}" in restore.stderr


def test_scratch_restore_detects_a_dump_that_differs(platform_lab, tmp_path):
    """The test-restore compares content, not only row counts: one changed value is caught.
    The dump is re-made uncompressed (its rows are then plain bytes in the archive), one value
    changed in place, and the backup re-signed with the key."""
    backup = platform_lab
    dump = backup.path / "database.dump"
    cfg = backups.settings(lab_profile())
    backup_dump.dump_database(cfg.tool("pg_dump"), backups.pg_params(lab_profile(), 10),
                              dump, 60, compress=0)
    data = dump.read_bytes()
    assert data.count(b"Medecin Test") == 1
    dump.write_bytes(data.replace(b"Medecin Test", b"Medecin Tset"))
    resign(backup)

    run = run_suite("suites/backup", tmp_path=tmp_path)
    outcome = run.outcomes()["suites/backup/test_restore.py::test_database_restores_identically"]
    assert outcome == "failed", run.messages()
    assert "public.mailboxes: same 2 rows but different content" in run.messages()
