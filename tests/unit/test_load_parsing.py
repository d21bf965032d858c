"""Load plugin units: reading locust's files, judging thresholds, settings precedence, commands.

The sample files below have the exact shape locust 2.x writes (``--json-file``, ``--csv``);
the suite's own lab tests (tests/suites/test_load.py) prove the same code on real runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins import load, profile
from plugins.load_chart import latency_chart
from plugins.load_stats import (
    StepStats,
    Thresholds,
    judge,
    read_exceptions_csv,
    read_failures_csv,
    read_stats_json,
    read_users_history,
    summarise,
)
from plugins.profile import NotConfigured, ProfileError

T0 = 1795918620


def entry(method: str, name: str, times: dict[int, int], failures: int = 0,
          per_second: dict[int, int] | None = None, span: float = 10.0) -> dict:
    requests = sum(times.values())
    return {"name": name, "method": method, "last_request_timestamp": T0 + span,
            "start_time": T0, "num_requests": requests, "num_none_requests": 0,
            "num_failures": failures, "total_response_time": 0, "max_response_time": max(times),
            "min_response_time": min(times), "total_content_length": 0,
            "response_times": {str(k): v for k, v in times.items()},
            "num_reqs_per_sec": {str(k): v for k, v in (per_second or {T0: requests}).items()},
            "num_fail_per_sec": {str(T0): failures} if failures else {}}


def write_json(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "smtp.json"
    path.write_text(json.dumps(entries))
    return path


def smtp_entries(send_failures: int = 0) -> list[dict]:
    # 1000 sends: 880 at 10 ms, 80 at 50 ms, 35 at 200 ms, 5 at 900 ms; auth has a slow 6 %
    return [entry("SMTP", "connect", {2: 1000}),
            entry("SMTP", "auth", {20: 940, 700: 60}),
            entry("SMTP", "send", {10: 880, 50: 80, 200: 35, 900: 5}, failures=send_failures)]


def test_json_entries_and_percentiles(tmp_path):
    steps = read_stats_json(write_json(tmp_path, smtp_entries()))
    send = next(s for s in steps if s.name == "send")
    assert (send.kind, send.requests, send.label) == ("SMTP", 1000, "SMTP send")
    assert send.histogram[900] == 5 and send.per_second == {T0: 1000}
    # the 500th, 900th, 950th, 990th and 1000th fastest requests (locust's own method)
    assert [send.percentile(p) for p in (0.5, 0.9, 0.95, 0.99, 1.0)] == [10, 50, 50, 200, 900]
    assert StepStats("SMTP", "x", 0, 0, {}, 0, 0).percentile(0.95) == 0


def test_summary_counts_key_step_successes_over_the_run(tmp_path):
    steps = read_stats_json(write_json(tmp_path, smtp_entries(send_failures=100)))
    summary = summarise(steps, ("SMTP", "send"), "messages/s")
    assert summary.requests == 3000 and summary.failures == 100
    assert summary.throughput == 90.0                      # 900 accepted in 10 s
    assert (summary.p50_ms, summary.p95_ms, summary.p99_ms) == (10, 50, 200)
    assert (summary.worst_step, summary.worst_p95_ms) == ("SMTP auth", 700)
    assert [s["step"] for s in summary.steps] == ["SMTP connect", "SMTP auth", "SMTP send"]


def test_judge_names_every_broken_threshold(tmp_path):
    steps = read_stats_json(write_json(tmp_path, smtp_entries(send_failures=100)))
    summary = summarise(steps, ("SMTP", "send"), "messages/s")
    assert judge(summary, Thresholds(p95_ms=1000, max_failure_ratio=0.05, min_rps=5)) == []
    breaches = judge(summary, Thresholds(p95_ms=500, max_failure_ratio=0.01, min_rps=500))
    assert len(breaches) == 3
    assert "p95 latency of SMTP auth is 700 ms (threshold 500 ms)" in breaches[0]
    assert "failure ratio 3.33% (100 of 3000) exceeds 1.00%" in breaches[1]
    assert "throughput 90 messages/s of SMTP send is under the minimum 500" in breaches[2]


def test_no_request_at_all_is_a_breach():
    summary = summarise([], ("GET", "/api/v1/mailboxes"), "requests/s")
    assert judge(summary, Thresholds(1000, 1, 0)) == [
        "no request completed: the load generator could not reach the target"]


def test_csv_failures_exceptions_and_users(tmp_path):
    (tmp_path / "f.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "SMTP,auth,SMTPAuthenticationError(535),3,1,2\n"
        "GET,/api/v1/mailboxes,answered 502,40,1,2\n")
    assert read_failures_csv(tmp_path / "f.csv") == [
        ("GET /api/v1/mailboxes: answered 502", 40), ("SMTP auth: SMTPAuthenticationError(535)", 3)]
    (tmp_path / "e.csv").write_text('Count,Message,Traceback,Nodes\n2,KeyError: x,"tb",local\n')
    assert read_exceptions_csv(tmp_path / "e.csv") == [("KeyError: x", 2)]
    (tmp_path / "h.csv").write_text(
        "Timestamp,User Count,Type,Name,Requests/s\n"
        f"{T0},0,,Aggregated,0\n{T0 + 1},4,,Aggregated,12.5\n{T0 + 1},4,SMTP,send,3\n")
    assert read_users_history(tmp_path / "h.csv") == [(T0, 0), (T0 + 1, 4)]
    assert read_failures_csv(tmp_path / "missing.csv") == []


def test_chart_is_drawn_even_when_the_key_step_never_ran(tmp_path):
    login = entry("POST", "/api/v1/auth/login", {1: 500}, failures=500)
    steps = read_stats_json(write_json(tmp_path, [login]))
    summary = summarise(steps, ("GET", "/api/v1/mailboxes"), "requests/s")
    chart = latency_chart(steps, [(T0, 0), (T0 + 1, 4)], summary, Thresholds(1000, 0.01, 20),
                          "lab — api", tmp_path / "load" / "api-latency.png")
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000


@pytest.mark.parametrize("text, seconds", [("90", 90), ("5s", 5), ("2m", 120), ("1h30m", 5400),
                                           ("0.5s", 0.5)])
def test_durations(text, seconds):
    assert load.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "five"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        load.parse_duration(text)


PROFILE = """
[environment]
name = "t"
kind = "test"

