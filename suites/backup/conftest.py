"""Scratch servers for the test-restore: a throw-away PostgreSQL cluster and Redis server.

The seed's monthly ``test-restore.sh`` restores a backup somewhere harmless. Here "somewhere"
is a PostgreSQL cluster created for the test (``initdb`` in a temporary folder, Unix socket
only, no TCP port) and a Redis server on a free loopback port that loads the backup's RDB.
Nothing touches the platform: this suite is safe against production.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from plugins import backups
from plugins.outcomes import wait_until
from plugins.profile import Profile
from probes import redis as redis_probe

SCRATCH_DB = "restore_check"
# PostgreSQL refuses to run as root: as root, the scratch cluster runs as this user.
POSTGRES_USER = "postgres"


@pytest.fixture(scope="module")
def backup_settings(env_profile: Profile) -> backups.Settings:
    return backups.settings(env_profile)


@pytest.fixture(scope="module")
def backup_key(env_profile: Profile) -> bytes:
    """The manifest's HMAC key; unset, the suite cannot run (an error, never a pass)."""
    try:
        return backups.hmac_key(env_profile)
    except backups.KeyMissing as exc:
        pytest.fail(f"could not run: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def latest_backup(backup_settings: backups.Settings, backup_key: bytes) -> backups.Backup:
    """The newest backup, refused (the test errors) when it fails verification: partial,
    corrupted, not authenticated by its HMAC, or holding what a restore must not run."""
    found = backups.list_backups(backup_settings.dir)
    if not found:
        pytest.fail(f"no backup in {backup_settings.dir} (from {backup_settings.dir_origin})",
                    pytrace=False)
    try:
        backups.verify(found[0], backup_key, backup_settings)
    except backups.BackupError as exc:
        pytest.fail(f"refusing to restore: {exc}", pytrace=False)
    return found[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def scratch_postgres(backup_settings: backups.Settings) -> Iterator[dict[str, Any]]:
    """Connection keywords of an empty database in a throw-away cluster."""
    user = POSTGRES_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="mssante-check-restore-pg-"))
    data, port = root / "data", _free_port()
    if user:
        shutil.chown(root, user)
    timeout = backup_settings.timeout_s
    backups.run_tool([backup_settings.tool("initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                      "--no-instructions"], timeout, user=user)
    options = f"-c listen_addresses='' -c port={port} -c unix_socket_directories='{root}' " \
              "-c fsync=off"
    backups.run_tool([backup_settings.tool("pg_ctl"), "start", "-D", str(data), "-w", "-t", "30",
                      "-l", str(root / "postgres.log"), "-o", options], timeout, user=user)
    try:
        conninfo: dict[str, Any] = {"host": str(root), "port": port, "user": "postgres",
                                    "dbname": "postgres"}
        with psycopg.connect(**conninfo, connect_timeout=10, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
        yield {**conninfo, "dbname": SCRATCH_DB}
    finally:
        subprocess.run([backup_settings.tool("pg_ctl"), "stop", "-D", str(data), "-m",
                        "immediate", "-w", "-t", "30"], capture_output=True, timeout=40,
                       user=user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def scratch_redis(latest_backup: backups.Backup) -> Iterator[redis.Redis]:
    """A Redis server that loaded the backup's RDB at start (no persistence of its own)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed where the suite runs: cannot test-restore "
                    "the Redis snapshot", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="mssante-check-restore-redis-"))
    shutil.copyfile(latest_backup.path / "redis.rdb", root / "dump.rdb")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
         "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    client = redis_probe.client("127.0.0.1", port, None, 5)
    try:
        started = wait_until(client.ping, timeout=30, interval=0.1)
        if not started.ok:
            pytest.fail(f"scratch redis-server did not load the snapshot: {started.summary()}",
                        pytrace=False)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
