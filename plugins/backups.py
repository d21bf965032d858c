"""Backups before a deployment: creation, listing, integrity, restore, and proof of identity.

Layout (the seed's ``deploy-production.sh`` folders, with the database in pg_dump's custom
format instead of its plain SQL, and four files of ours)::

    BACKUP_DIR/YYYYMMDD_HHMMSS/
        database.dump         pg_dump --format=custom, without owners or grants; restored only
                              with pg_restore (plugins/backup_dump.py says why never psql)
        redis.rdb             Redis snapshot: BGSAVE, then the RDB file copied
        config.tar.gz         the configuration files the profile lists
        version.txt           ``git describe --tags`` of the platform (else the version the API
                              serves): what this backup restores
        git-commit.txt        the platform's full commit hash
        fingerprint.json      (ours) per-table row counts and content checksums, Redis keys
                              with a digest of each value, taken when the backup was made
        SHA256SUMS            (ours) checksums of the files above, ``sha256sum -c`` format
        MANIFEST.hmac         (ours) HMAC-SHA256 of the files' names, sizes and digests, keyed by
                              the variable ``[backup] hmac_key_env`` names
        deployment-info.json  the seed's fields; ``status`` is in_progress, then success,
                              rolled_back or failed (it changes after the backup, so it is not
                              signed: it is size-bounded, parsed, and never trusted for a restore)

Nothing is restored from a backup that fails :func:`verify`: a missing or unexpected file, a
link or device, a metadata file over its size bound, a checksum or an HMAC that does not match,
an archive member outside its folder, a dump entry outside the allow-list. The refusal names the
file before anything is touched. A restore then checks that every target is ready, says what it
will do, and only then acts; afterwards the live data is compared with ``fingerprint.json``.

``BACKUP_DIR`` (the seed's variable) overrides the profile's ``[backup] dir``. Command line::

    python -m plugins.backups --env NAME --list [--verify]   # read-only
    python -m plugins.backups --env NAME --create
    python -m plugins.backups --env NAME --restore ID [--force] [--confirm-prod]

Exit codes: 0 done, 1 refused or failed, 2 not configured, 4 bad input (an unusable profile,
no usable HMAC key, a production restore without ``--confirm-prod``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from plugins import backup_dump, backup_manifest, commands, hosts, redaction
from plugins import profile as profiles
from plugins.backup_dump import run_tool  # noqa: F401 - suites/backup's initdb and pg_ctl
from plugins.backup_fingerprint import compare, database_fingerprint, redis_fingerprint
from plugins.backup_manifest import BackupError, KeyMissing, hmac_key, read_bounded
from plugins.outcomes import wait_until
from plugins.profile import NotConfigured, Profile, ProfileError
from plugins.targets import http_client
from probes import redis as redis_probe
from probes.deadline import deadline
from probes.errors import CouldNotRun

DATA_FILES = ("database.dump", "redis.rdb", "config.tar.gz", "version.txt", "git-commit.txt",
              "fingerprint.json")
SUMS = "SHA256SUMS"
INFO = "deployment-info.json"
MANIFEST = backup_manifest.MANIFEST
REQUIRED = (*DATA_FILES, SUMS, MANIFEST, INFO)
METADATA = ("version.txt", "git-commit.txt", SUMS, MANIFEST, INFO)      # size-bounded
BACKUP_ID = re.compile(r"^\d{8}_\d{6}$")
STATUSES = ("in_progress", "success", "rolled_back", "failed")
SEED_TEXT_FIELDS = ("version", "previous_version", "date", "deployed_by", "hostname",
                    "git_commit", "git_branch", "backup_path", "environment")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
# A live restore moves the current public schema aside (so tables a failed release created or
# renamed do not survive next to the restored ones), restores into a new empty one, then drops
# the old one; if pg_restore fails, the old schema is put back: all restored, or nothing changed.
ASIDE_SCHEMA = "mssante_check_before_restore"
_MOVE_ASIDE = (f"ALTER SCHEMA public RENAME TO {ASIDE_SCHEMA}; "
               "CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
               "GRANT USAGE ON SCHEMA public TO PUBLIC; "
               "COMMENT ON SCHEMA public IS 'standard public schema'")
_PUT_BACK = f"DROP SCHEMA IF EXISTS public CASCADE; ALTER SCHEMA {ASIDE_SCHEMA} RENAME TO public"
_DROP_ASIDE = f"DROP SCHEMA {ASIDE_SCHEMA} CASCADE"


class DataMismatch(AssertionError):
    """Restored data differs from what the backup recorded; ``differences`` lists each one."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        super().__init__("restored data differs from the backup's fingerprint:\n  "
                         + "\n  ".join(differences))


