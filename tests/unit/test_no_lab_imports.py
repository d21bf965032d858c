"""The product (plugins/, probes/, policy/, suites/) never imports the lab.

The lab is a test double for a real platform: a product module that imports it would break (or
quietly behave differently) on an operator's machine where the lab was never set up. Checked on
the source's syntax trees, so a lazy import inside a function is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("plugins", "probes", "policy", "suites")


def lab_import_lines(source: str) -> list[int]:
    """Line numbers of every ``import lab...`` / ``from lab... import`` in the source."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "lab" or name.startswith("lab.") for name in names):
            lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("folder", PRODUCT)
def test_product_does_not_import_lab(folder: str) -> None:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"{folder}/ has no Python files: the check would prove nothing"
    offenders = [f"{path.relative_to(REPO)}:{line}" for path in files
                 for line in lab_import_lines(path.read_text(encoding="utf-8"))]
    assert not offenders, f"the product must not import the lab: {', '.join(offenders)}"


def test_every_form_of_lab_import_is_seen() -> None:
    source = ("import os, lab\nfrom lab.secrets import ensure\n"
              "def f():\n    import lab.process as p\n"
              "import labels\nfrom laboratory import x\nfrom . import lab\n")
    assert lab_import_lines(source) == [1, 2, 4]
