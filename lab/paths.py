"""Where the lab keeps its state: everything lives under one git-ignored directory.

``MSSANTE_LAB_DIR`` overrides the default ``<repo>/.lab`` so that tests or a second lab can
use another directory.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def lab_dir() -> Path:
    """Root of the lab's state (configuration, data, logs, PKI, secrets)."""
    return Path(os.environ.get("MSSANTE_LAB_DIR", REPO_ROOT / ".lab")).resolve()


def pki_dir() -> Path:
    return lab_dir() / "pki"


def secrets_file() -> Path:
    return lab_dir() / "secrets.env"


def state_file() -> Path:
    """JSON record of the running lab: active faults and started services."""
    return lab_dir() / "state.json"


def service_dir(name: str) -> Path:
    """Per-service directory (config, data, run, log) under the lab root."""
    return lab_dir() / name


def profile_path() -> Path:
    """The environment profile that targets this lab."""
    return REPO_ROOT / "fixtures" / "environments" / "lab.toml"


def blocked_parents(path: Path | None = None) -> list[Path]:
    """Ancestors of the lab directory that other users cannot traverse.

    The daemons run as their own users (postgres, postfix, dovecot, www-data) and must reach
    files under ``.lab/``; a checkout under a private home (``/root`` is 0700) hides them.
    """
    target = (path or lab_dir()).resolve()
    return [p for p in target.parents if p.exists() and not p.stat().st_mode & 0o001]
