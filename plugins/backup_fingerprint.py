"""What a platform's data is, as a comparable fingerprint: per table, per Redis key.

A backup records one when it is made; a restore (live or into scratch servers) is proved by
taking another and comparing. Pure functions over an open connection or client, so the same
code serves the live platform, the scratch servers of ``suites/backup`` and the tests.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import psycopg
import redis
from psycopg import sql

from plugins import redaction


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


# The client is Any here: redis-py types every reply ``bytes | str`` (decode_responses is a
# run-time choice); these clients never decode, so the replies are bytes.
_REDIS_READERS: dict[str, Callable[[Any, bytes], list[bytes]]] = {
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
        kind = client.type(key).decode()  # type: ignore[union-attr]  # bytes: never decoded
        if kind == "none":              # expired while we were scanning
            continue
        reader = _REDIS_READERS.get(kind)
        parts = reader(client, key) if reader else [client.dump(key) or b""]
        expires_at = client.pexpiretime(key)
        expiry = f"expires@{expires_at}" if expires_at > 0 else "persistent"
        digest = hashlib.sha256(b"\n".join(parts)).hexdigest()
        result[key.decode(errors="backslashreplace")] = f"{kind}:{expiry}:{digest}"
    return result


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


