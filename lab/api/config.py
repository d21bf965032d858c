"""The API's settings: an env file (``MSSANTE_API_ENV_FILE``), overridden by the environment.

Secrets never sit in the settings file: it names the variables that hold them
(``..._PASSWORD_ENV``), looked up in the environment first, then in ``MSSANTE_API_SECRETS_FILE``
(the lab's ``secrets.env``), the same indirection the suite's profiles use.

The release served (its VERSION and migrations) is ``MSSANTE_API_RELEASE_DIR``, else the
``current`` folder beside the settings file when it exists (the checkout ``python -m lab
deploy`` switches), else the release shipped in this package.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab.api import PACKAGE_DIR

PREFIX = "MSSANTE_API_"
ENV_FILE_VARIABLE = f"{PREFIX}ENV_FILE"


class ConfigError(RuntimeError):
    """A missing or malformed setting; the message names it."""


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, # comments and blank lines ignored, no shell expansion.

    Same format as ``lab.secrets``; repeated here so that this package stays self-contained.
    """
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class SeedUser:
    """An account the API creates (or re-passwords) at start; mailbox users get a mailbox."""

    email: str
    role: str                       # "admin" or "user"
    password: str
    display_name: str | None = None  # set for mailbox owners


@dataclass(frozen=True)
class Settings:
    listen_host: str
    listen_port: int
    db: dict[str, str | int]        # psycopg connection keywords, password included
    redis_host: str
    redis_port: int
    redis_password: str | None      # None: connect without AUTH
    token_ttl: int                  # seconds a login token stays valid
    maintenance_flag: Path          # maintenance mode is on while this file exists
    cert_file: Path | None          # certificate nginx serves on https-api (expiry metric)
    pki_dir: Path | None            # where crl/ and aia/ are published from
    seed_users: tuple[SeedUser, ...]
    faults: frozenset[str]          # lab fault switches: health-lies, auth-broken, api-health-shape
    release_dir: Path = PACKAGE_DIR  # the release served: VERSION and migrations/

    @property
    def migrations_dir(self) -> Path:
        return self.release_dir / "migrations"

    @classmethod
    def load(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env_file = environ.get(ENV_FILE_VARIABLE)
        values = parse_env_file(Path(env_file)) if env_file else {}
        values.update({k: v for k, v in environ.items() if k.startswith(PREFIX)})
        reader = _Reader(values, environ)
        host, _, port = reader.get("LISTEN", "127.0.0.1:10080").rpartition(":")
        redis_password_env = reader.get("REDIS_PASSWORD_ENV", "")
        return cls(
            listen_host=host,
            listen_port=int(port),
            db={"host": reader.get("DB_HOST", "127.0.0.1"),
                "port": int(reader.get("DB_PORT", "5432")),
                "dbname": reader.get("DB_NAME"),
                "user": reader.get("DB_USER"),
                "password": reader.secret(reader.get("DB_PASSWORD_ENV"))},
            redis_host=reader.get("REDIS_HOST", "127.0.0.1"),
            redis_port=int(reader.get("REDIS_PORT", "6379")),
            redis_password=reader.secret(redis_password_env) if redis_password_env else None,
            token_ttl=int(reader.get("TOKEN_TTL", "3600")),
            maintenance_flag=Path(reader.get("MAINTENANCE_FLAG")),
            cert_file=reader.path("CERT_FILE"),
            pki_dir=reader.path("PKI_DIR"),
            seed_users=reader.seed_users(),
            faults=frozenset(f for f in reader.get("FAULTS", "").split(",") if f.strip()),
            release_dir=reader.path("RELEASE_DIR") or _selected_release(env_file),
        )


def _selected_release(env_file: str | None) -> Path:
    """The ``current`` checkout beside the settings file if a deploy created it, else ours."""
    current = Path(env_file).resolve().parent / "current" if env_file else None
    return current if current is not None and (current / "VERSION").is_file() else PACKAGE_DIR


class _Reader:
    def __init__(self, values: dict[str, str], environ: Mapping[str, str]) -> None:
        self.values = values
        self.environ = environ
        secrets_file = values.get(f"{PREFIX}SECRETS_FILE")
        self.secrets = parse_env_file(Path(secrets_file)) if secrets_file else {}

    def get(self, key: str, default: str | None = None) -> str:
        value = self.values.get(PREFIX + key, default)
        if value is None or (value == "" and default is None):
            raise ConfigError(f"setting {PREFIX}{key} is missing")
        return value

    def path(self, key: str) -> Path | None:
        value = self.values.get(PREFIX + key)
        return Path(value) if value else None

    def secret(self, variable: str) -> str:
        value = self.environ.get(variable) or self.secrets.get(variable)
        if not value:
            raise ConfigError(f"secret {variable} is not set (environment or secrets file)")
        return value

    def seed_users(self) -> tuple[SeedUser, ...]:
        """``ADMIN=email:PASSWORD_ENV`` and ``MAILBOXES=email:Display Name:PASSWORD_ENV,...``."""
        users = []
        admin = self.values.get(f"{PREFIX}ADMIN")
        if admin:
            email, _, variable = admin.partition(":")
            users.append(SeedUser(email.lower(), "admin", self.secret(variable)))
        for entry in filter(None, self.values.get(f"{PREFIX}MAILBOXES", "").split(",")):
            parts = entry.split(":")
            if len(parts) != 3:
                raise ConfigError(f"{PREFIX}MAILBOXES entry {parts[0]!r} is not "
                                  f"address:Display Name:PASSWORD_ENV")
            users.append(SeedUser(parts[0].strip().lower(), "user", self.secret(parts[2].strip()),
                                  parts[1].strip()))
        return tuple(users)
