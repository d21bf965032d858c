"""Run a throw-away test module through the real plugin, in a subprocess, without the lab.

Plugin features (waivers, evidence bundle) are proven on tests whose outcome we choose — a
pass, a deliberate failure, an unreachable target — against a minimal profile that names no
service, exactly as a user's ``pytest`` would run them.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.profile import ENV_DIR
from tests.plugin.test_cli import pytest_run

POLICY = (ENV_DIR.parent / "policies" / "anssi-tls.toml").resolve()


@dataclass
class TmpRun:
    proc: subprocess.CompletedProcess[str]
    reports: Path

    @property
    def run_dir(self) -> Path:
        return next((self.reports / "runs").glob("*-*"))

    @property
    def results(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "results.json").read_text())

    @property
    def bundle(self) -> Path:
        return self.reports / "evidence" / self.results["metadata"]["run_id"]

    def outcomes(self) -> dict[str, str]:
        """test name (after ``::``) → outcome."""
        return {r["nodeid"].split("::", 1)[1]: r["outcome"] for r in self.results["results"]}

    def result(self, name: str) -> dict[str, Any]:
        return next(r for r in self.results["results"] if r["nodeid"].endswith("::" + name))


def run_tmp_suite(tmp_path: Path, source: str, *args: str, profile_extra: str = "") -> TmpRun:
    """Write ``source`` as test_tmp.py and a minimal profile beside it, run pytest on it."""
    (tmp_path / "test_tmp.py").write_text(source)
    profile = tmp_path / "tmpenv.toml"
    profile.write_text(f'[environment]\nname = "tmpenv"\nkind = "test"\n\n[policy]\n'
                       f'tls = "{POLICY}"\n{profile_extra}')
    reports = tmp_path / "reports"
    proc = pytest_run("-p", "plugins", str(tmp_path / "test_tmp.py"), "--env", str(profile),
                      "--rootdir", str(tmp_path), "--reports-dir", str(reports), *args,
                      cwd=tmp_path)
    return TmpRun(proc, reports)