# --- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    dir: Path
    dir_origin: str                     # where dir came from, for the reports
    max_age_h: float
    config_paths: tuple[Path, ...]
    redis_rdb: Path | None              # the server's RDB file, copied after BGSAVE
    redis_restore_command: str | None   # stops Redis, puts {rdb} in place, starts it
    pg_bin: Path | None                 # pg_dump/pg_restore/initdb folder (None: from PATH)
    timeout_s: float
    source_dir: Path | None             # the platform's git checkout (version.txt, git-commit.txt)

    def tool(self, name: str) -> str:
        return str(self.pg_bin / name) if self.pg_bin else name


def settings(profile: Profile) -> Settings:
    """``[backup]`` of the profile; ``BACKUP_DIR`` in the environment wins over ``dir``."""
    section = profile.section("backup")
    if os.environ.get("BACKUP_DIR"):
        directory, origin = Path(os.environ["BACKUP_DIR"]).resolve(), "environment (BACKUP_DIR)"
    else:
        declared, origin = section.path("dir"), f"profile [backup] dir ({profile.path.name})"
        if declared is None:
            raise NotConfigured(profile.name, "[backup] dir")
        directory = declared
    return Settings(
        dir=directory, dir_origin=origin, max_age_h=section.get("max_age_h", 24),
        config_paths=tuple((profile.path.parent / p).resolve()
                           for p in section.get("config_paths", [])),
        redis_rdb=section.path("redis_rdb"),
        redis_restore_command=section.get("redis_restore_command"),
        pg_bin=Path(section["pg_bin"]) if "pg_bin" in section else None,
        timeout_s=section.get("timeout_s", 300),
        source_dir=profile.path_of("lifecycle", "source_dir"))


# --- connections ------------------------------------------------------------------------------
def pg_params(profile: Profile, timeout: float) -> dict[str, Any]:
    section = profile.section("postgres")
    return {"host": section["host"], "port": section["port"], "dbname": section["dbname"],
            "user": section["user"], "password": section.secret("password"),
            "connect_timeout": max(1, round(timeout))}


def pg_connect(profile: Profile, timeout: float) -> psycopg.Connection:
    return psycopg.connect(**pg_params(profile, timeout))


def redis_client(profile: Profile, timeout: float) -> redis.Redis:
    section = profile.section("redis")
    password = section.secret("password") if "password_env" in section else None
    return redis_probe.client(section["host"], section["port"], password, timeout)  # no retry


# --- fingerprints ---------------------------------------------------------------------------------
def fingerprint(profile: Profile, timeout: float = 10) -> dict[str, Any]:
    """What the live platform holds now: database tables and Redis keys."""
    with pg_connect(profile, timeout) as conn:
        database = database_fingerprint(conn)
    client = redis_client(profile, timeout)
    try:
        keys = redis_fingerprint(client)
    finally:
        client.close()
    return {"database": database, "redis": keys}


# --- commands ---------------------------------------------------------------------------------
def git_output(source: Path | None, *args: str) -> str:
    """A git command's output in the platform checkout, or "unknown" (no checkout, no git)."""
    if source is None:
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def served_version(profile: Profile, limit_s: float = 5.0) -> str:
    """The version the API says it serves, or "unknown": one GET bounded as a whole (a
    trickling API cannot hold a backup, and so a deployment, for longer than ``limit_s``)."""
    if not profile.has("api") or not profile.section("api").get("version_path"):
        return "unknown"
    section = profile.section("api")
    limit = min(limit_s, profile.threshold("http_timeout_s"))
    try:
        with deadline(limit, f"{section['url']}{section['version_path']}", "version lookup"):
            with http_client(section, limit) as client:
                response = client.get(section["version_path"])
                version = str(response.json().get("version", "")) \
                    if response.status_code == 200 else ""
    except (CouldNotRun, httpx.HTTPError, ValueError, AttributeError, OSError):
        return "unknown"
    return version if VERSION.match(version) else "unknown"


def snapshot_redis(profile: Profile, cfg: Settings, target: Path) -> None:
    """BGSAVE, wait for it (bounded), copy the RDB file the server just wrote."""
    if cfg.redis_rdb is None:
        raise NotConfigured(profile.name, "[backup] redis_rdb")
    client = redis_client(profile, 10)
    try:
        def idle() -> bool:
            return not client.info("persistence")["rdb_bgsave_in_progress"]

        wait_until(idle, timeout=cfg.timeout_s, interval=0.1)   # a save of its own may run
        before = int(client.info("persistence")["rdb_saves"])
        client.bgsave()

        def saved() -> bool:
            return idle() and int(client.info("persistence")["rdb_saves"]) > before

        waited = wait_until(saved, timeout=cfg.timeout_s, interval=0.1)
        if not waited.ok:
            raise BackupError(f"redis BGSAVE did not complete: {waited.summary()}")
        if client.info("persistence")["rdb_last_bgsave_status"] != "ok":
            raise BackupError("redis BGSAVE failed (rdb_last_bgsave_status is not ok)")
    finally:
        client.close()
    with os.fdopen(backup_manifest.open_regular(cfg.redis_rdb), "rb") as source:
        _write(target, source.read())


