"""Render the detection matrix (``expected.toml``) as the README's "What each fault trips"
section, so the README never drifts from the table: ``test_expected_table.py`` fails when the
README section differs, and ``python -m tests.detection.readme`` rewrites it.
"""
from __future__ import annotations

import sys
import textwrap
from collections import defaultdict
from pathlib import Path

from lab.faults import FAULTS
from tests.detection.expected import Expectation, Matrix, load

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- detection-matrix: generated from tests/detection/expected.toml by " \
        "`python -m tests.detection.readme`; do not edit by hand -->"
END = "<!-- detection-matrix: end -->"
WIDTH = 96


def _suite(test: str) -> str:
    return test.split("/")[1]


def _by_file(tests: frozenset[str]) -> list[str]:
    files: dict[str, list[str]] = defaultdict(list)
    for test in sorted(tests):
        path, name = test.split("::", 1)
        files[path].append(name)
    return [f"- `{path}`: " + ", ".join(f"`{n}`" for n in names) for path, names in files.items()]


def _details(entry: Expectation) -> str:
    lines = [f"<details><summary><code>{entry.name}</code> — {len(entry.fail)} checks</summary>",
             "", entry.why, ""]
    lines += _by_file(entry.fail)
    if entry.error:
        lines += ["", "Reported as *error* (could not run), not as failed: "
                  + ", ".join(f"`{t.split('::', 1)[1]}`" for t in sorted(entry.error)) + "."]
    if entry.services:
        lines += ["", "The summary shows failing: " + ", ".join(f"`{s}`" for s in entry.services)
                  + "."]
    return "\n".join(lines + ["", "</details>"])


def render(matrix: Matrix) -> str:
    """The whole section between (and including) the START and END markers."""
    suites = " ".join(matrix.suites)
    excluded = " ".join(f"`{s}` is not run: {why}." for s, why in matrix.excluded.items())
    intro = (f"`tests/detection/test_matrix.py` starts the lab with each fault, runs `pytest "
             f"{suites} --env lab -n 2` and requires *exactly* these checks to fail: one more "
             f"or one fewer fails the matrix. The good lab fails nothing and skips only "
             f"{len(matrix.good.skipped)} checks, each for a stated reason (not configured in "
             f"the lab, not applicable to a mail port). {excluded}")
    lines = [
        START, "",
        *textwrap.wrap(intro, WIDTH, break_long_words=False, break_on_hyphens=False), "",
        "| fault | what the lab breaks | checks that fail | in suites |",
        "|---|---|---:|---|",
    ]
    for name, entry in matrix.faults.items():
        hit = sorted({_suite(t) for t in entry.fail})
        lines.append(f"| `{name}` | {FAULTS.get(name, '(not a lab fault)')} | {len(entry.fail)} "
                     f"| {', '.join(hit)} |")
    lines.append("")
    for entry in matrix.faults.values():
        lines += [_details(entry), ""]
    return "\n".join(lines + [END])


def current(text: str) -> str | None:
    """The README's section as it stands (None when the markers are missing)."""
    if START not in text or END not in text:
        return None
    return text[text.index(START):text.index(END) + len(END)]


def main() -> int:
    text = README.read_text()
    section = current(text)
    if section is None:
        print(f"{README}: markers missing; add the two lines\n{START}\n{END}", file=sys.stderr)
        return 1
    README.write_text(text.replace(section, render(load())))
    print(f"{README}: detection matrix section rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
