"""A backup cannot run code, and cannot be tampered with unnoticed (issue 14 item 4).

Against the real lab (its PostgreSQL, real pg_dump/pg_restore, its Redis), with backups in a
temporary BACKUP_DIR: every tampered backup is refused by ``--verify`` and ``--restore`` with
one line naming the file and the reason, before anything is touched. "Nothing touched" is
proved by the Redis pid (a restore restarts Redis), the OID of schema public (a restore
replaces it) and the data fingerprint; "nothing executed" by a marker file that a ``\\!`` in a
dump would create if it ever reached psql.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plugins import backup_dump, backup_manifest, backups
from plugins import profile as profiles
from probes import redaction as redaction_registry
from tests.profile_variants import PRODUCTION, lab_variant
from tests.suites.backup_lab import lab_profile, platform_lab, redis_pid  # noqa: F401 - fixture

KEY_VAR = "MSSANTE_LAB_BACKUP_HMAC_KEY"


def cli(*args: str, env: str = "lab", extra_env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """``python -m plugins.backups --env ENV ...`` as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "plugins.backups", "--env", env, *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(extra_env or {})})


def public_oid() -> int:
    with backups.pg_connect(lab_profile(), 10) as conn:
        row = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = 'public'").fetchone()
    assert row is not None
    return int(row[0])


class Untouched:
    """The live platform's state before a refused restore, to compare after it."""

    def __init__(self) -> None:
        self.pid, self.oid = redis_pid(), public_oid()
        self.data = backups.fingerprint(lab_profile())

    def check(self) -> None:
        assert redis_pid() == self.pid, "Redis was restarted: the restore began"
        assert public_oid() == self.oid, "schema public was replaced: the restore began"
        assert backups.compare(self.data, backups.fingerprint(lab_profile())) == []


def recompute_sums(backup: backups.Backup, names: tuple[str, ...] = backups.DATA_FILES) -> None:
    """What someone without the key can do: rewrite SHA256SUMS to match the edited files."""
    sums = "".join(f"{backups.sha256_file(backup.path / n)}  {n}\n" for n in names)
    (backup.path / "SHA256SUMS").write_text(sums)


def resign(backup: backups.Backup, key: bytes | None = None) -> None:
    """SHA256SUMS and MANIFEST.hmac recomputed (with the lab's key unless ``key``): isolates
    the content checks behind the HMAC, as if the key had leaked."""
    recompute_sums(backup)
    files = {n: backup_manifest.file_digest(backup.path / n) for n in backups.DATA_FILES}
    key = key or backups.hmac_key(lab_profile())
    (backup.path / "MANIFEST.hmac").write_text(backup_manifest.sign(key, backup.id, files))


def assert_refused(backup: backups.Backup, *expected: str) -> None:
    """--list --verify and --restore --force both refuse, each message holding ``expected``;
    one line each, no traceback, nothing restored."""
    before = Untouched()
    listing = cli("--list", "--verify")
    assert listing.returncode == 1, listing.stdout + listing.stderr
    assert "Traceback" not in listing.stdout + listing.stderr
    restore = cli("--restore", backup.id, "--force")
    assert restore.returncode == 1, restore.stdout + restore.stderr
    assert "Traceback" not in restore.stderr and len(restore.stderr.strip().splitlines()) == 1
    for text in expected:
        assert text in listing.stdout, listing.stdout
        assert text in restore.stderr, restore.stderr
    assert "plan:" not in restore.stdout
    before.check()


@pytest.fixture
def marker() -> Iterator[Path]:
    path = Path(f"/tmp/mssante-check-marker-{uuid.uuid4().hex}")
    yield path
    path.unlink(missing_ok=True)


# --- code in a dump ---------------------------------------------------------------------------
def test_dump_with_a_shell_escape_is_refused_and_never_run(platform_lab, marker):
    """A plain SQL script with ``\\!`` put in place of database.dump, SHA256SUMS recomputed:
    the HMAC refuses it; re-signed with the key, pg_restore --list refuses it (not an
    archive). psql is never used, so the command never runs either way."""
    backup = platform_lab
    script = f"\\! touch {marker}\nSELECT 1;\n".encode()
    (backup.path / "database.dump").write_bytes(script)
    recompute_sums(backup)
    assert_refused(backup, "MANIFEST.hmac does not authenticate its files")
    resign(backup)
    assert_refused(backup, "database.dump: not an archive pg_restore can read")
    assert not marker.exists()


