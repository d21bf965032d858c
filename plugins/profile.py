"""Environment profiles: ``fixtures/environments/NAME.toml`` parsed and validated up front.

A profile names targets, trust anchors, thresholds and the *names* of the environment
variables holding secrets — never the secrets. Any problem is one :class:`ProfileError` line
naming the file and the key, raised before a single test runs.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins.envfile import parse_env_file
from probes.secret import Mailbox, Secret

ENV_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "environments"

LOAD_KEYS: dict[str, type | tuple[type, ...]] = {
    "users": int, "spawn_rate": (int, float), "run_time_s": (int, float), "smtp_messages": int,
    "p95_ms": (int, float), "max_failure_ratio": (int, float), "min_rps": (int, float)}
# section -> {key: expected type}; keys listed in REQUIRED must be present when the section is.
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "environment": {"name": str, "description": str, "kind": str, "env_file": str,
                    "domains": list, "required_env": list, "allow_outbound": bool},
    "trust": {"anchors": str, "forbidden_anchors": str},
    "policy": {"tls": str},
    "thresholds": {"cert_fail_days": int, "cert_warn_days": int, "disk_free_gb": (int, float),
                   "delivery_deadline_s": (int, float), "whitelist_max_age_h": (int, float),
                   "http_timeout_s": (int, float), "connect_timeout_s": (int, float)},
    "api": {"url": str, "health_path": str, "version_path": str, "ca_file": str,
            "admin_email": str, "admin_password_env": str},
    "frontend": {"url": str, "ca_file": str, "expect_text": str},
    "smtp.submission": {"host": str, "port": int, "tls": str, "ca_file": str,
                        "min_size": int, "max_size": int},
    "smtp.mx": {"host": str, "port": int, "tls": str, "ca_file": str, "peer_domain": str,
                "peer_cert": str, "peer_key": str, "rogue_domain": str, "rogue_cert": str,
                "rogue_key": str, "foreign_cert": str, "foreign_key": str, "whitelist": str},
    "imap": {"host": str, "port": int, "tls": str, "ca_file": str,
             "required_capabilities": list},
    "imaps": {"host": str, "port": int, "tls": str, "ca_file": str},
    "postgres": {"host": str, "port": int, "dbname": str, "user": str, "password_env": str},
    "redis": {"host": str, "port": int, "password_env": str},
    "prometheus": {"url": str, "expected_rules": list},
    "alertmanager": {"url": str},
    "grafana": {"url": str},
    # Load profile (suites/load, opt-in with --load): [load] holds the defaults and thresholds,
    # [load.api] / [load.smtp] / [load.imap] override them per scenario (plugins/load.py).
    "load": LOAD_KEYS,
    "load.api": LOAD_KEYS,
    "load.smtp": LOAD_KEYS,
    "load.imap": LOAD_KEYS,
    "healthcheck": {"error_threshold": int, "output": str},
    # [[certificates.files]] entries ({name, cert, key, ...}) are validated by plugins/tls_audit.py.
    "certificates": {"files": list},
    # Deployment lifecycle (plugins/lifecycle.py, opt-in with --deploy): the platform's git
    # checkout, the commands run on the [[hosts]] entry named by `host` ({python}, {version}
    # placeholders) and the bounds of each wait. [[hosts]] is validated by plugins/hosts.py.
    "lifecycle": {"source_dir": str, "host": str, "deploy_command": str,
                  "rollback_command": str, "migrate_command": str,
                  "maintenance_on_command": str, "maintenance_off_command": str,
                  "health_timeout_s": (int, float), "command_timeout_s": (int, float),
                  "pre_deploy_suite": str, "smoke_suite": str, "compose_files": list,
                  "version_timeout_s": (int, float)},
    # Backups (plugins/backups.py): BACKUP_DIR overrides `dir`; {rdb} in the restore command.
    "backup": {"dir": str, "max_age_h": (int, float), "config_paths": list, "redis_rdb": str,
               "redis_restore_command": str, "pg_bin": str, "timeout_s": (int, float),
               "hmac_key_env": str},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "environment": ("name", "kind"),
    "api": ("url",),
    "frontend": ("url",),
    "smtp.submission": ("host", "port"),
    "smtp.mx": ("host", "port"),
    "imap": ("host", "port"),
    "imaps": ("host", "port"),
    "postgres": ("host", "port", "dbname", "user"),
    "redis": ("host", "port"),
    "prometheus": ("url",),
    "alertmanager": ("url",),
    "grafana": ("url",),
    "load": ("p95_ms", "max_failure_ratio", "min_rps"),
    "lifecycle": ("deploy_command", "rollback_command"),
    "backup": ("dir",),
}
DEFAULT_THRESHOLDS: dict[str, float] = {
    "cert_fail_days": 7, "cert_warn_days": 30, "disk_free_gb": 50, "delivery_deadline_s": 60,
    "whitelist_max_age_h": 24, "http_timeout_s": 10, "connect_timeout_s": 10,
}
KINDS = ("test", "production")


class ProfileError(Exception):
    """A profile cannot be used; str() is one line naming the file and the key."""


class NotConfigured(pytest.skip.Exception):
    """The profile does not declare a target a check needs.

    It *is* a pytest skip, so raising it anywhere in a test or fixture reports the check as
    skipped with "not configured in <env>" — never as passed.
    """

    def __init__(self, env: str, what: str) -> None:
        super().__init__(f"not configured in {env}: {what}")


@dataclass
class Section:
    """One table of the profile, with paths resolved against the profile's folder."""

    profile: "Profile"
    name: str
    data: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        if key not in self.data:
            raise NotConfigured(self.profile.name, f"[{self.name}] {key}")
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def path(self, key: str) -> Path | None:
        """A file named by the profile, relative to the profile's folder."""
        value = self.data.get(key)
        return None if value is None else (self.profile.path.parent / value).resolve()

    def secret(self, key: str) -> Secret:
        """The value of the environment variable named by ``<key>_env``, as a :class:`Secret`
        (its repr is masked; it is registered for redaction).

        A declared but unset variable raises: the check cannot run (an *error*, not a pass).
        """
        var = self.data.get(f"{key}_env")
        if var is None:
            raise NotConfigured(self.profile.name, f"[{self.name}] {key}_env")
        value = self.profile.lookup_env(var)
        if not value:
            raise RuntimeError(f"environment variable {var} (named by [{self.name}] {key}_env in "
                               f"{self.profile.path.name}) is not set")
        return Secret(value)