def _config_files(cfg: Settings) -> list[Path]:
    """The regular files the profile's config_paths name (folders walked); a link or special
    file is refused: a restore could not put it back as it was."""
    missing = [str(p) for p in cfg.config_paths if not os.path.lexists(p)]
    if missing:
        raise BackupError(f"configuration to archive not found: {', '.join(missing)}")
    files = []
    for root in cfg.config_paths:
        walked = [root] if not root.is_dir() or root.is_symlink() else sorted(
            p for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
        for path in walked:
            try:
                backup_manifest.check_regular(path)
            except BackupError as exc:
                raise BackupError(f"[backup] config_paths: {exc}") from exc
            files.append(path)
    return files


def archive_config(cfg: Settings, target: Path, key: bytes) -> None:
    """config.tar.gz of the configuration files; one that holds the HMAC key is refused
    (the key must never be stored in BACKUP_DIR)."""
    with tarfile.open(target, "w:gz") as archive:
        for path in _config_files(cfg):
            if key in path.read_bytes():
                raise BackupError(f"{path}: holds the backup HMAC key, which must never be "
                                  "stored in BACKUP_DIR: remove it from [backup] config_paths")
            archive.add(path, arcname=str(path).lstrip("/"), recursive=False)


def sha256_file(path: Path) -> str:
    return backup_manifest.file_digest(path)[1]


def _write(path: Path, content: str | bytes) -> None:
    """Write through a new file then rename over ``path``: a link planted at ``path`` is
    replaced, never followed (nothing outside the backup is ever written)."""
    data = content.encode() if isinstance(content, str) else content
    temporary = path.with_name(f".{path.name}.tmp")
    if os.path.lexists(temporary):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def shown(value: Any, width: int = 60) -> str:
    """A value read from a backup, fit for a terminal: printable characters only, cut."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return redaction.redact(text if len(text) <= width else text[:width - 1] + "…")


# --- backups ----------------------------------------------------------------------------------
@dataclass
class Backup:
    id: str
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The platform version whose data this backup holds (version.txt), or "?"."""
        try:
            text = read_bounded(self.path / "version.txt").decode().strip()
        except (BackupError, UnicodeDecodeError):
            return "?"
        return text if VERSION.match(text) else "?"

    def fingerprint(self) -> dict[str, Any]:
        """fingerprint.json, refused when over its bound or not the expected shape."""
        data = read_bounded(self.path / "fingerprint.json", backup_manifest.FINGERPRINT_LIMIT)
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise BackupError(f"backup {self.id}: fingerprint.json is not JSON ({exc})") from exc
        if not (isinstance(value, dict) and isinstance(value.get("database"), dict)
                and isinstance(value.get("redis"), dict)):
            raise BackupError(f"backup {self.id}: fingerprint.json lacks its database and redis "
                              "tables")
        return value

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if not os.path.lexists(self.path / name)]

    def size(self) -> int:
        return sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(self.path)
                   if e.is_file(follow_symlinks=False))

    def checked_info(self) -> dict[str, Any]:
        """deployment-info.json as a JSON object with a known status, else BackupError."""
        try:
            value = json.loads(read_bounded(self.path / INFO))
        except ValueError as exc:
            raise BackupError(f"backup {self.id}: {INFO} is not valid JSON "
                              f"({shown(exc, 80)})") from exc
        if not isinstance(value, dict):
            raise BackupError(f"backup {self.id}: {INFO} is not a JSON object")
        wrong = [k for k in SEED_TEXT_FIELDS if k in value and not isinstance(value[k], str)]
        if wrong:
            raise BackupError(f"backup {self.id}: {INFO}: {', '.join(wrong)} must be text")
        if value.get("status") not in STATUSES:
            raise BackupError(f"backup {self.id}: {INFO} status {shown(value.get('status'), 30)}"
                              f" is not one of {', '.join(STATUSES)}")
        return value

    def read_info(self) -> dict[str, Any]:
        """deployment-info.json, or {} when it is missing, too big or malformed."""
        try:
            return self.checked_info()
        except (BackupError, OSError):
            return {}

    def set_status(self, status: str, **extra: Any) -> None:
        """Record the deployment's outcome in deployment-info.json (the seed's status field)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        info = {**self.read_info(), **extra, "status": status}
        _write(self.path / INFO, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        self.info = info


def _backup_root(root: Path) -> Path:
    """BACKUP_DIR, created 0700 when missing; an existing folder keeps its mode and owner."""
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True)
    return root


def _new_partial_dir(root: Path) -> tuple[str, Path]:
    """A hidden ``.YYYYMMDD_HHMMSS.partial`` folder (UTC) that becomes the backup only once
    complete, so a failed or running backup is never listed, let alone "latest"."""
    for _ in range(3):
        backup_id = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        partial = root / f".{backup_id}.partial"
        if not os.path.lexists(root / backup_id):
            try:
                partial.mkdir(mode=0o700)
                return backup_id, partial
            except FileExistsError:
                pass
        time.sleep(1)
    raise BackupError(f"{root}: could not create a new backup folder")


def create(profile: Profile, version_to_deploy: str | None = None,
           status: str = "success") -> Backup:
    """Take a complete, signed backup of the platform's data and configuration.

    The key is required first (nothing unsigned is ever written). The data fingerprint is
    taken before and after the dump and the snapshot: if the platform was written to
    meanwhile, the backup is refused (a restore could not be proved identical). Any failure
    removes the partial folder.
    """
    cfg = settings(profile)
    key = hmac_key(profile)
    root = _backup_root(cfg.dir)
    backup_id, partial = _new_partial_dir(root)
    final = root / backup_id
    try:
        before = fingerprint(profile)
        backup_dump.dump_database(cfg.tool("pg_dump"), pg_params(profile, 10),
                                  partial / "database.dump", cfg.timeout_s)
        backup_dump.check_entries(cfg.tool("pg_restore"), partial / "database.dump")
        snapshot_redis(profile, cfg, partial / "redis.rdb")
        archive_config(cfg, partial / "config.tar.gz", key)
        after = fingerprint(profile)
        changed = compare(before, after)
        if changed:
            raise BackupError("data changed while the backup was taken (take it in "
                              "maintenance): " + "; ".join(changed))
        current = git_output(cfg.source_dir, "describe", "--tags", "--always")
        if current == "unknown":            # no git checkout declared: ask the API, bounded
            current = served_version(profile)
        commit = git_output(cfg.source_dir, "rev-parse", "HEAD")
        _write(partial / "version.txt", current + "\n")
        _write(partial / "git-commit.txt", commit + "\n")
        _write(partial / "fingerprint.json", json.dumps(after, indent=1, sort_keys=True) + "\n")
        for name in DATA_FILES:
            os.chmod(partial / name, 0o600)
        files = {name: backup_manifest.file_digest(partial / name) for name in DATA_FILES}
        _write(partial / SUMS, "".join(f"{files[n][1]}  {n}\n" for n in DATA_FILES))
        _write(partial / MANIFEST, backup_manifest.sign(key, backup_id, files))
        backup = Backup(backup_id, partial)
        backup.set_status(status, **{
            "version": version_to_deploy or current,
            "previous_version": current,
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "deployed_by": getpass.getuser(),
            "hostname": socket.gethostname(),
            "git_commit": commit,
            "git_branch": git_output(cfg.source_dir, "rev-parse", "--abbrev-ref", "HEAD"),
            "backup_path": str(final),
            "environment": profile.name,
        })
        if os.path.lexists(final):
            raise BackupError(f"{final} appeared while the backup was taken")
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Backup(backup_id, final, backup.info)


def list_backups(directory: Path) -> list[Backup]:
    """Backups in ``directory``, newest first (entries named YYYYMMDD_HHMMSS; a link named so
    is listed, and refused by verify)."""
    if not directory.is_dir():
        return []
    found = [Backup(e.name, Path(e.path)) for e in os.scandir(directory)
             if BACKUP_ID.match(e.name) and (e.is_dir() or e.is_symlink())]
    return sorted(found, key=lambda b: b.id, reverse=True)


def find(directory: Path, backup_id: str) -> Backup:
    path = directory / backup_id
    if not BACKUP_ID.match(backup_id) or not os.path.lexists(path):
        known = ", ".join(b.id for b in list_backups(directory)[:5]) or "none"
        raise BackupError(f"no backup {shown(backup_id, 40)} in {directory} (latest: {known})")
    return Backup(backup_id, path)


def _check_folder(backup: Backup) -> None:
    """A real folder holding exactly the expected files, each regular with a single link."""
    if os.path.islink(backup.path):
        raise BackupError(f"backup {backup.id}: the folder is a symbolic link (to "
                          f"{shown(os.readlink(backup.path), 120)}), refused")
    if not backup.path.is_dir():
        raise BackupError(f"backup {backup.id}: not a folder")
    missing = backup.missing()
    if missing:
        raise BackupError(f"backup {backup.id} is partial: missing {', '.join(missing)}")
    unexpected = sorted(set(os.listdir(backup.path)) - set(REQUIRED))
    if unexpected:
        raise BackupError(f"backup {backup.id}: unexpected file(s) "
                          f"{', '.join(shown(n, 60) for n in unexpected[:5])}: a backup holds "
                          f"only {', '.join(REQUIRED)}; refused")
    for name in REQUIRED:
        try:
            backup_manifest.check_regular(backup.path / name)
        except BackupError as exc:
            raise BackupError(f"backup {backup.id}: {name}: {str(exc).split(': ', 1)[1]}") \
                from exc


def _recorded_sums(backup: Backup) -> dict[str, str]:
    recorded: dict[str, str] = {}
    for line in read_bounded(backup.path / SUMS).decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name.strip()] = digest.strip()
    unlisted = [name for name in DATA_FILES if name not in recorded]
    if unlisted:
        raise BackupError(f"backup {backup.id}: {SUMS} does not list {', '.join(unlisted)}")
    return recorded


def verify(backup: Backup, key: bytes, cfg: Settings) -> None:
    """Refuse, naming the file, any backup that is not exactly what :func:`create` made.

    In this order, so nothing from the folder is parsed before it is authenticated: the
    folder and its files (regular, single link, nothing unexpected), the metadata size
    bounds, every data file against SHA256SUMS (an accident names the file), the HMAC over the
    measured sizes and digests (a recomputed SHA256SUMS is caught here), then the contents:
    deployment-info.json, fingerprint.json, the archive's members, the dump's entries.
    """
    _check_folder(backup)
    for name in METADATA:
        try:
            read_bounded(backup.path / name)
        except BackupError as exc:
            raise BackupError(f"backup {backup.id}: {exc}") from exc
    recorded = _recorded_sums(backup)
    files = {}
    for name in DATA_FILES:
        limit = backup_manifest.FINGERPRINT_LIMIT if name == "fingerprint.json" else None
        if limit and (backup.path / name).lstat().st_size > limit:
            raise BackupError(f"backup {backup.id}: {name} is larger than "
                              f"{limit // (1 << 20)} MiB, refused")
        files[name] = backup_manifest.file_digest(backup.path / name)
        actual = files[name][1]
        if actual != recorded[name]:
            raise BackupError(f"backup {backup.id} is corrupted: {name} does not match its "
                              f"SHA-256 in {SUMS} ({actual[:12]}… instead of "
                              f"{shown(recorded[name], 12)}…)")
    backup_manifest.check_signature(key, backup.id, backup.path, files)
    backup.checked_info()
    backup.fingerprint()
    try:
        backup_manifest.check_archive(backup.path / "config.tar.gz")
        backup_dump.check_entries(cfg.tool("pg_restore"), backup.path / "database.dump")
    except BackupError as exc:
        raise BackupError(f"backup {backup.id}: {exc}") from exc


# --- restore ----------------------------------------------------------------------------------
@dataclass
class RestorePlan:
    """What a restore will do, found ready before anything is touched."""
    backup: Backup
    database: str                        # user@host:port/dbname
    redis_argv: list[str]
    host: hosts.HostSpec
    config_writes: list[tuple[tarfile.TarInfo, Path]]
    config_unchanged: list[Path]

    def lines(self) -> list[str]:
        writes = ", ".join(str(p) for _, p in self.config_writes) or "none"
        return [f"plan: restore backup {self.backup.id} ({self.backup.version})",
                f"  1. database {self.database}: schema public moved aside, database.dump "
                "restored by pg_restore in one transaction, the old schema dropped (put back if "
                "the restore fails)",
                f"  2. redis: on host {self.host.name}: {shlex.join(self.redis_argv)}",
                f"  3. config: {len(self.config_writes)} file(s) to write ({writes}), "
                f"{len(self.config_unchanged)} unchanged",
                "  4. the live data compared with fingerprint.json"]


def _postgres_problems(profile: Profile) -> list[str]:
    """Reachable, a primary, writable, allowed to move schema public aside."""
    section = profile.section("postgres")
    where = f"postgres {section['host']}:{section['port']}"
    try:
        with pg_connect(profile, 10) as conn:
            conn.execute("SET statement_timeout = '10s'")
            row = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
                "has_database_privilege(current_database(), 'CREATE'), "
                "(SELECT pg_has_role(nspowner, 'MEMBER') FROM pg_namespace "
                " WHERE nspname = 'public'), "
                "EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)",
                (ASIDE_SCHEMA,)).fetchone() or (None,) * 5
    except psycopg.Error as exc:
        return [redaction.redact(f"{where}: not reachable ({shown(exc, 200)})")]
    recovery, read_only, can_create, owns_public, aside = row
    problems = []
    if recovery or read_only == "on":
        problems.append(f"{where}: read-only (a standby, or transaction_read_only)")
    if not can_create or not owns_public:
        problems.append(f"{where}: user {section['user']} may not replace schema public (needs "
                        "CREATE on the database and ownership of public)")
    if aside:
        problems.append(f"{where}: schema {ASIDE_SCHEMA} exists: an earlier restore was "
                        "interrupted and it holds the data from before it (inspect it, then "
                        f"DROP SCHEMA {ASIDE_SCHEMA} CASCADE)")
    return problems


def _redis_argv(template: str, backup: Backup) -> list[str]:
    """The restore command as an argument list (no shell), {rdb} and {python} filled in."""
    try:
        return commands.build_argv(template, {"python": sys.executable,
                                              "rdb": str(backup.path / "redis.rdb")})
    except ValueError as exc:
        raise BackupError(f"[backup] redis_restore_command: {exc}") from exc


def _redis_problems(argv: list[str], spec: hosts.HostSpec) -> list[str]:
    """The restore command's program exists on a reachable host."""
    try:
        found = commands.run(spec.connection, ["sh", "-c", 'command -v "$1"', "sh", argv[0]], 10)
    except Exception as exc:  # noqa: BLE001 - testinfra: any backend failure means not reachable
        return [f"host {spec.name}: not reachable to restore Redis ({shown(exc, 200)})"]
    if found.rc != 0 or not found.stdout.strip().startswith("/"):      # a program, no builtin
        return [f"host {spec.name}: redis restore program {shown(argv[0], 80)} not found"]
    return []