def test_plain_sql_dump_next_to_the_backup_is_refused(platform_lab, marker):
    """A database.sql.gz (the seed's plain dump) with ``\\!``, listed in SHA256SUMS: an
    unexpected file, refused; nothing restores from it."""
    backup = platform_lab
    (backup.path / "database.sql.gz").write_bytes(gzip.compress(f"\\! touch {marker}\n".encode()))
    recompute_sums(backup, (*backups.DATA_FILES, "database.sql.gz"))
    assert_refused(backup, "unexpected file(s) database.sql.gz")
    assert not marker.exists()


FORBIDDEN = {
    "function": ("CREATE FUNCTION public.mssante_check_probe() RETURNS integer LANGUAGE sql "
                 "AS 'SELECT 1'", "DROP FUNCTION public.mssante_check_probe()",
                 "FUNCTION public mssante_check_probe", "is not part of a data backup"),
    "view": ("CREATE VIEW public.mssante_check_probe AS SELECT 1 AS one",
             "DROP VIEW public.mssante_check_probe", "VIEW public mssante_check_probe",
             "is not part of a data backup"),
    "other-schema": ("CREATE SCHEMA mssante_check_probe; "
                     "CREATE TABLE mssante_check_probe.t (id integer)",
                     "DROP SCHEMA mssante_check_probe CASCADE", "SCHEMA - mssante_check_probe",
                     "is not part of a data backup"),
}


@pytest.mark.parametrize("case", FORBIDDEN)
def test_dump_with_more_than_data_is_refused(platform_lab, case):
    """A database that holds a FUNCTION, a VIEW or another schema (what a restore would run or
    create beyond the data): the backup is refused when it is made, and a dump holding one,
    even correctly signed, is refused on restore."""
    create, drop, entry, reason = FORBIDDEN[case]
    backup = platform_lab
    cfg = backups.settings(lab_profile())
    with backups.pg_connect(lab_profile(), 10) as conn:
        conn.execute(create)
        conn.commit()
        try:
            backup_dump.dump_database(cfg.tool("pg_dump"), backups.pg_params(lab_profile(), 10),
                                      backup.path / "database.dump", 60)
            created = cli("--create")
        finally:
            conn.execute(drop)
            conn.commit()
    assert created.returncode == 1, created.stdout + created.stderr
    assert entry in created.stderr and reason in created.stderr, created.stderr
    assert os.listdir(cfg.dir) == [backup.id], "a refused create left something behind"
    resign(backup)
    assert_refused(backup, entry, reason)


def test_live_restore_is_all_or_nothing(platform_lab, tmp_path):
    """pg_restore killed by its time-out after schema public was moved aside: the old schema is
    put back (same OID, same data), Redis is never touched."""
    path = lab_variant(tmp_path, "lab", {"\ntimeout_s = 120\n": "\ntimeout_s = 0.02\n"})
    before = Untouched()
    run = cli("--restore", platform_lab.id, "--force", env=str(path))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "pg_restore did not finish within" in run.stderr, run.stderr
    before.check()
    with backups.pg_connect(lab_profile(), 10) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                            (backups.ASIDE_SCHEMA,)).fetchone() == (0,)


# --- authentication ---------------------------------------------------------------------------
def test_recomputed_sums_are_refused(platform_lab):
    """An edited fingerprint with SHA256SUMS recomputed (what the old check accepted)."""
    backup = platform_lab
    recorded = backup.fingerprint()
    recorded["database"]["public.users"]["rows"] += 1
    (backup.path / "fingerprint.json").write_text(json.dumps(recorded))
    recompute_sums(backup)
    assert_refused(backup, "MANIFEST.hmac does not authenticate its files")


def test_manifest_signed_with_another_key_is_refused(platform_lab):
    backup = platform_lab
    (backup.path / "version.txt").write_text("v9.9.9\n")
    resign(backup, key=b"not the lab's key, long enough")
    assert_refused(backup, "MANIFEST.hmac does not authenticate its files")


def test_backup_renamed_to_look_newer_is_refused(platform_lab):
    """The id is inside the HMAC: an authentic backup moved to a newer name is refused."""
    backup = platform_lab
    newer = backup.path.with_name("29991231_235959")
    backup.path.rename(newer)
    assert_refused(backups.Backup(newer.name, newer), "MANIFEST.hmac does not authenticate")


def test_no_key_means_no_backup_no_verify_no_restore(platform_lab, tmp_path):
    """The variable hmac_key_env names is unset: one line, exit 4, nothing made or restored."""
    path = lab_variant(tmp_path, "lab", {
        f'hmac_key_env = "{KEY_VAR}"': 'hmac_key_env = "MSSANTE_TEST_UNSET_BACKUP_KEY"'})
    before = Untouched()
    entries = sorted(os.listdir(platform_lab.path.parent))
    for args in (("--create",), ("--list", "--verify"), ("--restore", platform_lab.id, "--force")):
        run = cli(*args, env=str(path))
        assert run.returncode == 4, (args, run.stdout, run.stderr)
        assert run.stderr.strip() == (
            "error: environment variable MSSANTE_TEST_UNSET_BACKUP_KEY (named by lab.toml "
            "[backup] hmac_key_env) is not set: cannot sign or verify a backup"), run.stderr
    assert sorted(os.listdir(platform_lab.path.parent)) == entries
    before.check()
    assert cli("--list", env=str(path)).returncode == 0, "listing needs no key"


