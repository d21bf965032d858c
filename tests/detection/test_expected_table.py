"""The detection matrix's table on its own (no lab): it covers every lab fault and every suite,
names only tests that exist, is rendered unchanged in the README, and its comparison catches
each kind of difference."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lab.faults import FAULTS
from tests.detection import readme
from tests.detection.expected import (
    GOOD,
    TABLE,
    Expectation,
    TableError,
    compare,
    load,
    observed_toml,
)
from tests.plugin.test_cli import pytest_run

REPO = Path(__file__).resolve().parents[2]


def test_every_lab_fault_has_one_entry():
    assert sorted(load().faults) == sorted(FAULTS)


def test_every_suite_is_run_or_excluded_with_a_reason():
    matrix = load()
    suites = {f"suites/{p.name}" for p in (REPO / "suites").iterdir()
              if p.is_dir() and not p.name.startswith("__")}
    assert set(matrix.suites) | set(matrix.excluded) == suites
    assert not set(matrix.suites) & set(matrix.excluded)
    assert all(why.strip() for why in matrix.excluded.values())


def test_every_test_id_exists(tmp_path):
    matrix = load()
    proc = pytest_run(*matrix.suites, "--env", "lab", "--collect-only", "-q",
                      "--reports-dir", str(tmp_path))
    collected = {line for line in proc.stdout.splitlines() if "::" in line}
    assert len(collected) > 200, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert matrix.all_ids() - collected == set()


def test_readme_section_is_the_rendered_table():
    section = readme.current(readme.README.read_text())
    assert section is not None, "README.md lacks the detection matrix markers"
    assert section == readme.render(load()), (
        "README.md's detection matrix differs from tests/detection/expected.toml: "
        "run `.venv/bin/python -m tests.detection.readme`")


def test_rendered_section_names_each_fault_and_its_checks():
    matrix = load()
    text = readme.render(matrix)
    for name, entry in matrix.faults.items():
        assert f"| `{name}` | {FAULTS[name]} | {len(entry.fail)} |" in text
        for test in entry.fail:
            assert f"`{test.split('::', 1)[1]}`" in text


# --- the comparison --------------------------------------------------------------------------

def _entry(**sets: set[str]) -> Expectation:
    fields = {k: frozenset(sets.get(k, set())) for k in ("fail", "error", "warning", "skipped")}
    return Expectation("x", "why", **fields, services=(), message=None)


def test_compare_names_each_kind_of_difference():
    expected = _entry(fail={"s/a.py::t1", "s/a.py::t2"}, error={"s/a.py::t2"},
                      skipped={"s/a.py::t5"})
    outcomes = {"s/a.py::t1": "failed", "s/a.py::t2": "failed", "s/a.py::t3": "error",
                "s/a.py::t4": "warning", "s/a.py::t5": "passed"}
    assert compare(expected, outcomes) == [
        "unexpected fail or error: s/a.py::t3 (error)",
        "unexpected error (could not run): s/a.py::t3 (error)",
        "expected error (could not run) but failed: s/a.py::t2",
        "unexpected warning: s/a.py::t4 (warning)",
        "expected skipped but passed: s/a.py::t5",
    ]
    assert compare(expected, {**outcomes, "s/a.py::t2": "error", "s/a.py::t3": "passed",
                              "s/a.py::t4": "passed", "s/a.py::t5": "skipped"}) == []


def test_a_test_that_should_fail_but_is_missing_is_named():
    assert compare(_entry(fail={"s/a.py::gone"}), {}) == [
        "expected fail or error but not run: s/a.py::gone"]


def test_observed_toml_is_the_tables_shape():
    text = observed_toml("db-down", {"s/a.py::t1": "error", "s/a.py::t2": "passed"})
    assert tomllib.loads(text) == {"faults": {"db-down": {"fail": ["s/a.py::t1"],
                                                          "error": ["s/a.py::t1"]}}}


# --- a malformed table is one error naming the key ------------------------------------------

GOOD_ENTRY = '[run]\nsuites = ["suites/smoke"]\n[good]\n'


@pytest.mark.parametrize("text, error", [
    ("[good]\n", "[run] suites"),
    ('[run]\nsuites = ["suites/smoke"]\n', "[good] is missing"),
    (GOOD_ENTRY + 'fail = ["s/a.py::t"]\n', "[good] fail must be empty"),
    (GOOD_ENTRY + '[faults.x]\nfail = ["s/a.py::t"]\n', "faults.x.why"),
    (GOOD_ENTRY + '[faults.x]\nwhy = "w"\nfail = ["t"]\n', "faults.x.fail: expected a list"),
    (GOOD_ENTRY + '[faults.x]\nwhy = "w"\nerror = ["s/a.py::t"]\n', "must also be in fail"),
    (GOOD_ENTRY + '[faults.x]\nwhy = "w"\nfails = []\n', "unknown key(s) fails"),
    (GOOD_ENTRY + '[faults.x]\nwhy = "w"\nfail = ["s/a.py::t"]\nmessage = {test = "s/b.py::u", '
     'contains = []}\n', "faults.x.message"),
])
def test_malformed_table_is_named(tmp_path, text, error):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TableError, match=re.escape(error)):
        load(path)


def test_shipped_table_loads():
    matrix = load(TABLE)
    assert GOOD not in matrix.faults and matrix.good.skipped