def _config_targets(cfg: Settings, backup: Backup) -> tuple[
        list[tuple[tarfile.TarInfo, Path]], list[Path], list[str]]:
    """Archive members to write (content differs), unchanged ones, and problems: a member
    that is not one of config_paths, a target that is not writable."""
    writes, unchanged, problems = [], [], []
    with tarfile.open(backup.path / "config.tar.gz", "r:gz") as archive:
        for member in backup_manifest.check_archive(backup.path / "config.tar.gz"):
            target = Path("/" + member.name)
            if not any(target == p or p in target.parents for p in cfg.config_paths):
                problems.append(f"config.tar.gz: {shown(member.name, 120)} is not under "
                                "[backup] config_paths")
                continue
            extracted = archive.extractfile(member)
            content = extracted.read() if extracted else b""
            if os.path.lexists(target):
                if not stat.S_ISREG(target.lstat().st_mode) or not os.access(target, os.W_OK):
                    problems.append(f"config: {target} is not a writable regular file")
                elif target.read_bytes() == content:
                    unchanged.append(target)
                else:
                    writes.append((member, target))
            elif not os.access(target.parent, os.W_OK):
                problems.append(f"config: {target.parent} is not writable")
            else:
                writes.append((member, target))
    return writes, unchanged, problems


def prepare(profile: Profile, backup: Backup) -> RestorePlan:
    """Verify the backup and check every target, before anything is touched; all the
    problems at once in one BackupError."""
    cfg = settings(profile)
    verify(backup, hmac_key(profile), cfg)
    if not cfg.redis_restore_command:
        raise NotConfigured(profile.name, "[backup] redis_restore_command")
    spec = hosts.platform_host(profile)
    if spec is None:
        raise NotConfigured(profile.name, "[[hosts]] (where redis_restore_command runs)")
    argv = _redis_argv(cfg.redis_restore_command, backup)
    writes, unchanged, config_problems = _config_targets(cfg, backup)
    problems = _postgres_problems(profile) + _redis_problems(argv, spec) + config_problems
    if problems:
        raise BackupError(f"restore of {backup.id} refused, nothing was touched: "
                          + "; ".join(problems))
    section = profile.section("postgres")
    return RestorePlan(backup, f"{section['user']}@{section['host']}:{section['port']}/"
                       f"{section['dbname']}", argv, spec, writes, unchanged)


