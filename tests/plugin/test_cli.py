"""The plugin as a user meets it: clear one-line errors before any test runs, no secrets out."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.labctl import REPO


def pytest_run(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if k != "MSSANTE_ENV"}
    environ["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**environ, **(env or {})})


def test_no_env_is_a_usage_error():
    proc = pytest_run("suites/smoke")
    assert proc.returncode == 4
    assert "no environment: pass --env NAME" in proc.stderr
    assert "collected" not in proc.stdout


def test_unknown_env_names_the_file():
    proc = pytest_run("suites/smoke", "--env", "nowhere")
    assert proc.returncode == 4
    assert "nowhere.toml" in proc.stderr and "known environments" in proc.stderr


def test_env_from_environment_variable(tmp_path):
    proc = pytest_run("suites/smoke", "--collect-only", "-q", env={"MSSANTE_ENV": "lab"})
    assert proc.returncode == 0, proc.stderr
    assert "test_smoke.py::test_redis_ping_with_auth" in proc.stdout


def test_malformed_profile_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[environment]\nname = "bad"\nkind = "test"\n[postgres]\nhost = "h"\n')
    proc = pytest_run("suites/smoke", "--env", str(bad))
    assert proc.returncode == 4
    assert f"{bad}: [postgres] missing key 'port'" in proc.stderr


def test_unknown_requirement_is_a_collection_error(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n@pytest.mark.requirement('NO-SUCH-ID')\ndef test_x():\n    pass\n")
    proc = pytest_run("-p", "plugins", str(tmp_path / "test_x.py"), "--env", "lab",
                      "--rootdir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode != 0
    assert "unknown requirement 'NO-SUCH-ID'" in proc.stdout + proc.stderr


def test_every_suite_test_carries_a_known_requirement():
    proc = pytest_run("suites", "--env", "lab", "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "requirement errors" not in proc.stdout + proc.stderr


def test_secrets_never_reach_reports(tmp_path):
    """A test that prints and asserts on a secret: every report file shows it masked."""
    secret = "Sup3r-Secret-Value-0001"
    (tmp_path / "test_leak.py").write_text(
        "import os, logging, pytest\n"
        "@pytest.mark.requirement('SEED-SMOKE')\n"
        "def test_leak(env_profile):\n"
        "    pw = env_profile.section('redis').secret('password')\n"
        "    print('stdout', pw)\n"
        "    logging.getLogger('x').warning('log %s', pw)\n"
        "    assert pw == 'something-else'\n")
    reports = tmp_path / "reports"
    proc = pytest_run("-p", "plugins", str(tmp_path / "test_leak.py"), "--env", "lab",
                      "--rootdir", str(tmp_path), "--reports-dir", str(reports), cwd=tmp_path,
                      env={"MSSANTE_LAB_REDIS_PASSWORD": secret})
    assert proc.returncode == 1, proc.stdout[-2000:]
    files = [p for p in reports.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"junit.xml", "report.html", "summary.md", "results.json"}
    for path in files:
        assert secret not in path.read_text(errors="replace"), f"secret leaked into {path.name}"
    assert "Secret('********')" in (reports.rglob("junit.xml").__next__()).read_text()
