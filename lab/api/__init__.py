"""The lab's reference API: the small REST service the seed's smoke tests talk to.

It is real code with real dependencies (PostgreSQL for users and mailboxes, Redis for
tokens), so the suite's checks judge real behaviour: ``/health`` reports what it actually
measured, login checks real password hashes, maintenance mode really refuses requests.

The package is self-contained (it imports nothing else from ``lab``) and carries its own
``VERSION`` and ``migrations/``: the release it ships. A *release folder* (a ``VERSION`` file
and a ``migrations/`` folder, see ``lab/releases/``) can replace them: the settings name the
one to serve (``config.Settings.release_dir``), which is how ``python -m lab deploy`` and
``rollback`` switch the running version and the schema it expects.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def version(release_dir: Path = PACKAGE_DIR) -> str:
    """The release version, as written in the release folder's VERSION file."""
    return (release_dir / "VERSION").read_text().strip()
