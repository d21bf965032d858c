"""The detection matrix: the lab in each state of ``expected.toml`` (good, then every fault),
every non-destructive suite run against it as a user runs them, and the outcomes compared with
the table — a check that fails unexpectedly, or that should fail and passes, fails here.

One ``pytest <suites> --env lab -n 2`` per state (the TLS scans run side by side and are
shared by the workers; the lab switches by restarting only the services a fault changes). Every run is also checked for
leaked secrets in any report or evidence file, and, where the table says so, for the services
the summary shows failing and the wording of one failure message.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from lab import api as api_package
from lab import deploy
from plugins import backups
from plugins import profile as profiles
from tests import labctl
from tests.detection.expected import GOOD, Expectation, compare, load, observed_toml

MATRIX = load()
# Two xdist workers: the checks mostly wait on servers, and the faults that stop delivery make
# four checks each wait out the delivery deadline; two at a time halves that.
XDIST_WORKERS = 2


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab serving its default release, with one fresh backup in a folder of its own
    (``suites/pre_deploy`` and ``suites/backup`` judge it; the lab's own backups are left
    alone)."""
    labctl.lab_up()
    deploy.ensure_platform()
    default = deploy.tag(api_package.version())
    assert deploy.deployed() == default, (
        f"the lab serves {deploy.deployed()}, not {default}: an earlier run did not clean up")
    folder = tmp_path_factory.mktemp("backups")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BACKUP_DIR", str(folder))
        backups.create(profiles.load("lab"))
    return folder


def _leaked_secrets(reports: Path) -> list[str]:
    """Files under the run's reports folder (reports, evidence, transcripts) that hold a lab
    secret."""
    secrets = labctl.lab_secrets()
    leaked = []
    for path in reports.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaked += [f"{path.relative_to(reports)}: {s[:3]}…" for s in secrets
                       if s.encode() in data]
    return leaked


def _explain(entry: Expectation, run: labctl.SuiteRun, problems: list[str]) -> str:
    involved = entry.fail | entry.warning | run.failing() | run.with_outcome("warning")
    messages = "\n".join(f"  {r['nodeid']}: {r['outcome']}: {r['message'][:300]}"
                         for r in run.results["results"] if r["nodeid"] in involved)
    return ("\n".join(problems) + f"\n--- messages of the tests involved:\n{messages}"
            f"\n--- this run, in the table's shape (review before editing expected.toml):\n"
            + observed_toml(entry.name, run.outcomes()))


@pytest.mark.parametrize("name", [GOOD, *MATRIX.faults])
def test_lab_state_trips_exactly_the_expected_checks(name, lab_state, backup_dir, tmp_path):
    entry = MATRIX.good if name == GOOD else MATRIX.faults[name]
    lab_state(name)
    run = labctl.run_suite(*MATRIX.suites, "-n", str(XDIST_WORKERS), tmp_path=tmp_path,
                           env={"BACKUP_DIR": str(backup_dir)})
    assert run.results["results"], run.stdout[-2000:]
    problems = compare(entry, run.outcomes())
    assert not problems, _explain(entry, run, problems)
    assert (run.returncode == 0) == (not entry.fail), (
        f"exit {run.returncode} with {len(entry.fail)} failing checks\n{run.stdout[-2000:]}")

    assert not _leaked_secrets(tmp_path / "reports"), _leaked_secrets(tmp_path / "reports")
    summary = (run.reports_dir / "summary.md").read_text()
    for service in entry.services:
        row = summary.split(f"| {service} |", 1)
        assert len(row) == 2 and "❌ en échec" in row[1].split("\n", 1)[0], (
            f"the summary does not show {service} failing:\n{summary[:3000]}")
    if entry.message:
        message = next(r["message"] for r in run.results["results"]
                       if r["nodeid"] == entry.message.test)
        missing = [f for f in entry.message.contains if f not in message]
        assert not missing, f"{entry.message.test}: {missing} not in: {message}"
