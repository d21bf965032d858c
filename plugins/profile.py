"""Environment profiles: ``fixtures/environments/NAME.toml`` parsed and validated up front.

A profile names targets, trust anchors, thresholds and the *names* of the environment
variables holding secrets — never the secrets. Any problem is one :class:`ProfileError` line
naming the file and the key, raised before a single test runs.
"""
from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import igc_sante
from plugins import profile_values as values
from plugins.envfile import parse_env_file
from policy.api_contract import CHECK_FORMATS
from probes.errors import SecretNotSet
from probes.secret import Mailbox, Secret

ENV_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "environments"

LOAD_KEYS: dict[str, type | tuple[type, ...]] = {
    "users": int, "spawn_rate": (int, float), "run_time_s": (int, float), "smtp_messages": int,
    "p95_ms": (int, float), "max_failure_ratio": (int, float), "min_rps": (int, float)}
# section -> {key: expected type}; keys listed in REQUIRED must be present when the section is.
# Nothing else is accepted, at any depth: an unknown section or key is a ProfileError (a typo
# must not quietly turn checks into "not configured"). bool is never an int here. What a value
# must be beyond its type is in CHECKS below.
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "environment": {"name": str, "description": str, "kind": str, "env_file": str,
                    "domains": list, "required_env": list, "allow_outbound": bool,
                    # Where required_env is looked up on the platform (plugins/platform_env.py):
                    # its env file, read on the platform host, and/or the environment of the
                    # process holding this port. The suite's own environment never counts.
                    "platform_env_file": str, "platform_env_port": int,
                    # The local address the probes bind to (the suite's vantage point).
                    "source_address": str},
    # self_made: the anchors are a home-made CA, not IGC Santé (the lab's); reports say so.
    "trust": {"anchors": str, "forbidden_anchors": str, "self_made": bool},
    "policy": {"tls": str},
    "thresholds": {"cert_fail_days": int, "cert_warn_days": int, "disk_free_gb": (int, float),
                   "delivery_deadline_s": (int, float), "whitelist_max_age_h": (int, float),
                   "http_timeout_s": (int, float), "connect_timeout_s": (int, float)},
    "api": {"url": str, "health_path": str, "version_path": str, "ca_file": str,
            "admin_email": str, "admin_password_env": str,
            # The API contract (policy/api_contract.py; defaults: the seed's shape): paths,
            # login body fields, JSON pointers to the token, the mailbox list, the health
            # status and its dependency checks, the accepted health values, and whether each
            # check is an object with a status field or a bare string.
            "login_path": str, "login_email_field": str, "login_password_field": str,
            "token_pointer": str, "mailboxes_path": str, "mailboxes_pointer": str,
            "health_status_pointer": str, "health_ok": list, "health_checks_pointer": str,
            "health_checks_format": str, "health_check_status_field": str},
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
    # test_alert: post a uniquely labelled test alert and read it back (opt-in, like the
    # health check's alert: it shows up in the operator's Alertmanager for a minute).
    "alertmanager": {"url": str, "test_alert": bool},
    "grafana": {"url": str},
    # Load profile (suites/load, opt-in with --load): [load] holds the defaults and thresholds,
    # [load.api] / [load.smtp] / [load.imap] override them per scenario (plugins/load.py).
    "load": LOAD_KEYS,
    "load.api": LOAD_KEYS,
    "load.smtp": LOAD_KEYS,
    "load.imap": LOAD_KEYS,
    "healthcheck": {"error_threshold": int, "output": str},
    # [[certificates.files]] entries: see ARRAYS.
    "certificates": {},
    # Deployment lifecycle (plugins/lifecycle.py, opt-in with --deploy): the platform's git
    # checkout, the commands run on the [[hosts]] entry named by `host` ({python}, {version}
    # placeholders) and the bounds of each wait. [[hosts]]: see ARRAYS.
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
# Arrays of tables, entry key -> expected type as in SCHEMA: [[mailboxes]] (test accounts),
# [[hosts]] (testinfra connections, plugins/hosts.py) with their inline `ports` tables,
# [[certificates.files]] (certificate/key files on disk, plugins/tls_audit.py).
ARRAYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "mailboxes": {"address": str, "password_env": str},
    "hosts": {"name": str, "connection": str, "processes": list, "services": list,
              "key_files": list, "disk_paths": list},
    "hosts.ports": {"port": int, "process": str},
    "certificates.files": {"name": str, "cert": str, "key": str, "chain": str, "hosts": list,
                           "client_auth": bool},
}
UNIQUE: dict[str, str] = {"hosts": "name", "certificates.files": "name"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "mailboxes": ("address", "password_env"),
    "hosts": ("name", "connection"),
    "hosts.ports": ("port", "process"),
    "certificates.files": ("name", "cert", "key"),
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
# What an MSSanté operator in production cannot lack (issue 13): the agency's whitelist, the
# client-certificate material the MX refusal checks present (suites/mail/test_mx.py,
# test_whitelist.py) and the trust anchors. In a test profile they stay optional (the checks
# that need them are skipped as not configured).
PRODUCTION_REQUIRED: dict[str, tuple[str, ...]] = {
    "trust": ("anchors",),
    "smtp.mx": ("whitelist", "peer_domain", "peer_cert", "peer_key", "rogue_domain",
                "rogue_cert", "rogue_key", "foreign_cert", "foreign_key"),
}
DEFAULT_THRESHOLDS: dict[str, float] = {
    "cert_fail_days": 7, "cert_warn_days": 30, "disk_free_gb": 50, "delivery_deadline_s": 60,
    "whitelist_max_age_h": 24, "http_timeout_s": 10, "connect_timeout_s": 10,
}
KINDS = ("test", "production")
# Placeholders each command template may use (plugins/commands.py fills them in); any other
# `*_command` key may use {python} only.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "deploy_command": ("python", "version"), "rollback_command": ("python", "version"),
    "redis_restore_command": ("python", "rdb"),
}
_HOSTS = values.each(values.host, "host names or IP addresses")
# What a value must be beyond its type (plugins/profile_values.py), by "section.key" (array
# entries: "hosts.name") or by key name. A key with no entry follows its name: *_s, *_h, *_ms,
# *_days, *_gb are time-outs, ages and thresholds (> 0); *_env names an environment variable;
# *_command is a command template (PLACEHOLDERS). Every list holds strings.
CHECKS: dict[str, values.Check] = {
    "port": values.port, "host": values.host, "url": values.url, "address": values.email,
    "admin_email": values.email,
    "environment.name": values.name, "environment.kind": values.one_of(*KINDS),
    "environment.domains": _HOSTS,
    "environment.required_env": values.each(values.env_var, "environment variable names"),
    "environment.platform_env_port": values.port,
    "environment.source_address": values.ip_address,
    **{f"api.{key}": values.json_pointer for key in ("token_pointer", "mailboxes_pointer",
                                                     "health_status_pointer",
                                                     "health_checks_pointer")},
    **{f"api.{key}": values.path for key in ("login_path", "mailboxes_path", "health_path")},
    "api.health_ok": values.non_empty(values.each(values.non_blank, "non-empty strings")),
    "api.health_checks_format": values.one_of(*CHECK_FORMATS),
    **{f"{section}.tls": values.one_of("starttls", "implicit", "none")
       for section in ("smtp.submission", "smtp.mx", "imap", "imaps")},
    "smtp.mx.peer_domain": values.host, "smtp.mx.rogue_domain": values.host,
    "smtp.submission.min_size": values.positive, "smtp.submission.max_size": values.positive,
    **{f"{section}.{key}": values.positive
       for section in ("load", "load.api", "load.smtp", "load.imap")
       for key in ("users", "spawn_rate", "smtp_messages", "min_rps")},
    **{f"{section}.max_failure_ratio": values.ratio
       for section in ("load", "load.api", "load.smtp", "load.imap")},
    "healthcheck.error_threshold": values.positive,
    "lifecycle.host": values.name,                 # a [[hosts]] name (checked against them)
    "hosts.name": values.name, "hosts.connection": values.connection,
    "certificates.files.name": values.name, "certificates.files.hosts": _HOSTS,
}
POSITIVE_SUFFIXES = ("_s", "_h", "_ms", "_days", "_gb")