def _restore_database(profile: Profile, cfg: Settings, backup: Backup) -> int:
    """Schema public aside, pg_restore into a new one, old one dropped (or put back)."""
    def run(statement: str) -> None:
        with pg_connect(profile, 10) as conn:
            # In ms, at least 5 s: 0 would mean no limit, and putting the schema back must
            # outwait the locks of a pg_restore that was just killed.
            conn.execute(f"SET lock_timeout = {max(5000, int(cfg.timeout_s * 1000))}")
            conn.execute(statement)

    run(_MOVE_ASIDE)
    try:
        count = backup_dump.restore_dump(cfg.tool("pg_restore"), backup.path / "database.dump",
                                         pg_params(profile, 10), cfg.timeout_s)
    except BaseException as exc:
        try:
            run(_PUT_BACK)
        except psycopg.Error as again:
            raise BackupError(f"{exc}; and putting the old schema back failed too ({again}): "
                              f"the data before the restore is in schema {ASIDE_SCHEMA}") \
                from exc
        raise
    run(_DROP_ASIDE)
    return count


def _restore_config(plan: RestorePlan) -> None:
    """Each changed file through a new file renamed over it, keeping its mode and owner."""
    with tarfile.open(plan.backup.path / "config.tar.gz", "r:gz") as archive:
        for member, target in plan.config_writes:
            extracted = archive.extractfile(member)
            old = target.lstat() if os.path.lexists(target) else None
            temporary = target.with_name(f".{target.name}.mssante-check-restore")
            if os.path.lexists(temporary):
                temporary.unlink()
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         stat.S_IMODE(old.st_mode) if old else 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(extracted.read() if extracted else b"")
            if old and os.geteuid() == 0:
                os.chown(temporary, old.st_uid, old.st_gid)
            os.replace(temporary, target)