[load]
users = 50
p95_ms = 800
max_failure_ratio = 0.01
min_rps = 30

[load.smtp]
users = 5
min_rps = 4
"""


def test_settings_precedence(tmp_path):
    (tmp_path / "t.toml").write_text(PROFILE)
    loaded = profile.load(str(tmp_path / "t.toml"))
    smtp = load.resolve(loaded, "smtp", {"run_time_s": (5.0, "--load-run-time")})
    assert (smtp.users, smtp.min_rps, smtp.p95_ms) == (5, 4, 800)
    assert (smtp.run_time_s, smtp.smtp_messages, smtp.spawn_rate) == (5, 1000, 10)
    assert smtp.origins == {"users": "profile [load.smtp]", "min_rps": "profile [load.smtp]",
                            "p95_ms": "profile [load]", "max_failure_ratio": "profile [load]",
                            "run_time_s": "--load-run-time", "smtp_messages": "seed default",
                            "spawn_rate": "seed default"}
    api = load.resolve(loaded, "api", {"users": (3, "--load-set")})
    assert (api.users, api.min_rps, api.run_time_s) == (3, 30, 300)
    assert "users=3 (--load-set)" in api.describe()


def test_no_load_section_is_not_configured(tmp_path):
    (tmp_path / "t.toml").write_text(PROFILE.split("[load]")[0])
    with pytest.raises(NotConfigured, match=r"not configured in t: \[load\]"):
        load.resolve(profile.load(str(tmp_path / "t.toml")), "api", {})


def test_profile_needs_thresholds_and_numbers(tmp_path):
    (tmp_path / "t.toml").write_text(PROFILE.replace("min_rps = 30\n", ""))
    with pytest.raises(ProfileError, match=r"\[load\] missing key 'min_rps'"):
        profile.load(str(tmp_path / "t.toml"))
    (tmp_path / "t.toml").write_text(PROFILE.replace("users = 5\n", 'users = "5"\n'))
    with pytest.raises(ProfileError, match=r"\[load.smtp\] key 'users' must be int"):
        profile.load(str(tmp_path / "t.toml"))


def settings(**changes: float) -> load.LoadSettings:
    values = dict(users=4, spawn_rate=10.0, run_time_s=5.0, smtp_messages=40, p95_ms=1000.0,
                  max_failure_ratio=0.01, min_rps=1.0)
    values.update(changes)
    return load.LoadSettings(**values, origins={})  # type: ignore[arg-type]  # test values of each field


def test_single_process_command_is_bounded_and_headless(tmp_path):
    master, workers = load.locust_commands(load.SCENARIOS["smtp"], settings(), "fixtures/x.toml",
                                           tmp_path / "smtp", "m-1")
    assert workers == []
    text = " ".join(master)
    for part in ("--headless", "-u 4", "-t 5s", f"--csv {tmp_path / 'smtp'}",
                 f"--json-file {tmp_path / 'smtp'}", f"--html {tmp_path / 'smtp'}.html",
                 "--mssante-env fixtures/x.toml", "--mssante-messages 40", "--mssante-marker m-1"):
        assert part in text
    assert master[-1] == "SmtpUser" and "--master" not in master
    api, _ = load.locust_commands(load.SCENARIOS["api"], settings(), "p", tmp_path / "api", "m")
    assert "--mssante-messages 0" in " ".join(api)          # only SMTP counts messages


def test_distributed_commands(tmp_path):
    master, workers = load.locust_commands(load.SCENARIOS["api"], settings(), "p",
                                           tmp_path / "api", "m", workers=2, master_port=6000)
    text = " ".join(master)
    assert "--master --master-bind-host 127.0.0.1 --master-bind-port 6000" in text
    assert "--expect-workers 2 --expect-workers-max-wait 30" in text
    assert len(workers) == 2 and all("--worker" in w and "6000" in w for w in workers)
    assert all("-u" not in w and "--headless" not in w for w in workers)   # the master decides
    remote, local = load.locust_commands(load.SCENARIOS["api"], settings(), "p",
                                         tmp_path / "api", "m", workers=1, remote_workers=3,
                                         master_port=5557)
    assert "--master-bind-host * " in " ".join(remote) and "--expect-workers 4" in " ".join(remote)
    assert len(local) == 1