class ProfileError(Exception):
    """A profile cannot be used; str() is one line naming the file and the key."""


class NotConfigured(pytest.skip.Exception):  # type: ignore[name-defined]  # pytest's own spelling
    """The profile does not declare a target a check needs.

    It *is* a pytest skip, so raising it anywhere in a test or fixture reports the check as
    skipped with "not configured in <env>" — never as passed.
    """

    def __init__(self, env: str, what: str) -> None:
        super().__init__(f"not configured in {env}: {what}")


@dataclass
class Section:
    """One table of the profile, with paths resolved against the profile's folder."""

    profile: Profile
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
            raise SecretNotSet(f"[{self.name}] {key}_env", var,
                               f"named by [{self.name}] {key}_env in {self.profile.path.name}")
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
    def self_made_anchors(self) -> bool:
        """``[trust] self_made``: the anchors are not IGC Santé's (every report says so)."""
        return bool(self.data.get("trust", {}).get("self_made"))

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
                raise SecretNotSet("[[mailboxes]] password_env", entry["password_env"],
                                   f"mailbox {entry['address']}")
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
            found = self.lookup_env(var)
            if found:
                Secret(found)

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


def require_secrets(profile: Profile, sections: Collection[str], needed_by: str) -> None:
    """ProfileError for the first secret a run needs that is not set: a string ``*_env`` key of
    one of ``sections`` ("mailboxes" stands for every [[mailboxes]] ``password_env``) naming a
    variable set neither in the environment nor in the profile's env_file. Called before any
    test runs, so a missing secret is one line (exit 4), not a failure in the middle of a run.
    """
    advice = (f"needed by {needed_by}; set it in the environment or in the file named by "
              "[environment] env_file")
    for section in sections:
        if section == "mailboxes":
            for number, entry in enumerate(profile.data.get("mailboxes", []), 1):
                if not profile.lookup_env(entry["password_env"]):
                    raise ProfileError(
                        f"{profile.path}: [[mailboxes]] #{number} ({entry['address']}) key "
                        f"'password_env': environment variable {entry['password_env']} is not "
                        f"set ({advice})")
            continue
        for key, var in (_lookup(profile.data, section) or {}).items():
            if key.endswith("_env") and isinstance(var, str) and not profile.lookup_env(var):
                raise ProfileError(f"{profile.path}: [{section}] key '{key}': environment "
                                   f"variable {var} is not set ({advice})")