def restore(profile: Profile, backup: Backup, check: bool = True,
            with_plan: bool = True) -> list[str]:
    """Put the database, Redis and the configuration back as the backup holds them, then prove
    it.

    :func:`prepare` refuses first (integrity, HMAC, contents, every target ready) and makes
    the plan, which leads the returned lines unless ``with_plan`` is false (the command line
    printed it before asking; it is made again here, so nothing changed meanwhile goes
    unchecked). With ``check``, the live data must then equal fingerprint.json.
    """
    plan = prepare(profile, backup)
    cfg = settings(profile)
    lines = plan.lines() if with_plan else []
    expected = backup.fingerprint()
    started = time.monotonic()
    entries = _restore_database(profile, cfg, backup)
    lines.append(f"database: restored from {backup.id} ({entries} entries) in "
                 f"{time.monotonic() - started:.1f}s")
    try:
        result = commands.run(plan.host.connection, plan.redis_argv, cfg.timeout_s)
    except (commands.CommandTimedOut, OSError) as exc:
        raise BackupError(f"redis restore command: {exc}") from exc
    if result.rc != 0:
        raise BackupError(redaction.redact(f"redis restore command failed ({result.rc}): "
                                           f"{result.tail}"))
    client = redis_client(profile, 5)
    try:
        waited = wait_until(client.ping, timeout=30, interval=0.2)
    finally:
        client.close()
    if not waited.ok:
        raise BackupError(f"redis does not answer after its restore: {waited.summary()}")
    lines.append(f"redis: restored from {backup.id} ({result.duration_s:.1f}s)")
    _restore_config(plan)
    lines.append(f"config: {len(plan.config_writes)} file(s) written, "
                 f"{len(plan.config_unchanged)} unchanged")
    if check:
        differences = compare(expected, fingerprint(profile))
        if differences:
            raise DataMismatch(differences)
        lines.append(f"data: identical to the backup ({len(expected['database'])} tables, "
                     f"{len(expected['redis'])} Redis keys)")
    return lines


