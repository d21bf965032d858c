"""Requirement IDs: the catalogue and the ``@pytest.mark.requirement`` marker.

Every test under ``suites/`` must name at least one requirement from
``fixtures/requirements/*.toml``; an unknown ID or a missing marker is a collection error, so
the evidence matrix can never silently lose a check.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "requirements"
SEVERITIES = ("critical", "high", "medium", "low")
SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    source: str
    severity: str
    file: str


def load_catalogue(directory: Path = CATALOGUE_DIR) -> dict[str, Requirement]:
    """All requirements from every catalogue file; duplicates and bad fields are errors."""
    catalogue: dict[str, Requirement] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise pytest.UsageError(f"{path}: malformed TOML: {exc}") from exc
        for index, entry in enumerate(data.get("requirement", [])):
            for key in ("id", "title", "source", "severity"):
                if not isinstance(entry.get(key), str):
                    raise pytest.UsageError(f"{path}: [[requirement]] #{index + 1} missing "
                                            f"string key '{key}'")
            if entry["severity"] not in SEVERITIES:
                raise pytest.UsageError(f"{path}: requirement {entry['id']}: severity must be one "
                                        f"of {', '.join(SEVERITIES)}")
            if entry["id"] in catalogue:
                raise pytest.UsageError(f"{path}: requirement {entry['id']} already defined in "
                                        f"{catalogue[entry['id']].file}")
            catalogue[entry["id"]] = Requirement(entry["id"], entry["title"], entry["source"],
                                                 entry["severity"], path.name)
    return catalogue


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for marker in item.iter_markers("requirement"):
        ids.extend(marker.args)
    return ids


def configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): requirement IDs (fixtures/requirements/) this test proves")
    config.stash[CATALOGUE_KEY] = load_catalogue()


CATALOGUE_KEY = pytest.StashKey[dict[str, Requirement]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    catalogue = config.stash[CATALOGUE_KEY]
    problems = []
    for item in items:
        ids = requirement_ids(item)
        in_suites = SUITES_DIR in Path(str(item.path)).resolve().parents
        if in_suites and not ids:
            problems.append(f"{item.nodeid}: no @pytest.mark.requirement")
        for rid in ids:
            if rid not in catalogue:
                problems.append(f"{item.nodeid}: unknown requirement '{rid}'")
        for rid in ids:
            item.user_properties.append(("requirement", rid))
    if problems:
        raise pytest.UsageError("requirement errors:\n  " + "\n  ".join(problems))
