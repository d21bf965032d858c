"""The lab's reference API: the small REST service the seed's smoke tests talk to.

It is real code with real dependencies (PostgreSQL for users and mailboxes, Redis for
tokens), so the suite's checks judge real behaviour: ``/health`` reports what it actually
measured, login checks real password hashes, maintenance mode really refuses requests.

The package is self-contained (it imports nothing else from ``lab``) and carries its own
``VERSION`` and ``migrations/``, so a copy of this folder is a deployable release: a
deploy/rollback can switch between two copies and the schema they expect.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def version() -> str:
    """The release version, as written in this package's VERSION file."""
    return (PACKAGE_DIR / "VERSION").read_text().strip()