def load_dump(dump: Path, conninfo: dict[str, Any], cfg: Settings) -> int:
    """Restore a (verified) backup's database.dump into an empty database, e.g. a scratch one:
    entries checked, then pg_restore in one transaction; returns the number of entries."""
    return backup_dump.restore_dump(cfg.tool("pg_restore"), dump, conninfo, cfg.timeout_s)


# --- listing (the seed's rollback.sh --list) ----------------------------------------------------
def human_size(size: float) -> str:
    """``ls -h`` style: 512, 9.8K, 245M."""
    unit = ""
    for unit in ("", "K", "M", "G", "T"):  # noqa: B007 - the unit reached is read after the loop
        if size < 1024:
            break
        size /= 1024
    return f"{size:.1f}{unit}" if unit and size < 10 else f"{size:.0f}{unit}"


def render_list(backups: list[Backup], verified: dict[str, str] | None = None,
                tags: list[str] | None = None) -> str:
    """The seed's table: DATE, VERSION, TAILLE, STATUT (+ the deployment's outcome)."""
    rule = "━" * 72
    lines = [rule, "📦 BACKUPS DISPONIBLES", rule, "",
             f"{'DATE':<21}{'VERSION':<16}{'TAILLE':<11}{'STATUT':<14}DÉPLOIEMENT",
             "─" * 72]
    for backup in backups:
        problem = (verified or {}).get(backup.id)
        if os.path.islink(backup.path) or not backup.path.is_dir():
            lines.append(f"{backup.id:<21}{'?':<16}{'?':<11}{'❌ Refusé':<14}?")
            continue
        if backup.missing():
            state = "⚠️ Partiel"
        elif problem:
            state = "❌ Corrompu"
        else:
            state = "✅ Complet"
        info = backup.read_info()
        outcome = shown(info.get("status", "?"), 20)
        if info.get("version") and info.get("version") != backup.version:
            outcome += f" ({shown(info['version'], 30)})"
        lines.append(f"{backup.id:<21}{backup.version:<16}{human_size(backup.size()):<11}"
                     f"{state:<14}{outcome}")
    if not backups:
        lines.append("(aucun backup)")
    if tags:
        lines += ["", "Dernières versions Git:", *(f"  • {t}" for t in tags)]
    return "\n".join(lines)