def test_config_file_holding_the_key_is_not_archived(platform_lab, tmp_path):
    secrets = profiles.ENV_DIR.parent.parent / ".lab" / "secrets.env"
    nginx = f'"{profiles.ENV_DIR}/../../.lab/nginx/nginx.conf"]'
    path = lab_variant(tmp_path, "lab", {nginx: f'{nginx[:-1]}, "{secrets}"]'})
    run = cli("--create", env=str(path))
    assert run.returncode == 1 and "holds the backup HMAC key" in run.stderr, run.stderr
    assert [b.id for b in backups.list_backups(platform_lab.path.parent)] == [platform_lab.id]


# --- links, devices, archive members, sizes ---------------------------------------------------
def test_symlink_in_the_backup_is_refused(platform_lab, tmp_path):
    backup = platform_lab
    outside = tmp_path / "outside.rdb"
    outside.write_bytes((backup.path / "redis.rdb").read_bytes())
    (backup.path / "redis.rdb").unlink()
    (backup.path / "redis.rdb").symlink_to(outside)
    assert_refused(backup, "redis.rdb: a symbolic link, refused")


def test_hard_link_in_the_backup_is_refused(platform_lab, tmp_path):
    backup = platform_lab
    os.link(backup.path / "git-commit.txt", tmp_path / "elsewhere.txt")
    assert_refused(backup, "git-commit.txt: has 2 hard links, refused")


def test_device_in_the_backup_is_refused(platform_lab):
    backup = platform_lab
    (backup.path / "version.txt").unlink()
    os.mknod(backup.path / "version.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null
    assert_refused(backup, "version.txt: a character device, refused")


def test_backup_folder_linked_outside_backup_dir_is_not_followed(platform_lab, tmp_path):
    """A YYYYMMDD_HHMMSS entry that is a link to a (perfectly valid) backup elsewhere."""
    backup = platform_lab
    elsewhere = tmp_path / "elsewhere"
    backup.path.rename(elsewhere)
    backup.path.symlink_to(elsewhere, target_is_directory=True)
    assert_refused(backup, "the folder is a symbolic link")


@pytest.mark.parametrize("member", ["symlink", "hardlink", "absolute", "dotdot", "device"])
def test_archive_member_outside_the_folder_is_refused(platform_lab, member):
    """config.tar.gz with one hostile member, the backup re-signed with the key: the archive
    check itself refuses it (a restore would write outside the configuration paths)."""
    backup = platform_lab
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo({"absolute": "/etc/cron.d/evil",
                                "dotdot": "work/../../etc/cron.d/evil"}.get(member, "etc/x"))
        if member == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        elif member == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "/etc/shadow"
        elif member == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        payload = b"* * * * * root touch /tmp/pwned\n" if info.type == tarfile.REGTYPE else b""
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    (backup.path / "config.tar.gz").write_bytes(buffer.getvalue())
    resign(backup)
    expected = {"symlink": "is a symbolic link", "hardlink": "is a hard link",
                "absolute": "lies outside the archive's folder",
                "dotdot": "lies outside the archive's folder",
                "device": "is a device, pipe or other special file"}[member]
    assert_refused(backup, "config.tar.gz: member", expected)


def test_huge_deployment_info_is_refused_and_never_printed(platform_lab):
    backup = platform_lab
    filler = "HUGE-DEPLOYMENT-INFO-" * 60_000               # 1.2 MB
    (backup.path / "deployment-info.json").write_text(json.dumps(
        {"status": "success", "version": filler}))
    assert_refused(backup, "deployment-info.json:", "more than the 64 KiB")
    listing = cli("--list", "--verify")
    assert "HUGE-DEPLOYMENT-INFO-" not in listing.stdout + listing.stderr
    assert len(listing.stdout) < 4000


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", '{"status": "hacked"}',
                                     '{"status": "success", "version": {"a": 1}}'])
def test_malformed_deployment_info_is_listed_invalid(platform_lab, content):
    """``--list --verify`` lists the backup as invalid with the reason and exits 1, never a
    traceback; ``--list`` alone still lists it."""
    backup = platform_lab
    (backup.path / "deployment-info.json").write_text(content)
    listing = cli("--list", "--verify")
    assert listing.returncode == 1 and "Traceback" not in listing.stderr, listing.stderr
    assert "❌ Corrompu" in listing.stdout and "deployment-info.json" in listing.stdout
    plain = cli("--list")
    assert plain.returncode == 0 and backup.id in plain.stdout, plain.stderr
    assert_refused(backup, "deployment-info.json")


