"""One run, one identity: run id, start time and evidence folder shared by every worker.

The controller chooses them; under pytest-xdist workers receive them through ``workerinput``
(the hook is optional so the plugin loads without xdist).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPORTS_DIR = Path(__file__).resolve().parent.parent / "reports"
RUN_KEY = pytest.StashKey["RunInfo"]()


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started: float


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mssante").addoption(
        "--reports-dir", dest="mssante_reports_dir", default=None, metavar="DIR",
        help="where reports and evidence go (default: reports/)")


def configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "mssante_run_id" in workerinput:
        info = RunInfo(workerinput["mssante_run_id"], workerinput["mssante_started"])
    else:
        now = time.time()
        info = RunInfo(time.strftime("%Y%m%d_%H%M%S", time.gmtime(now)), now)
    config.stash[RUN_KEY] = info


def reports_dir(config: pytest.Config) -> Path:
    option = config.getoption("mssante_reports_dir", None)
    return Path(option).resolve() if option else REPORTS_DIR


def evidence_dir(config: pytest.Config) -> Path:
    path = reports_dir(config) / "evidence" / config.stash[RUN_KEY].run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller → worker: the run's identity."""
    info = node.config.stash[RUN_KEY]
    node.workerinput["mssante_run_id"] = info.run_id
    node.workerinput["mssante_started"] = info.started


@pytest.fixture(scope="session")
def run_info(pytestconfig: pytest.Config) -> RunInfo:
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture(scope="session")
def evidence_path(pytestconfig: pytest.Config) -> Path:
    """This run's evidence folder (same for every xdist worker)."""
    return evidence_dir(pytestconfig)