@dataclass
class Profile:
    path: Path
    data: dict[str, Any]
    env_file_values: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.data["environment"]["name"]

    @property
    def kind(self) -> str:
        return self.data["environment"]["kind"]

    @property
    def domains(self) -> list[str]:
        return list(self.data["environment"].get("domains", []))

    def has(self, name: str) -> bool:
        return _lookup(self.data, name) is not None

    def section(self, name: str) -> Section:
        """The section, or NotConfigured (the caller's test is skipped as not configured)."""
        data = _lookup(self.data, name)
        if data is None:
            raise NotConfigured(self.name, f"[{name}]")
        return Section(self, name, data)

    def threshold(self, key: str) -> float:
        return self.data.get("thresholds", {}).get(key, DEFAULT_THRESHOLDS[key])

    def lookup_env(self, var: str) -> str | None:
        """Environment first, then the profile's env_file (environment wins)."""
        return os.environ.get(var) or self.env_file_values.get(var)

    def mailboxes(self) -> list[Mailbox]:
        """The ``[[mailboxes]]`` test accounts as (address, password) :class:`Mailbox` tuples
        whose password is a :class:`Secret`; a password variable that is not set is an error
        naming it and the mailbox."""
        accounts = []
        for entry in self.data.get("mailboxes", []):
            password = self.lookup_env(entry["password_env"])
            if not password:
                raise RuntimeError(f"environment variable {entry['password_env']} (mailbox "
                                   f"{entry['address']}) is not set")
            accounts.append(Mailbox(entry["address"], Secret(password, user=entry["address"])))
        return accounts

    def register_secrets(self) -> None:
        """Register for redaction every secret the profile names: the values of its ``*_env``
        keys (mailboxes with their address), and every value of its env_file. Done when the
        profile loads, so every process masks them — an xdist controller writes the reports
        from failure text its workers produced with secrets it never read itself."""
        for value in self.env_file_values.values():
            Secret(value)
        for entry in self.data.get("mailboxes", []):
            password = self.lookup_env(str(entry.get("password_env", "")))
            if password:
                Secret(password, user=entry.get("address"))
        for var in _env_names(self.data):
            value = self.lookup_env(var)
            if value:
                Secret(value)

    def path_of(self, section: str, key: str) -> Path | None:
        data = _lookup(self.data, section) or {}
        value = data.get(key)
        return None if value is None else (self.path.parent / value).resolve()


