"""Waivers: validated up front, applied to failures only, visible everywhere, gone when expired."""
from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pytest

from plugins.requirements import load_catalogue
from plugins.waivers import DEFAULT_FILE, Waiver, WaiverError, load
from tests.tmp_suite import run_tmp_suite

CATALOGUE = load_catalogue()
TODAY = dt.date.today()
FUTURE = TODAY + dt.timedelta(days=90)
PAST = TODAY - dt.timedelta(days=1)
GOOD = ('[[waiver]]\nid = "SEED-POST-9"\njustification = "Grafana arrives in Q3"\n'
        'approver = "J. Martin, RSSI"\nexpires = {expires}\n')

SOURCE = """
import pytest

@pytest.mark.requirement("SEED-MON-RULES")
def test_fails():
    assert 1 == 2, "deliberate failure"

@pytest.mark.requirement("SEED-MON-TARGETS")
def test_fails_too():
    assert False, "another failure"

@pytest.mark.requirement("SEED-MON-RULES")
def test_cannot_run():
    raise ConnectionRefusedError("target unreachable")

@pytest.mark.requirement("SEED-MON-RULES")
def test_passes():
    pass
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.toml"
    path.write_text(text)
    return path


def waiver_text(waiver_id: str, expires: dt.date, **extra: str) -> str:
    lines = [f'id = "{waiver_id}"', 'justification = "known issue, ticket OPS-7"',
             'approver = "J. Martin, RSSI"', f"expires = {expires.isoformat()}"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "[[waiver]]\n" + "\n".join(lines) + "\n"


# ---- the file ----------------------------------------------------------------------------------
def test_shipped_file_is_valid_and_empty():
    assert load(DEFAULT_FILE, CATALOGUE).waivers == []


def test_valid_file_loads(tmp_path):
    waivers = load(write(tmp_path, GOOD.format(expires=FUTURE.isoformat())), CATALOGUE).waivers
    assert waivers == [Waiver("SEED-POST-9", "Grafana arrives in Q3", "J. Martin, RSSI", FUTURE)]


@pytest.mark.parametrize("key", ["justification", "approver", "expires"])
def test_waiver_without_a_mandatory_key_is_refused(tmp_path, key):
    text = "\n".join(line for line in GOOD.format(expires=FUTURE).splitlines()
                     if not line.startswith(key))
    path = write(tmp_path, text)
    with pytest.raises(WaiverError) as error:
        load(path, CATALOGUE)
    assert str(error.value).startswith(f"{path}: [[waiver]] #1 (SEED-POST-9) missing key '{key}'")


@pytest.mark.parametrize("text, message", [
    ('[[waiver]]\nid = "SEED-POST-9"\njustification = " "\napprover = "a"\nexpires = 2030-01-01\n',
     "key 'justification' must be a non-empty string"),
    ('[[waiver]]\nid = "SEED-POST-9"\njustification = "j"\napprover = "a"\nexpires = "soon"\n',
     "key 'expires' must be a date (YYYY-MM-DD), got 'soon'"),
    ('[[waiver]]\nid = "SEED-POST-9"\njustification = "j"\napprover = "a"\n'
     'expires = 2030-01-01T10:00:00\n', "key 'expires' must be a date"),
    ('[[waiver]]\nid = "NO-SUCH-REQ"\njustification = "j"\napprover = "a"\nexpires = 2030-01-01\n',
     "key 'id': 'NO-SUCH-REQ' is neither a known requirement ID nor a test id"),
    ('[[waiver]]\nid = "SEED-POST-9"\njustification = "j"\napprover = "a"\n'
     'expires = 2030-01-01\nticket = "x"\n', "unknown key 'ticket'"),
    ('[[waiver]]\nid = "SEED-POST-9"\njustification = "j"\napprover = "a"\n'
     'expires = 2030-01-01\nenvironments = "prod"\n', "key 'environments' must be a list"),
    ('[waivers]\nid = "x"\n', "unknown key 'waivers' (expected [[waiver]] tables)"),
    ('[[waiver]\nid = "x"\n', "malformed TOML"),
])
def test_malformed_file_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(WaiverError) as error:
        load(path, CATALOGUE)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_expiry_date_is_the_last_day_it_applies():
    waiver = Waiver("SEED-POST-9", "j", "a", TODAY)
    assert not waiver.expired(TODAY)
    assert waiver.expired(TODAY + dt.timedelta(days=1))


def test_what_a_waiver_covers():
    by_requirement = Waiver("SEED-POST-9", "j", "a", FUTURE)
    by_test = Waiver("suites/x/test_y.py::test_z", "j", "a", FUTURE)
    by_param = Waiver("suites/x/test_y.py::test_z[a]", "j", "a", FUTURE, ("staging",))
    assert by_requirement.covers("suites/x/test_y.py::test_q", ["SEED-POST-9"], "lab")
    assert not by_requirement.covers("suites/x/test_y.py::test_q", ["SEED-POST-8"], "lab")
    assert by_test.covers("suites/x/test_y.py::test_z[b]", [], "lab")
    assert by_param.covers("suites/x/test_y.py::test_z[a]", [], "staging")
    assert not by_param.covers("suites/x/test_y.py::test_z[b]", [], "staging")
    assert not by_param.covers("suites/x/test_y.py::test_z[a]", [], "prod")


# ---- a run -------------------------------------------------------------------------------------
def test_valid_waiver_turns_failure_into_waived_never_hidden(tmp_path):
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", FUTURE))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers))
    assert run.outcomes() == {"test_fails": "waived", "test_fails_too": "failed",
                              "test_cannot_run": "error", "test_passes": "passed"}
    waived = run.result("test_fails")
    assert waived["waiver"]["approver"] == "J. Martin, RSSI"
    assert "deliberate failure" in waived["message"], "the failure itself stays in the report"
    summary = (run.run_dir / "summary.md").read_text()
    assert "**waived** `test_tmp.py::test_fails`" in summary and "known issue, ticket OPS-7" in summary
    junit = (run.run_dir / "junit.xml").read_text()
    assert 'name="waiver"' in junit and "deliberate failure" in junit
    assert run.proc.returncode == 1, "another failure remains: the gate stays red"


def test_requirement_waiver_covers_failures_but_never_errors(tmp_path):
    waivers = write(tmp_path, waiver_text("SEED-MON-RULES", FUTURE))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers))
    assert run.outcomes()["test_fails"] == "waived"
    assert run.outcomes()["test_cannot_run"] == "error", "an error is never waivable"
    assert run.outcomes()["test_passes"] == "passed"


def test_all_failures_waived_passes_the_gate(tmp_path):
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", FUTURE)
                    + waiver_text("SEED-MON-TARGETS", FUTURE))
    source = SOURCE.split("@pytest.mark.requirement(\"SEED-MON-RULES\")\ndef test_cannot_run")[0]
    run = run_tmp_suite(tmp_path, source, "--waivers", str(waivers))
    assert set(run.outcomes().values()) == {"waived"}
    assert run.proc.returncode == 0, run.proc.stdout[-2000:]
    assert "2 failed" in run.proc.stdout, "pytest's own line still shows the failures"


def test_expired_waiver_does_not_apply_and_says_so(tmp_path):
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", PAST))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers))
    assert run.outcomes()["test_fails"] == "failed"
    assert run.result("test_fails")["warnings"] == [
        f"waiver test_tmp.py::test_fails (approved by J. Martin, RSSI) expired on {PAST}: "
        "not applied"]
    assert run.proc.returncode == 1
    assert f"expired on {PAST}: test_tmp.py::test_fails" in run.proc.stdout


def test_waiver_for_another_environment_does_not_apply(tmp_path):
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", FUTURE,
                                          environments='["prod"]'))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers))
    assert run.outcomes()["test_fails"] == "failed"


def test_waivers_apply_on_xdist_workers(tmp_path):
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", FUTURE))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers), "-n", "2")
    assert run.outcomes()["test_fails"] == "waived"
    assert run.result("test_fails")["waiver"]["id"] == "test_tmp.py::test_fails"


def test_malformed_waiver_file_is_a_usage_error(tmp_path):
    waivers = write(tmp_path, GOOD.format(expires=FUTURE).replace('approver = "J. Martin, RSSI"\n', ""))
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(waivers))
    assert run.proc.returncode == 4
    assert f"{waivers}: [[waiver]] #1 (SEED-POST-9) missing key 'approver'" in run.proc.stderr
    assert "collected" not in run.proc.stdout


def test_missing_waiver_file_is_a_usage_error(tmp_path):
    run = run_tmp_suite(tmp_path, SOURCE, "--waivers", str(tmp_path / "nope.toml"))
    assert run.proc.returncode == 4
    assert f"{tmp_path / 'nope.toml'}: waiver file not found" in run.proc.stderr


def test_html_report_shows_waiver_and_warning(tmp_path):
    """pytest-html's own column says passed or failed; ours says *waived* (by whom, until
    when) or passed *with a warning*, in the same row."""
    source = SOURCE + '''
@pytest.mark.requirement("SEED-MON-RULES")
def test_warns(record):
    record.warn("certificate expires in 12 days")
'''
    waivers = write(tmp_path, waiver_text("test_tmp.py::test_fails", FUTURE))
    run = run_tmp_suite(tmp_path, source, "--waivers", str(waivers))
    assert run.outcomes()["test_warns"] == "warning"
    page = html.unescape((run.run_dir / "report.html").read_text())
    assert "Warning / waiver" in page
    assert "warning: certificate expires in 12 days" in page
    assert (f"waived by test_tmp.py::test_fails (approved by J. Martin, RSSI, until "
            f"{FUTURE.isoformat()}): known issue, ticket OPS-7") in page
