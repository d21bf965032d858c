"""The API's data: users and mailboxes in PostgreSQL, login tokens in Redis.

Every call is bounded (connect, statement and socket time-outs of a few seconds) so a dead
dependency makes the API answer 503 quickly instead of hanging nginx's workers.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from base64 import b64decode, b64encode
from typing import Any

import psycopg
import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.api import migrations
from lab.api.config import SeedUser, Settings

log = logging.getLogger("mssante.api")

# scrypt cost: 16 MiB and ~50 ms per hash, as OWASP suggests for interactive logins.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "mssante:token:"


class Unavailable(RuntimeError):
    """A dependency (database or token store) could not serve the request."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64encode(salt).decode()}$" \
           f"{b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(password.encode(), salt=b64decode(salt), n=int(n), r=int(r),
                                   p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(candidate, b64decode(digest))


# Compared against when the e-mail is unknown, so a wrong address costs as long as a wrong
# password and response times do not reveal which accounts exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class Database:
    """A small connection pool plus the one-time schema migration and account seeding."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.params: dict[str, Any] = {**settings.db, "connect_timeout": 2,
                                       "application_name": "mssante-api",
                                       "options": "-c statement_timeout=5000"}
        self.pool = ConnectionPool(kwargs=self.params, min_size=1, max_size=8, timeout=3,
                                   open=False, check=ConnectionPool.check_connection,
                                   name="mssante-api")
        self._ready = False
        self._lock = threading.Lock()

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=2)

    def check(self) -> None:
        """What /health reports: the API could migrate and seed its database (a release whose
        code and schema disagree fails here), and the server accepts clients right now."""
        self.ensure_ready()
        self.ping()

    def ping(self) -> None:
        """SELECT 1 on a new connection: proves the server accepts clients right now."""
        try:
            with psycopg.connect(**self.params) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            raise Unavailable(f"database: {_first_line(exc)}") from exc

    def ensure_ready(self) -> None:
        """Migrate and seed once per process; retried on each request until it succeeds,
        because the API may start while the database is down."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                with psycopg.connect(**self.params, autocommit=True) as conn:
                    applied = migrations.apply_pending(conn, self.settings.migrations_dir)
                    if applied:
                        log.info("applied migrations %s", ", ".join(applied))
                    self._seed(conn)
            except psycopg.Error as exc:
                raise Unavailable(f"database: {_first_line(exc)}") from exc
            self._ready = True

    def _seed(self, conn: psycopg.Connection) -> None:
        """Create the configured accounts, or re-hash one whose password changed."""
        for user in self.settings.seed_users:
            row = conn.execute("SELECT id, password_hash FROM users WHERE email = %s",
                               (user.email,)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO users (email, password_hash, role) "
                                   "VALUES (%s, %s, %s) RETURNING id, password_hash",
                                   (user.email, hash_password(user.password), user.role)
                                   ).fetchone()
                assert row is not None, "INSERT ... RETURNING returns the row it inserted"
            elif not verify_password(user.password, row[1]):
                conn.execute("UPDATE users SET password_hash = %s, role = %s WHERE id = %s",
                             (hash_password(user.password), user.role, row[0]))
            if user.display_name is not None:
                self._seed_mailbox(conn, user, row[0])

    @staticmethod
    def _seed_mailbox(conn: psycopg.Connection, user: SeedUser, owner_id: int) -> None:
        conn.execute("INSERT INTO mailboxes (address, display_name, owner_id) "
                     "VALUES (%s, %s, %s) ON CONFLICT (address) DO UPDATE "
                     "SET display_name = EXCLUDED.display_name, owner_id = EXCLUDED.owner_id",
                     (user.email, user.display_name, owner_id))

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        self.ensure_ready()
        try:
            with self.pool.connection() as conn:
                return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise Unavailable(f"database: {_first_line(exc)}") from exc

    def schema(self) -> str | None:
        """The latest applied migration, read live (None when the database is unreachable)."""
        try:
            with psycopg.connect(**self.params) as conn:
                return migrations.current(conn)
        except psycopg.Error:
            return None

    def authenticate(self, email: str, password: str) -> dict[str, Any] | None:
        rows = self.query("SELECT id, email, role, password_hash FROM users WHERE email = %s",
                          (email.strip().lower(),))
        if not rows:
            verify_password(password, _DUMMY_HASH)
            return None
        user = rows[0]
        if not verify_password(password, user.pop("password_hash")):
            return None
        return user

    def mailboxes(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        """All mailboxes for an administrator, the user's own otherwise."""
        if user["role"] == "admin":
            return self.query("SELECT address, display_name FROM mailboxes ORDER BY address")
        return self.query("SELECT address, display_name FROM mailboxes WHERE owner_id = %s "
                          "ORDER BY address", (user["id"],))


class Tokens:
    """Opaque bearer tokens in Redis with a TTL; Redis keeps only their SHA-256."""

    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.token_ttl
        # One retry, no back-off: it replaces a pooled connection Redis closed on a restart,
        # without turning a dead Redis into seconds of waiting.
        self.client = redis.Redis(host=settings.redis_host, port=settings.redis_port,
                                  password=settings.redis_password, socket_timeout=1,
                                  socket_connect_timeout=1, retry=Retry(NoBackoff(), 1),
                                  decode_responses=True)

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise Unavailable(f"redis: {_first_line(exc)}") from exc

    def issue(self, user: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(32)
        payload = json.dumps({"id": user["id"], "email": user["email"], "role": user["role"],
                              "issued_at": int(time.time())})
        try:
            self.client.set(self._key(token), payload, ex=self.ttl)
        except redis.RedisError as exc:
            raise Unavailable(f"redis: {_first_line(exc)}") from exc
        return token

    def lookup(self, token: str) -> dict[str, Any] | None:
        try:
            payload = self.client.get(self._key(token))
        except redis.RedisError as exc:
            raise Unavailable(f"redis: {_first_line(exc)}") from exc
        return json.loads(payload) if payload else None

    @staticmethod
    def _key(token: str) -> str:
        return TOKEN_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