def _env_names(node: Any) -> list[str]:
    """The variable names of every ``*_env`` string key, at any depth."""
    if isinstance(node, list):
        return [name for item in node for name in _env_names(item)]
    if not isinstance(node, dict):
        return []
    return [name for key, value in node.items()
            for name in ([value] if key.endswith("_env") and isinstance(value, str)
                         else _env_names(value))]


def _lookup(data: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def resolve_path(name_or_path: str) -> Path:
    """``lab`` → fixtures/environments/lab.toml; anything ending in .toml is a path."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return Path(name_or_path).resolve()
    return ENV_DIR / f"{name_or_path}.toml"


def available() -> list[str]:
    return sorted(p.stem for p in ENV_DIR.glob("*.toml"))


def load(name_or_path: str) -> Profile:
    """Load and validate a profile; every problem is a ProfileError naming file and key."""
    path = resolve_path(name_or_path)
    if not path.is_file():
        known = ", ".join(available())
        raise ProfileError(f"environment '{name_or_path}': no profile file {path} "
                           f"(known environments: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: malformed TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text") from exc
    _validate(path, data)
    profile = Profile(path=path, data=data)
    env_file = data["environment"].get("env_file")
    if env_file:
        env_path = (path.parent / env_file).resolve()
        if env_path.is_file():
            profile.env_file_values = parse_env_file(env_path)
    profile.register_secrets()
    return profile


def _validate(path: Path, data: dict[str, Any]) -> None:
    if "environment" not in data:
        raise ProfileError(f"{path}: missing table [environment]")
    for dotted in _secret_like_keys(data):
        raise ProfileError(f"{path}: secrets must not be written in a profile: '{dotted}' "
                           f"(use '<key>_env' naming an environment variable)")
    for section, keys in SCHEMA.items():
        table = _lookup(data, section)
        if table is None:
            continue
        for key in REQUIRED.get(section, ()):
            if key not in table:
                raise ProfileError(f"{path}: [{section}] missing key '{key}'")
        for key, expected in keys.items():
            if key in table and not isinstance(table[key], expected):
                wanted = getattr(expected, "__name__", None) or "/".join(t.__name__ for t in expected)
                raise ProfileError(f"{path}: [{section}] key '{key}' must be {wanted}, "
                                   f"got {type(table[key]).__name__}")
        for key, value in table.items():
            if key not in keys and not isinstance(value, dict) and not isinstance(value, list):
                raise ProfileError(f"{path}: [{section}] unknown key '{key}'")
    kind = data["environment"]["kind"]
    if kind not in KINDS:
        raise ProfileError(f"{path}: [environment] key 'kind' must be one of {', '.join(KINDS)}, "
                           f"got '{kind}'")
    for index, mailbox in enumerate(data.get("mailboxes", [])):
        for key in ("address", "password_env"):
            if key not in mailbox:
                raise ProfileError(f"{path}: [[mailboxes]] #{index + 1} missing key '{key}'")


def _secret_like_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted names of keys that look like an inline secret, at any depth."""
    found: list[str] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        dotted = f"{prefix}{key}"
        if isinstance(key, str) and key.endswith(("password", "secret", "token")):
            found.append(dotted)
        found += _secret_like_keys(value, dotted + ".")
    return found
