"""Which trust anchors a profile may name: IGC Santé's, or anchors it says are home-made.

Every "chains to IGC Santé" verdict is only as true as the anchors behind it. So a production
profile's ``[trust] anchors`` must be exactly the agency's PRODUCTION root and ORGANISATIONS
intermediate, shipped in ``fixtures/igc-sante/`` and recognised by SHA-256 fingerprint (refused
at load otherwise). A test profile's must be the agency's TEST hierarchy by name (judged by
``suites/certs/test_trust_store.py``), unless the profile declares them ``self_made`` (the
lab's own CA): then every report says in its header that chains are checked against non-IGC
anchors.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from probes import certificates

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "igc-sante"
PRODUCTION_BUNDLE = FIXTURES / "anchors-prod.pem"
FINGERPRINTS = FIXTURES / "fingerprints.toml"
SELF_MADE_NOTE = ("self-made anchors, not IGC Santé: chains are checked against non-IGC "
                  "anchors")


def normalise(fingerprint: str) -> str:
    """``2D:9E:…`` as :func:`probes.certificates.fingerprint` writes it (lower hex)."""
    return fingerprint.replace(":", "").strip().lower()


@lru_cache(maxsize=1)
def production_fingerprints() -> dict[str, str]:
    """SHA-256 fingerprint -> subject of each IGC Santé PRODUCTION anchor (fingerprints.toml)."""
    data = tomllib.loads(FINGERPRINTS.read_text(encoding="utf-8"))
    return {normalise(entry["sha256"]): entry["subject"] for entry in data["anchors"]}


def production_problem(path: Path) -> str | None:
    """Why the bundle at ``path`` is not exactly the IGC Santé PRODUCTION anchors (None: it is),
    as the end of a sentence the profile loader prefixes with file and key."""
    expected = production_fingerprints()
    shipped = f"use the shipped {PRODUCTION_BUNDLE}"
    try:
        found = certificates.load_pem_chain(path.read_bytes())
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}): {shipped}"
    except ValueError as exc:
        return f"is not a PEM bundle ({exc}): {shipped}"
    if not found:
        return f"holds no PEM certificate ({path}): {shipped}"
    prints = {certificates.fingerprint(cert): cert for cert in found}
    foreign = [certificates.common_name(c.subject) for fp, c in prints.items()
               if fp not in expected]
    if foreign:
        return (f"must be exactly the IGC Santé PRODUCTION anchors (by SHA-256 fingerprint); "
                f"{path} also holds {', '.join(foreign)}: {shipped}")
    missing = [subject for fp, subject in expected.items() if fp not in prints]
    if missing:
        return (f"must be exactly the IGC Santé PRODUCTION anchors (by SHA-256 fingerprint); "
                f"{path} lacks {'; '.join(missing)}: {shipped}")
    return None


def anchors_statement(data: dict[str, Any], profile_dir: Path) -> str | None:
    """The report-header line about the profile's anchors: what they are, and for self-made
    ones that the chains prove nothing about IGC Santé. None without ``[trust] anchors``."""
    trust = data.get("trust", {})
    if "anchors" not in trust:
        return None
    path = (profile_dir / trust["anchors"]).resolve()
    if trust.get("self_made"):
        return f"{SELF_MADE_NOTE} ({path})"
    kind = data["environment"]["kind"]
    what = ("IGC Santé PRODUCTION (fingerprints checked at load)" if kind == "production"
            else "IGC Santé TEST (checked by name in suites/certs)")
    return f"{what} ({path})"
