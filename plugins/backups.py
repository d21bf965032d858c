"""Backups before a deployment: creation, listing, integrity, restore, and proof of identity.

Layout, as the seed's ``deploy-production.sh`` writes it (plus two files of ours)::

    BACKUP_DIR/YYYYMMDD_HHMMSS/
        database.sql.gz       pg_dump, plain SQL gzipped, without owners or grants (restorable
                              into any database, a scratch one included)
        redis.rdb             Redis snapshot: BGSAVE, then the RDB file copied
        config.tar.gz         the configuration files the profile lists
        version.txt           ``git describe --tags`` of the platform: what this backup restores
        git-commit.txt        the platform's full commit hash
        fingerprint.json      (ours) per-table row counts and content checksums, Redis keys
                              with a digest of each value, taken when the backup was made
        SHA256SUMS            (ours) checksums of the files above, ``sha256sum -c`` format
        deployment-info.json  the seed's fields; ``status`` is in_progress, then success,
                              rolled_back or failed

Nothing is restored from a backup with a missing file or a checksum that does not match: the
refusal names the file before anything is touched. After a restore the live data is compared
with ``fingerprint.json``; any difference is an error listing it.

``BACKUP_DIR`` (the seed's variable) overrides the profile's ``[backup] dir``. Command line::

    python -m plugins.backups --env NAME --list [--verify]   # read-only
    python -m plugins.backups --env NAME --create
    python -m plugins.backups --env NAME --restore ID [--force]
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import gzip
import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psycopg
import redis
from psycopg import sql

from plugins import hosts, redaction
from plugins import profile as profiles
from plugins.outcomes import wait_until
from plugins.profile import NotConfigured, Profile, ProfileError

DATA_FILES = ("database.sql.gz", "redis.rdb", "config.tar.gz", "version.txt", "git-commit.txt",
              "fingerprint.json")
SUMS = "SHA256SUMS"
INFO = "deployment-info.json"
REQUIRED = (*DATA_FILES, SUMS, INFO)
BACKUP_ID = re.compile(r"^\d{8}_\d{6}$")
STATUSES = ("in_progress", "success", "rolled_back", "failed")
# Before a live restore: the application's objects go, so that tables a failed release created
# or renamed do not survive next to the restored ones (the public schema itself stays).
LIVE_RESTORE_PREAMBLE = "DROP OWNED BY CURRENT_USER;\n"


class BackupError(RuntimeError):
    """A backup cannot be made, trusted or restored; the message says which file and why."""


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
    pg_bin: Path | None                 # pg_dump/psql/initdb folder (None: from PATH)
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
        directory, origin = section.path("dir"), f"profile [backup] dir ({profile.path.name})"
        if directory is None:
            raise NotConfigured(profile.name, "[backup] dir")
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
            "connect_timeout": max(1, int(timeout))}


def pg_connect(profile: Profile, timeout: float) -> psycopg.Connection:
    return psycopg.connect(**pg_params(profile, timeout))


def redis_client(profile: Profile, timeout: float) -> redis.Redis:
    section = profile.section("redis")
    password = section.secret("password") if "password_env" in section else None
    return redis.Redis(host=section["host"], port=section["port"], password=password,
                       socket_timeout=timeout, socket_connect_timeout=timeout)


# --- fingerprints -----------------------------------------------------------------------------
def database_fingerprint(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """Per table: columns, row count and SHA-256 of every row's text, in a fixed order.

    Session settings and the "C" collation make the text and the order independent of the
    server's locale and time zone, so a scratch restore compares equal to the original.
    """
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    conn.execute("SET extra_float_digits = 3")
    tables = conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', "
        "'information_schema') ORDER BY 1, 2").fetchall()
    result: dict[str, dict[str, Any]] = {}
    for schema, name in tables:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable, coalesce(column_default, '') "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position", (schema, name)).fetchall()
        digest, rows = hashlib.sha256(), 0
        with conn.cursor(name="mssante_check_fingerprint") as cursor:
            query = sql.SQL('SELECT t::text FROM {} AS t ORDER BY t::text COLLATE "C"')
            cursor.execute(query.format(sql.Identifier(schema, name)))
            for (text,) in cursor:
                digest.update(text.encode() + b"\n")
                rows += 1
        result[f"{schema}.{name}"] = {"rows": rows, "sha256": digest.hexdigest(),
                                      "columns": [" ".join(c) for c in columns]}
    conn.rollback()
    return result


_REDIS_READERS: dict[str, Callable[[redis.Redis, bytes], list[bytes]]] = {
    "string": lambda c, k: [c.get(k) or b""],
    "hash": lambda c, k: sorted(f + b"\0" + v for f, v in c.hgetall(k).items()),
    "list": lambda c, k: c.lrange(k, 0, -1),
    "set": lambda c, k: sorted(c.smembers(k)),
    "zset": lambda c, k: [m + b"\0" + repr(s).encode() for m, s in c.zrange(k, 0, -1,
                                                                             withscores=True)],
}


def redis_fingerprint(client: redis.Redis) -> dict[str, str]:
    """Key → ``type:expiry:sha256`` of its value (types without a reader: DUMP's bytes).

    The expiry is ``persistent`` or the absolute ``PEXPIRETIME`` (Redis 7+), which an RDB
    snapshot keeps: a restored key compares equal, and a key that expired since the backup is
    told apart from one that was lost.
    """
    result = {}
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "none":              # expired while we were scanning
            continue
        reader = _REDIS_READERS.get(kind)
        parts = reader(client, key) if reader else [client.dump(key) or b""]
        expires_at = client.pexpiretime(key)
        expiry = f"expires@{expires_at}" if expires_at > 0 else "persistent"
        digest = hashlib.sha256(b"\n".join(parts)).hexdigest()
        result[key.decode(errors="backslashreplace")] = f"{kind}:{expiry}:{digest}"
    return result


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


def _names(keys: set[str]) -> str:
    shown = ", ".join(sorted(keys)[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
    return redaction.redact(shown)


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every difference between two fingerprints, one line each (empty: identical)."""
    return (compare_database(expected["database"], actual["database"])
            + compare_redis(expected["redis"], actual["redis"]))


def compare_database(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    differences = []
    for table in sorted(want.keys() - got.keys()):
        differences.append(f"database: table {table} is missing ({want[table]['rows']} rows "
                           "expected)")
    for table in sorted(got.keys() - want.keys()):
        differences.append(f"database: table {table} should not exist ({got[table]['rows']} "
                           "rows)")
    for table in sorted(want.keys() & got.keys()):
        w, g = want[table], got[table]
        if w["columns"] != g["columns"]:
            differences.append(f"database: {table}: columns {g['columns']} instead of "
                               f"{w['columns']}")
        if w["rows"] != g["rows"]:
            differences.append(f"database: {table}: {g['rows']} rows instead of {w['rows']}")
        elif w["sha256"] != g["sha256"]:
            differences.append(f"database: {table}: same {w['rows']} rows but different content "
                               f"(checksum {g['sha256'][:12]}… instead of {w['sha256'][:12]}…)")
    return differences


def _expired(entry: str, now_ms: int) -> bool:
    """A fingerprint entry whose recorded expiry has passed: gone by design, not lost."""
    expiry = entry.split(":")[1]
    return expiry.startswith("expires@") and int(expiry.removeprefix("expires@")) <= now_ms


def compare_redis(want_keys: dict[str, str], got_keys: dict[str, str]) -> list[str]:
    differences = []
    now_ms = int(time.time() * 1000)
    missing = {k for k in want_keys.keys() - got_keys.keys() if not _expired(want_keys[k], now_ms)}
    extra = got_keys.keys() - want_keys.keys()
    changed = {k for k in want_keys.keys() & got_keys.keys() if want_keys[k] != got_keys[k]}
    for label, keys in (("missing", missing), ("unexpected", extra), ("changed", changed)):
        if keys:
            differences.append(f"redis: {len(keys)} {label} key(s): {_names(keys)}")
    return differences


# --- commands ---------------------------------------------------------------------------------
def run_tool(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
             user: str | None = None, stdin: Any = None) -> subprocess.CompletedProcess[bytes]:
    """A local tool with a bounded time; a failure is a BackupError with its last lines."""
    try:
        result = subprocess.run(cmd, capture_output=True, timeout=timeout, user=user,
                                env={**os.environ, **(env or {})}, stdin=stdin)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{Path(cmd[0]).name} did not finish within {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} not found (set [backup] pg_bin)") from exc
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BackupError(redaction.redact(f"{Path(cmd[0]).name} failed ({result.returncode}): "
                                           + " | ".join(tail)))
    return result


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


def dump_database(profile: Profile, cfg: Settings, target: Path) -> None:
    """pg_dump → gzipped plain SQL, without owners or grants."""
    params = pg_params(profile, 10)
    run_tool([cfg.tool("pg_dump"), "--host", str(params["host"]), "--port", str(params["port"]),
          "--username", params["user"], "--dbname", params["dbname"], "--no-owner",
          "--no-privileges", "--no-password", "--compress=6", "--file", str(target)],
         cfg.timeout_s, env={"PGPASSWORD": params["password"], "PGCONNECT_TIMEOUT": "10"})


def load_dump(dump: Path, conninfo: dict[str, Any], cfg: Settings, preamble: str = "") -> None:
    """Feed a gzipped plain dump to psql in one transaction that stops at the first error:
    either everything is restored or nothing changed."""
    cmd = [cfg.tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set",
           "ON_ERROR_STOP=1", "--no-password", "--host", str(conninfo["host"]), "--port",
           str(conninfo["port"]), "--username", conninfo["user"], "--dbname", conninfo["dbname"]]
    env = {"PGPASSWORD": conninfo["password"]} if conninfo.get("password") else {}
    with tempfile.TemporaryFile() as script:
        script.write(preamble.encode())
        with gzip.open(dump, "rb") as source:
            while chunk := source.read(1 << 20):
                script.write(chunk)
        script.seek(0)
        run_tool(cmd, cfg.timeout_s, env={**env, "PGCONNECT_TIMEOUT": "10"}, stdin=script)


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
    target.write_bytes(cfg.redis_rdb.read_bytes())


def archive_config(cfg: Settings, target: Path) -> None:
    missing = [str(p) for p in cfg.config_paths if not p.exists()]
    if missing:
        raise BackupError(f"configuration to archive not found: {', '.join(missing)}")
    with tarfile.open(target, "w:gz") as archive:
        for path in cfg.config_paths:
            archive.add(path, arcname=str(path).lstrip("/"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write(path: Path, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# --- backups ----------------------------------------------------------------------------------
@dataclass
class Backup:
    id: str
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The platform version whose data this backup holds (version.txt)."""
        try:
            return (self.path / "version.txt").read_text().strip()
        except OSError:
            return "?"

    def fingerprint(self) -> dict[str, Any]:
        return json.loads((self.path / "fingerprint.json").read_text())

    def missing(self) -> list[str]:
        return [name for name in REQUIRED if not (self.path / name).is_file()]

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def read_info(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / INFO).read_text())
        except (OSError, ValueError):
            return {}

    def set_status(self, status: str, **extra: Any) -> None:
        """Record the deployment's outcome in deployment-info.json (the seed's status field)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        info = {**self.read_info(), **extra, "status": status}
        _write(self.path / INFO, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        self.info = info


def _new_backup_dir(root: Path) -> Path:
    """``YYYYMMDD_HHMMSS`` (UTC); two backups in the same second wait for the next one."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for _ in range(3):
        path = root / time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            time.sleep(1)
    raise BackupError(f"{root}: could not create a new backup folder")


def create(profile: Profile, version_to_deploy: str | None = None,
           status: str = "success") -> Backup:
    """Take a complete backup of the platform's data and configuration.

    The data fingerprint is taken before and after the dump and the snapshot: if the platform
    was written to meanwhile, the backup is refused (a restore could not be proved identical).
    """
    cfg = settings(profile)
    path = _new_backup_dir(cfg.dir)
    backup = Backup(path.name, path)
    before = fingerprint(profile)
    dump_database(profile, cfg, path / "database.sql.gz")
    snapshot_redis(profile, cfg, path / "redis.rdb")
    archive_config(cfg, path / "config.tar.gz")
    after = fingerprint(profile)
    changed = compare(before, after)
    if changed:
        backup.set_status("failed", error="data changed while the backup was taken")
        raise BackupError("data changed while the backup was taken (take it in maintenance): "
                          + "; ".join(changed))
    current = git_output(cfg.source_dir, "describe", "--tags", "--always")
    commit = git_output(cfg.source_dir, "rev-parse", "HEAD")
    _write(path / "version.txt", current + "\n")
    _write(path / "git-commit.txt", commit + "\n")
    _write(path / "fingerprint.json", json.dumps(after, indent=1, sort_keys=True) + "\n")
    for name in ("database.sql.gz", "redis.rdb", "config.tar.gz"):
        os.chmod(path / name, 0o600)
    _write(path / SUMS, "".join(f"{sha256_file(path / n)}  {n}\n" for n in DATA_FILES))
    backup.set_status(status, **{
        "version": version_to_deploy or current,
        "previous_version": current,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "deployed_by": getpass.getuser(),
        "hostname": socket.gethostname(),
        "git_commit": commit,
        "git_branch": git_output(cfg.source_dir, "rev-parse", "--abbrev-ref", "HEAD"),
        "backup_path": str(path),
        "environment": profile.name,
    })
    return backup


def list_backups(directory: Path) -> list[Backup]:
    """Backups in ``directory``, newest first (folders named YYYYMMDD_HHMMSS)."""
    if not directory.is_dir():
        return []
    found = [Backup(p.name, p) for p in directory.iterdir()
             if p.is_dir() and BACKUP_ID.match(p.name)]
    return sorted(found, key=lambda b: b.id, reverse=True)


def find(directory: Path, backup_id: str) -> Backup:
    path = directory / backup_id
    if not BACKUP_ID.match(backup_id) or not path.is_dir():
        known = ", ".join(b.id for b in list_backups(directory)[:5]) or "none"
        raise BackupError(f"no backup {backup_id} in {directory} (latest: {known})")
    return Backup(backup_id, path)


def verify(backup: Backup) -> None:
    """Refuse a partial or corrupted backup, naming the file: every required file present,
    every data file matching its SHA-256 in SHA256SUMS."""
    missing = backup.missing()
    if missing:
        raise BackupError(f"backup {backup.id} is partial: missing {', '.join(missing)}")
    recorded: dict[str, str] = {}
    for line in (backup.path / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        recorded[name.strip()] = digest.strip()
    unlisted = [name for name in DATA_FILES if name not in recorded]
    if unlisted:
        raise BackupError(f"backup {backup.id}: {SUMS} does not list {', '.join(unlisted)}")
    for name in DATA_FILES:
        actual = sha256_file(backup.path / name)
        if actual != recorded[name]:
            raise BackupError(f"backup {backup.id} is corrupted: {name} does not match its "
                              f"SHA-256 in {SUMS} ({actual[:12]}… instead of "
                              f"{recorded[name][:12]}…)")


def restore(profile: Profile, backup: Backup, check: bool = True) -> list[str]:
    """Put the database and Redis back as the backup holds them, then prove it.

    Everything that can refuse does so before the first change: integrity, the tools and the
    restore command. The database is replaced in one transaction; Redis through the profile's
    ``redis_restore_command``. With ``check``, the live data must then equal fingerprint.json.
    """
    cfg = settings(profile)
    verify(backup)
    if not cfg.redis_restore_command:
        raise NotConfigured(profile.name, "[backup] redis_restore_command")
    spec = hosts.platform_host(profile)
    if spec is None:
        raise NotConfigured(profile.name, "[[hosts]] (where redis_restore_command runs)")
    expected = backup.fingerprint()
    lines = []
    started = time.monotonic()
    load_dump(backup.path / "database.sql.gz", pg_params(profile, 10), cfg,
              preamble=LIVE_RESTORE_PREAMBLE)
    lines.append(f"database: restored from {backup.id} in {time.monotonic() - started:.1f}s")
    command = cfg.redis_restore_command.replace(
        "{rdb}", shlex.quote(str(backup.path / "redis.rdb"))).replace(
        "{python}", shlex.quote(sys.executable))
    result = hosts.run_command(hosts.connect(spec.connection), command, cfg.timeout_s)
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
    if check:
        differences = compare(expected, fingerprint(profile))
        if differences:
            raise DataMismatch(differences)
        lines.append(f"data: identical to the backup ({len(expected['database'])} tables, "
                     f"{len(expected['redis'])} Redis keys)")
    return lines


# --- listing (the seed's rollback.sh --list) ----------------------------------------------------
def human_size(size: float) -> str:
    """``ls -h`` style: 512, 9.8K, 245M."""
    unit = ""
    for unit in ("", "K", "M", "G", "T"):
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
        if backup.missing():
            state = "⚠️ Partiel"
        elif problem:
            state = "❌ Corrompu"
        else:
            state = "✅ Complet"
        info = backup.read_info()
        outcome = info.get("status", "?")
        if info.get("version") and info.get("version") != backup.version:
            outcome += f" ({info['version']})"
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
def _confirmed(question: str, force: bool) -> bool:
    """The seed's confirmation, skipped with --force or ROLLBACK_AUTO=true."""
    if force or os.environ.get("ROLLBACK_AUTO") == "true":
        return True
    if not sys.stdin.isatty():
        print("confirmation needed: pass --force or set ROLLBACK_AUTO=true", file=sys.stderr)
        return False
    return input(f"{question} (yes/NO) ").strip() == "yes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.backups",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, metavar="NAME|PATH", help="environment profile")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("-l", "--list", action="store_true", help="list backups (read-only)")
    action.add_argument("--create", action="store_true", help="take a backup now")
    action.add_argument("--restore", metavar="ID", help="restore the database and Redis from "
                        "backup ID (destructive: asks for confirmation)")
    parser.add_argument("--verify", action="store_true",
                        help="with --list: check every backup's SHA-256 sums")
    parser.add_argument("-f", "--force", action="store_true", help="no confirmation")
    args = parser.parse_args(argv)
    try:
        profile = profiles.load(args.env)
        cfg = settings(profile)
        if args.list:
            backups = list_backups(cfg.dir)
            verified = {}
            if args.verify:
                for backup in backups:
                    try:
                        verify(backup)
                    except BackupError as exc:
                        verified[backup.id] = str(exc)
            print(render_list(backups, verified, recent_tags(cfg)))
            for problem in verified.values():
                print(f"  ❌ {problem}")
            return 1 if verified else 0
        if args.create:
            backup = create(profile)
            print(f"✅ Backup créé dans {backup.path} ({human_size(backup.size())})")
            return 0
        backup = find(cfg.dir, args.restore)
        verify(backup)                          # refuse before asking anything
        if not _confirmed(f"Restaurer la base et Redis depuis {backup.id} "
                          f"({backup.version})?", args.force):
            print("restore cancelled", file=sys.stderr)
            return 1
        for line in restore(profile, backup):
            print(line)
        return 0
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotConfigured as exc:
        print(f"error: {exc.msg}", file=sys.stderr)
        return 2
    except (BackupError, DataMismatch) as exc:
        print(f"❌ {exc}", file=sys.stderr)
        return 1
    except (psycopg.Error, redis.RedisError, RuntimeError) as exc:
        print(redaction.redact(f"❌ {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