def _validate(path: Path, data: dict[str, Any]) -> None:
    if "environment" not in data:
        raise ProfileError(f"{path}: missing table [environment]")
    for dotted in _secret_like_keys(data):
        raise ProfileError(f"{path}: secrets must not be written in a profile: '{dotted}' "
                           f"(use '<key>_env' naming an environment variable)")
    _check_table(path, "", "", data)
    wanted = _lookup(data, "lifecycle") and data["lifecycle"].get("host")
    names = [entry["name"] for entry in data.get("hosts", [])]
    if wanted and wanted not in names:
        raise ProfileError(f"{path}: [lifecycle] key 'host' must name a [[hosts]] entry "
                           f"({', '.join(names) or 'none declared'}), got '{wanted}'")
    _check_processes(path, data)
    _check_platform_env(path, data)
    if data["environment"]["kind"] == "production":
        _check_production(path, data)


def _check_processes(path: Path, data: dict[str, Any]) -> None:
    """Every ``[[hosts]] processes`` name holds a declared port: a process is "running" when it
    holds its port (plugins/hosts.py); one of the same name running elsewhere proves nothing."""
    for number, entry in enumerate(data.get("hosts", []), 1):
        bound = {port["process"] for port in entry.get("ports", [])}
        for name in entry.get("processes", []):
            if name not in bound:
                raise ProfileError(
                    f"{path}: [[hosts]] #{number}: processes item '{name}' holds no declared "
                    f"port: add {{ port = N, process = \"{name}\" }} to its ports (a process "
                    "is checked by the port it holds; a process of that name running for "
                    "something else proves nothing)")


