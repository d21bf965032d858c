"""Variants of the lab profile for "broken input" tests: same lab, one setting changed.

The copy lives in the test's tmp folder, so the lab profile's relative paths (``../../.lab/...``)
are made absolute against its real folder; each replacement must match exactly once, so a
changed lab profile breaks the test loudly instead of silently testing nothing.
"""
from __future__ import annotations

from pathlib import Path

from plugins.igc_sante import PRODUCTION_BUNDLE
from plugins.profile import ENV_DIR

# lab.toml as a production profile (kind = "production"): a production profile must trust
# exactly the shipped IGC Santé PRODUCTION anchors and cannot call them self-made (it is refused
# at load otherwise), so the lab's own TEST-shaped root is replaced by them. Lab chains then
# build to nothing trusted, which is what a production profile should say of them.
PRODUCTION: dict[str, str] = {
    'kind = "test"': 'kind = "production"',
    f'anchors = "{ENV_DIR}/../../.lab/pki/anchors-test.pem"': f'anchors = "{PRODUCTION_BUNDLE}"',
    "self_made = true": "self_made = false",
}


def lab_variant(tmp_path: Path, name: str, replacements: dict[str, str] | None = None,
                extra: str = "") -> Path:
    """Write ``<tmp_path>/<name>.toml``: lab.toml renamed to ``name``, edited, with ``extra`` appended."""
    text = (ENV_DIR / "lab.toml").read_text().replace('"../', f'"{ENV_DIR}/../')
    for old, new in {'name = "lab"': f'name = "{name}"', **(replacements or {})}.items():
        if text.count(old) != 1:
            raise AssertionError(f"lab.toml: expected exactly one {old!r} to replace")
        text = text.replace(old, new)
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n" + extra)
    return path
