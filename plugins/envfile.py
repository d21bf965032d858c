"""``KEY=VALUE`` files: the profile's ``env_file`` (secrets kept out of the profile itself).

The product reads them (plugins/profile.py) and the lab writes them (lab/secrets.py), so the
parser lives here, in the product, which never imports the lab.
"""
from __future__ import annotations

from pathlib import Path


def parse_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (no shell expansion; blank lines and # comments ignored)."""
    return parse_env_text(path.read_text())


def parse_env_text(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a file already read (the platform's, through testinfra)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values