def _check_platform_env(path: Path, data: dict[str, Any]) -> None:
    """``required_env`` is looked up on the platform, so the profile must say where."""
    env = data["environment"]
    sources = [key for key in ("platform_env_file", "platform_env_port") if key in env]
    if env.get("required_env") and not sources:
        raise ProfileError(
            f"{path}: [environment] required_env needs 'platform_env_file' (the platform's env "
            "file on its host) or 'platform_env_port' (the port whose process environment is "
            "read): the suite's own environment and env_file never satisfy it")
    if sources and not data.get("hosts"):
        raise ProfileError(f"{path}: [environment] key '{sources[0]}' is read on the platform "
                           "host: declare it in [[hosts]]")


def _check_production(path: Path, data: dict[str, Any]) -> None:
    """A production profile: the mandatory keys (PRODUCTION_REQUIRED) and IGC Santé's
    PRODUCTION anchors, exactly, by fingerprint (plugins/igc_sante.py)."""
    for section, keys in PRODUCTION_REQUIRED.items():
        table = _lookup(data, section)
        if table is None:
            raise ProfileError(f"{path}: missing table [{section}] (required in a production "
                               "profile)")
        for key in keys:
            if key not in table:
                raise ProfileError(f"{path}: [{section}] missing key '{key}' (required in a "
                                   "production profile: an MSSanté operator without it is "
                                   "not compliant)")
    trust = data["trust"]
    if trust.get("self_made"):
        raise ProfileError(f"{path}: [trust] key 'self_made' must not be true in a production "
                           "profile: its anchors are IGC Santé PRODUCTION's")
    problem = igc_sante.production_problem((path.parent / trust["anchors"]).resolve())
    if problem:
        raise ProfileError(f"{path}: [trust] key 'anchors' {problem}")


def _known_children(dotted: str) -> dict[str, str]:
    """Sections and arrays directly below ``dotted`` ("" is the top): short name -> dotted."""
    prefix = f"{dotted}." if dotted else ""
    children = {}
    for full in (*SCHEMA, *ARRAYS):
        if full.startswith(prefix) and full != dotted:
            short = full[len(prefix):].split(".")[0]
            children[short] = prefix + short
    return children


def _check_table(path: Path, dotted: str, where: str, table: dict[str, Any]) -> None:
    """One table (a section, or an entry of an array: ``dotted`` in ARRAYS), recursively.

    ``where`` prefixes every problem: "[api]" for a section, "[[hosts]] #1:" for an entry.
    """
    keys = ARRAYS[dotted] if dotted in ARRAYS else SCHEMA.get(dotted, {})
    children = _known_children(dotted)
    for key, value in table.items():
        child = f"{dotted}.{key}" if dotted else key
        if key in children and child in ARRAYS:
            label = f"[[{child}]]" if not dotted else f"{where.rstrip(':')} {key}"
            _check_array(path, child, label, value)
        elif key in children:
            if not isinstance(value, dict):
                raise ProfileError(f"{path}: [{child}] must be a table, got "
                                   f"{_type_name(value)}")
            _check_table(path, child, f"[{child}]", value)
        elif key in keys:
            _check_value(path, where, dotted, key, value, keys[key])
        else:
            raise ProfileError(f"{path}: {_unknown(dotted, where, key, value, keys, children)}")
    for key in REQUIRED.get(dotted, ()):
        if key not in table:
            raise ProfileError(f"{path}: {where} missing key '{key}'")