def recent_tags(cfg: Settings, count: int = 3) -> list[str]:
    out = git_output(cfg.source_dir, "tag", "--sort=-v:refname")
    return [] if out == "unknown" else out.splitlines()[:count]


# --- command line -----------------------------------------------------------------------------
class NeedsConfirmProd(Exception):
    """A destructive action on a production profile without --confirm-prod (exit code 4)."""


def _confirmed(profile: Profile, question: str, force: bool, confirm_prod: bool) -> bool:
    """The seed's confirmation. On a test profile --force or ROLLBACK_AUTO=true skips it; on
    a production one --confirm-prod is required and only --force skips the question:
    ROLLBACK_AUTO, an environment variable anyone may have left set, never does."""
    if profile.kind == "production":
        if not confirm_prod:
            raise NeedsConfirmProd(f"{profile.name} is a production profile: --restore needs "
                                   "--confirm-prod")
        if force:
            return True
    elif force or os.environ.get("ROLLBACK_AUTO") == "true":
        return True
    if not sys.stdin.isatty():
        needed = "--force" if profile.kind == "production" else \
            "--force or set ROLLBACK_AUTO=true"
        print(f"confirmation needed: pass {needed}", file=sys.stderr)
        return False
    return input(f"{question} (yes/NO) ").strip() == "yes"


def _list(cfg: Settings, profile: Profile, check: bool) -> int:
    found = list_backups(cfg.dir)
    problems = {}
    if check:
        key = hmac_key(profile)
        for backup in found:
            try:
                verify(backup, key, cfg)
            except (BackupError, OSError) as exc:
                problems[backup.id] = shown(exc, 400)
    print(render_list(found, problems, recent_tags(cfg)))
    for problem in problems.values():
        print(f"  ❌ {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.backups",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, metavar="NAME|PATH", help="environment profile")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-l", "--list", action="store_true", help="list backups (read-only)")
    action.add_argument("--create", action="store_true", help="take a backup now")
    action.add_argument("--restore", metavar="ID", help="restore the database, Redis and the "
                        "configuration from backup ID (destructive: asks for confirmation)")
    parser.add_argument("--verify", action="store_true",
                        help="with --list: verify every backup (sums, HMAC, contents)")
    parser.add_argument("-f", "--force", action="store_true", help="no confirmation")
    parser.add_argument("--confirm-prod", action="store_true",
                        help="required to restore on a production profile")
    args = parser.parse_args(argv)
    try:
        profile = profiles.load(args.env)
        cfg = settings(profile)
        if args.list:
            return _list(cfg, profile, args.verify)
        if args.create:
            backup = create(profile)
            print(f"✅ Backup créé dans {backup.path} ({human_size(backup.size())})")
            return 0
        backup = find(cfg.dir, args.restore)
        plan = prepare(profile, backup)          # refuse before asking anything
        print("\n".join(plan.lines()))
        if not _confirmed(profile, f"Restaurer la base, Redis et la configuration depuis "
                          f"{backup.id} ({backup.version})?", args.force, args.confirm_prod):
            print("restore cancelled", file=sys.stderr)
            return 1
        for line in restore(profile, backup, with_plan=False):
            print(line)
        return 0
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4                        # bad input, as pytest's usage errors
    except NotConfigured as exc:
        print(f"error: {exc.msg}", file=sys.stderr)
        return 2
    except (KeyMissing, NeedsConfirmProd) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (BackupError, DataMismatch) as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 1
    except (psycopg.Error, redis.RedisError, RuntimeError, OSError) as exc:
        print(redaction.redact(f"❌ {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
