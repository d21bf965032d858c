"""Vantage on the real lab: every report says where the suite connected from, and a profile's
``[environment] source_address`` is where the probes connect from (probes/vantage.py)."""
from __future__ import annotations

from probes.vantage import LOCAL_WARNING
from tests.labctl import run_suite
from tests.profile_variants import lab_variant


def test_reports_name_the_source_address_and_warn_on_loopback(good_lab, tmp_path):
    run = run_suite("suites/smoke", "--evidence", "-v", tmp_path=tmp_path)  # -v: the header
    assert run.returncode == 0, run.messages()
    vantage = run.results["metadata"]["vantage"]
    assert "smtp.mx (localhost:10025)" in vantage
    assert f"from 127.0.0.1 — loopback: {LOCAL_WARNING}" in vantage
    assert "mssante vantage: api (localhost:10443)" in run.stdout
    assert "- **Point de vue (adresse source):** api (localhost:10443)" in (
        run.reports_dir / "summary.md").read_text()
    bundle = tmp_path / "reports" / "evidence" / run.results["metadata"]["run_id"]
    assert "| Vantage (source address) | api (localhost:10443)" in (bundle / "evidence.md").read_text()


def test_source_address_binds_the_probes(good_lab, tmp_path):
    profile = lab_variant(tmp_path, "lab-from-127-0-0-2", {
        "platform_env_port = 10080": 'platform_env_port = 10080\nsource_address = "127.0.0.2"'})
    run = run_suite("suites/smoke", "--env", str(profile), tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    lines = run.results["metadata"]["vantage"].split("; ")
    assert any(line.startswith("api (localhost:10443)") and " from 127.0.0.2 — loopback" in line
               for line in lines), lines
    # libpq and redis-py cannot bind: the report says where they really connect from.
    assert any(line.startswith("postgres (127.0.0.1:10432), redis (127.0.0.1:10379) from 127.0.0.1")
               for line in lines), lines
