"""The API contract is profile data (issue 13 item 3), on the real lab under ``api-health-shape``:
the API answers readiness as ``{"status": "ready", "checks": {"db": "ok", ...}}``.

A profile describing that contract (accepted values, dependency checks as bare strings) sees
every API check of smoke and post_deploy pass, and the health check command report healthy;
the default lab profile (the seed's contract) sees exactly the health checks fail, which is
what the detection matrix pins. The good lab's seed-shaped answer fails the alternative
contract's dependency format: the contract is read, not ignored.
"""
from __future__ import annotations

import json
import subprocess
import sys

from tests.labctl import REPO, run_suite
from tests.profile_variants import lab_variant

SUITES = ("suites/smoke", "suites/post_deploy")
HEALTH_CHECKS = {"suites/post_deploy/test_api.py::test_health_reports_dependencies_ok",
                 "suites/smoke/test_smoke.py::test_api_health_answers_json"}
READINESS_CONTRACT = {
    'health_ok = ["ok"]': 'health_ok = ["ok", "ready", "healthy", "UP"]',
    'health_checks_format = "objects"': 'health_checks_format = "strings"',
}


def _api_checks(run) -> dict[str, str]:
    return {nodeid: outcome for nodeid, outcome in run.outcomes().items()
            if nodeid.startswith("suites/post_deploy/test_api.py::")
            or nodeid == "suites/smoke/test_smoke.py::test_api_health_answers_json"}


def _healthcheck(profile: str, tmp_path) -> tuple[int, dict]:
    output = tmp_path / "health-status.json"
    proc = subprocess.run([sys.executable, "-m", "plugins.healthcheck", "--env", profile,
                           "--output", str(output), "--threshold", "99"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(output.read_text())


def test_alternative_health_shape_passes_with_a_profile_describing_it(lab_fault, tmp_path):
    lab_fault("api-health-shape")
    profile = lab_variant(tmp_path, "lab-readiness", READINESS_CONTRACT)
    run = run_suite(*SUITES, "--env", str(profile), tmp_path=tmp_path / "described")
    api = _api_checks(run)
    assert len(api) == 6 and set(api.values()) == {"passed"}, run.messages()
    assert run.failing() == set(), run.messages()
    assert run.returncode == 0, run.messages()

    code, status = _healthcheck(str(profile), tmp_path / "described")
    api_health = next(s for s in status["services"] if s["service"] == "API")
    assert (code, api_health["ok"]) == (0, True), status
    assert api_health["detail"] == "/health status ready", api_health

    default = run_suite(*SUITES, tmp_path=tmp_path / "default")
    assert default.failing() == HEALTH_CHECKS, default.messages()
    assert "status 'ready' at /status is not one of 'ok'" in default.messages()
    code, status = _healthcheck("lab", tmp_path / "default")
    assert code == 1 and not next(s for s in status["services"] if s["service"] == "API")["ok"]


def test_seed_shape_fails_a_contract_declaring_string_checks(good_lab, tmp_path):
    profile = lab_variant(tmp_path, "lab-readiness", READINESS_CONTRACT)
    run = run_suite("suites/post_deploy/test_api.py", "--env", str(profile), tmp_path=tmp_path)
    check = "suites/post_deploy/test_api.py::test_health_reports_dependencies_ok"
    assert run.failing() == {check}, run.messages()
    assert "not strings, as the contract declares" in run.messages()