# --- create and restore -----------------------------------------------------------------------
def test_failed_create_leaves_nothing_and_keeps_the_folder_mode(platform_lab, tmp_path):
    """PostgreSQL unreachable: --create fails, leaves no folder, the latest backup is still
    the last good one, and the existing BACKUP_DIR keeps its 0755."""
    root = platform_lab.path.parent
    os.chmod(root, 0o755)
    path = lab_variant(tmp_path, "lab", {"port = 10432\n": "port = 1\n"})
    run = cli("--create", env=str(path))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert sorted(os.listdir(root)) == [platform_lab.id]
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    fresh = tmp_path / "new" / "backups"
    run = cli("--create", env=str(path), extra_env={"BACKUP_DIR": str(fresh)})
    assert run.returncode == 1 and os.listdir(fresh) == []


UNREADY = {
    "redis-program": ({'redis_restore_command = "{python} -m lab restore-redis {rdb}"':
                       'redis_restore_command = "/nonexistent/restore-redis {rdb}"'},
                      "redis restore program /nonexistent/restore-redis not found"),
    "postgres-down": ({"port = 10432\n": "port = 1\n"}, "postgres 127.0.0.1:1: not reachable"),
}


@pytest.mark.parametrize("case", UNREADY)
def test_restore_checks_every_target_before_touching_any(platform_lab, tmp_path, case):
    """Redis's restore program missing, or PostgreSQL unreachable: refused before anything
    (the database, Redis) is touched."""
    replacements, expected = UNREADY[case]
    path = lab_variant(tmp_path, "lab", replacements)
    before = Untouched()
    run = cli("--restore", platform_lab.id, "--force", env=str(path))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "refused, nothing was touched" in run.stderr and expected in run.stderr, run.stderr
    before.check()


def test_restore_says_its_plan_before_acting(platform_lab):
    run = cli("--restore", platform_lab.id, "--force")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"plan: restore backup {platform_lab.id} (v1.0.0)"
    assert lines.index("  4. the live data compared with fingerprint.json") < next(
        i for i, line in enumerate(lines) if line.startswith("database: restored"))
    assert "data: identical to the backup" in run.stdout


def test_rollback_auto_never_skips_confirmation_on_production(platform_lab, tmp_path):
    path = lab_variant(tmp_path, "lab", PRODUCTION)
    before = Untouched()
    auto = {"ROLLBACK_AUTO": "true"}
    run = cli("--restore", platform_lab.id, env=str(path), extra_env=auto)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "production profile: --restore needs --confirm-prod" in run.stderr
    run = cli("--restore", platform_lab.id, "--confirm-prod", env=str(path), extra_env=auto)
    assert run.returncode == 1 and "confirmation needed: pass --force" in run.stderr, run.stderr
    before.check()
    test_kind = cli("--restore", platform_lab.id, extra_env=auto)   # the lab: test kind
    assert test_kind.returncode == 0, test_kind.stderr


# --- the version lookup -----------------------------------------------------------------------
class _Trickle(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(60):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    def log_message(self, *args: object) -> None:
        pass


def test_version_lookup_is_bounded_against_a_trickling_api(tmp_path):
    """No git checkout: the backup asks the API; one that trickles its body cannot hold it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = lab_variant(tmp_path, "lab", {'url = "https://localhost:10443"':
                                             f'url = "http://127.0.0.1:{server.server_port}"'})
        started = time.monotonic()
        assert backups.served_version(profiles.load(str(path)), limit_s=2) == "unknown"
        assert time.monotonic() - started < 3.5
    finally:
        server.shutdown()
        server.server_close()


def test_version_lookup_reads_the_served_version(good_lab):
    assert backups.served_version(lab_profile()) == "1.0.0"


def test_unit_key_rules(tmp_path, monkeypatch):
    # A fresh registry: the keys tried here ("short") are registered for redaction, and must
    # not mask the words of this test session's own terminal output.
    monkeypatch.setattr(redaction_registry, "_registry", redaction_registry._Registry())  # noqa: SLF001 - a fresh registry
    path = lab_variant(tmp_path, "lab")
    monkeypatch.setenv(KEY_VAR, "short")
    with pytest.raises(backup_manifest.KeyMissing, match="shorter than 16 characters"):
        backups.hmac_key(profiles.load(str(path)))
    monkeypatch.setenv(KEY_VAR, "k" * 32)
    assert backups.hmac_key(profiles.load(str(path))) == b"k" * 32