def _check_array(path: Path, dotted: str, label: str, entries: Any) -> None:
    keys = ARRAYS[dotted]
    if not isinstance(entries, list):
        raise ProfileError(f"{path}: {label} must be an array of tables ({{{', '.join(keys)}}}), "
                           f"got {_type_name(entries)}")
    seen: dict[Any, int] = {}
    for number, entry in enumerate(entries, 1):
        where = f"{label} #{number}:"
        if not isinstance(entry, dict):
            raise ProfileError(f"{path}: {where} must be a table {{{', '.join(keys)}}}, got "
                               f"{_type_name(entry)}")
        _check_table(path, dotted, where, entry)
        unique = UNIQUE.get(dotted)
        if unique is not None:
            if entry[unique] in seen:
                raise ProfileError(f"{path}: {where} key '{unique}' must be unique, "
                                   f"'{entry[unique]}' is also #{seen[entry[unique]]}")
            seen[entry[unique]] = number


def _check_value(path: Path, where: str, dotted: str, key: str, value: Any,
                 expected: type | tuple[type, ...]) -> None:
    types = expected if isinstance(expected, tuple) else (expected,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ProfileError(f"{path}: {where} key '{key}' must be "
                           f"{'/'.join(t.__name__ for t in types)}, got {_type_name(value)}")
    if isinstance(value, list):
        for index, item in enumerate(value, 1):
            if not isinstance(item, str):
                raise ProfileError(f"{path}: {where} key '{key}' must be a list of strings; "
                                   f"item {index} is {_type_name(item)}")
    check = _value_check(dotted, key)
    problem = check(value) if check is not None else None
    if problem:
        raise ProfileError(f"{path}: {where} key '{key}' {problem}")


def _value_check(dotted: str, key: str) -> values.Check | None:
    """CHECKS by "section.key", then by key, then by the key's naming convention."""
    found = CHECKS.get(f"{dotted}.{key}", CHECKS.get(key))
    if found is not None:
        return found
    if key.endswith(POSITIVE_SUFFIXES):
        return values.positive
    if key.endswith("_env"):
        return values.env_var
    if key.endswith("_command"):
        return values.command(PLACEHOLDERS.get(key, ("python",)))
    return None


def _unknown(dotted: str, where: str, key: str, value: Any, keys: Collection[str],
             children: Collection[str]) -> str:
    """The one line for a key nobody reads, with the closest known name or the known ones."""
    is_table = isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value))
    full = f"{dotted}.{key}" if dotted else key
    if is_table and not where.endswith(":"):
        known = {short: f"[[{name}]]" if name in ARRAYS else f"[{name}]"
                 for short, name in ((c, f"{dotted}.{c}" if dotted else c) for c in children)}
        what = (f"unknown section [{full}]" if isinstance(value, dict)
                else f"unknown array of tables [[{full}]]")
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = (f"did you mean {known[close[0]]}?" if close else
                f"known: {', '.join(known.values())}" if known else
                f"[{dotted}] has no sub-sections")
        return f"{what} ({hint})"
    names = [*keys, *children]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    hint = (f"did you mean '{close[0]}'?" if close else
            f"expected one of: {', '.join(names)}" if names else "this table takes no keys")
    if not dotted:
        return f"unknown top-level key '{key}' ({hint}; keys belong in a [section])"
    return f"{where} unknown key '{key}' ({hint})"


def _type_name(value: Any) -> str:
    """Python's names (int, str, bool...), TOML's for tables and arrays."""
    toml_names: dict[type, str] = {dict: "table", list: "array"}
    return toml_names.get(type(value), type(value).__name__)


def _secret_like_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted names of keys that look like an inline secret, at any depth."""
    found: list[str] = []
    items = (node.items() if isinstance(node, dict) else
             enumerate(node) if isinstance(node, list) else [])
    for key, value in items:
        dotted = f"{prefix}{key}"
        if isinstance(key, str) and key.endswith(("password", "secret", "token")):
            found.append(dotted)
        found += _secret_like_keys(value, dotted + ".")
    return found
