"""``--load``: the load suite, run headless with locust, bounded, judged against the profile.

Load tests put real load on a platform and send real mail, so they are opt-in: without
``--load`` every test marked ``load`` is skipped with a reason saying so, and on a
production-kind profile ``--load`` also needs ``--confirm-prod`` (as ``--deploy`` does): refused
before anything is sent, under xdist too. With it, each
scenario (API, SMTP submission, IMAP) runs ``suites/load/locustfile.py`` in locust's own
processes — its gevent monkey-patching does not belong inside pytest — with ``--run-time``
bounding the run and a hard time-out on this side. ``--load-workers N`` starts a locust master
and N workers on this machine (locust's distributed mode, statistics merged by the master);
``--load-remote-workers M`` makes the master wait for M more started on other machines.

Settings precedence (pytest-django's, shown in the header): command line (``--load-run-time``,
``--load-set KEY=VALUE``) > the profile's ``[load.<scenario>]`` > ``[load]`` > the seed's
defaults (100 users, 5 minutes, 1,000 messages). Thresholds (p95 latency, failure ratio,
minimum throughput) have no default: the profile states them.

Outputs: locust's HTML report, CSV and JSON statistics and logs in ``reports/load/<run>/``;
the summary JSON and the latency chart (PNG) in the run's evidence folder, recorded on the
test with the key figures as measured values. Never under xdist: parallel load runs would
measure each other, so ``--load`` with ``-n`` is refused before any test runs.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from plugins import environments, redaction, run
from plugins.load_chart import latency_chart
from plugins.load_stats import (
    StepStats,
    Summary,
    Thresholds,
    judge,
    read_exceptions_csv,
    read_failures_csv,
    read_stats_json,
    read_users_history,
    summarise,
)
from plugins.outcomes import Recorder
from plugins.profile import LOAD_KEYS, NotConfigured, Profile
from policy.api_contract import ApiContract

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO / "suites" / "load" / "locustfile.py"
SEED_DEFAULTS: dict[str, float] = {"users": 100, "spawn_rate": 10, "run_time_s": 300,
                                   "smtp_messages": 1000}
WORKERS_WAIT_S = 30              # how long a master waits for its local workers to connect
REMOTE_WORKERS_WAIT_S = 120      # ... and for workers started by hand on other machines
STOP_GRACE_S = 60                # beyond run time + worker wait, the run is killed
DEFAULT_MASTER_PORT = 5557       # locust's, for remote workers


@dataclass(frozen=True)
class Scenario:
    """One locust user class and what counts as its unit of work."""

    name: str
    user_class: str
    key: tuple[str, str]         # (request type, name) of the step counted as throughput
    unit: str


SCENARIOS = {s.name: s for s in (
    # The API's path is the profile's (step_key); the seed's is shown here.
    Scenario("api", "ApiUser", ("GET", "/api/v1/mailboxes"), "requests/s"),
    Scenario("smtp", "SmtpUser", ("SMTP", "send"), "messages/s"),
    Scenario("imap", "ImapUser", ("IMAP", "fetch"), "fetches/s"),
)}


def step_key(profile: Profile, scenario: Scenario) -> tuple[str, str]:
    """The counted step as locust names it: the API user's is the mailboxes path of the
    profile's API contract (locust names an HTTP request after its path)."""
    if scenario.name != "api":
        return scenario.key
    return scenario.key[0], ApiContract.from_section(profile.data.get("api", {})).mailboxes_path


# --- settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadSettings:
    users: int
    spawn_rate: float
    run_time_s: float
    smtp_messages: int
    p95_ms: float
    max_failure_ratio: float
    min_rps: float
    origins: dict[str, str]

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.p95_ms, self.max_failure_ratio, self.min_rps)

    def describe(self) -> str:
        return ", ".join(f"{key}={getattr(self, key):g} ({self.origins[key]})" for key in LOAD_KEYS)


def resolve(profile: Profile, scenario: str,
            overrides: dict[str, tuple[float, str]]) -> LoadSettings:
    """CLI > ``[load.<scenario>]`` > ``[load]`` > seed defaults; NotConfigured without [load]."""
    if not profile.has("load"):
        raise NotConfigured(profile.name, "[load]")
    layers = [(f"profile [load.{scenario}]", profile.data["load"].get(scenario, {})),
              ("profile [load]", profile.data["load"]), ("seed default", SEED_DEFAULTS)]
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key in LOAD_KEYS:
        if key in overrides:
            values[key], origins[key] = overrides[key]
            continue
        none: tuple[str, dict[str, Any]] = ("", {})
        origin, layer = next(((o, layer) for o, layer in layers if key in layer), none)
        if not origin:
            raise NotConfigured(profile.name, f"[load] {key}")
        values[key], origins[key] = layer[key], origin
    return LoadSettings(int(values["users"]), float(values["spawn_rate"]),
                        float(values["run_time_s"]), int(values["smtp_messages"]),
                        float(values["p95_ms"]), float(values["max_failure_ratio"]),
                        float(values["min_rps"]), origins)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_duration(text: str) -> float:
    """``90``, ``5s``, ``2m``, ``1h30m`` → seconds (locust's ``--run-time`` forms)."""
    parts = _DURATION.findall(text.strip())
    if not text.strip() or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r} (examples: 90, 5s, 2m, 1h30m)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)


def parse_overrides(config: pytest.Config) -> dict[str, tuple[float, str]]:
    """The command line's load settings as {key: (value, origin)}; UsageError when malformed."""
    overrides: dict[str, tuple[float, str]] = {}
    for item in config.getoption("mssante_load_set") or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in LOAD_KEYS:
            raise pytest.UsageError(f"--load-set {item!r}: expected KEY=VALUE with KEY one of "
                                    f"{', '.join(LOAD_KEYS)}")
        try:
            value = int(raw) if LOAD_KEYS[key] is int else float(raw)
        except ValueError:
            raise pytest.UsageError(f"--load-set {item!r}: {key} must be a number") from None
        overrides[key] = (value, "--load-set")
    run_time = config.getoption("mssante_load_run_time")
    if run_time:
        try:
            overrides["run_time_s"] = (parse_duration(run_time), "--load-run-time")
        except ValueError as exc:
            raise pytest.UsageError(f"--load-run-time: {exc}") from None
    return overrides


# --- running locust -------------------------------------------------------------------------
class LoadRunError(RuntimeError):
    """Locust could not produce statistics (crashed, killed, misconfigured): the check errors."""


@dataclass
class LocustRun:
    prefix: Path                 # <reports>/load/<run>/<scenario>; locust's files share it
    returncode: int
    wall_s: float
    timed_out: bool
    logs: list[Path]

    def file(self, suffix: str) -> Path:
        return self.prefix.parent / f"{self.prefix.name}{suffix}"

    def log_tail(self, lines: int = 15) -> str:
        text = "\n".join(log.read_text(errors="replace") for log in self.logs if log.is_file())
        return redaction.redact("\n".join(text.splitlines()[-lines:]))


def profile_argument(profile: Profile) -> str:
    """The profile as workers find it: relative to the repo when inside it (other machines
    have their own checkout), absolute otherwise."""
    try:
        return str(profile.path.relative_to(REPO))
    except ValueError:
        return str(profile.path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def locust_commands(scenario: Scenario, settings: LoadSettings, profile_arg: str, prefix: Path,
                    marker: str, workers: int = 0, remote_workers: int = 0,
                    master_port: int = 0) -> tuple[list[str], list[list[str]]]:
    """The master (or lone) locust command and one command per local worker."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    run_args = ["--headless", "--only-summary", "-u", str(settings.users),
                "-r", f"{settings.spawn_rate:g}", "-t", f"{max(int(settings.run_time_s), 1)}s",
                "--csv", str(prefix), "--html", f"{prefix}.html", "--json-file", str(prefix),
                "--mssante-env", profile_arg, "--mssante-marker", marker,
                "--mssante-messages", str(settings.smtp_messages if scenario.name == "smtp" else 0)]
    if not workers and not remote_workers:
        return base + run_args + [scenario.user_class], []
    expected = workers + remote_workers
    wait = REMOTE_WORKERS_WAIT_S if remote_workers else WORKERS_WAIT_S
    bind = "*" if remote_workers else "127.0.0.1"
    master = base + run_args + ["--master", "--master-bind-host", bind,
                                "--master-bind-port", str(master_port),
                                "--expect-workers", str(expected),
                                "--expect-workers-max-wait", str(wait), scenario.user_class]
    worker = base + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
    return master, [list(worker) for _ in range(workers)]


def run_locust(scenario: Scenario, settings: LoadSettings, profile_arg: str, out_dir: Path,
               marker: str, workers: int = 0, remote_workers: int = 0,
               master_port: int = 0) -> LocustRun:
    """Run one scenario to completion; never longer than run time + worker wait + grace."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / scenario.name
    if workers or remote_workers:
        master_port = master_port or (DEFAULT_MASTER_PORT if remote_workers else free_port())
    master_cmd, worker_cmds = locust_commands(scenario, settings, profile_arg, prefix, marker,
                                              workers, remote_workers, master_port)
    workers_wait = (REMOTE_WORKERS_WAIT_S if remote_workers else
                    WORKERS_WAIT_S if workers else 0)
    deadline = settings.run_time_s + workers_wait + STOP_GRACE_S
    logs = [out_dir / f"{scenario.name}-master.log"] + [
        out_dir / f"{scenario.name}-worker-{i + 1}.log" for i in range(len(worker_cmds))]
    started = time.monotonic()
    processes: list[subprocess.Popen[bytes]] = []
    timed_out = False
    try:
        for command, log in zip([master_cmd, *worker_cmds], logs, strict=True):
            with log.open("wb") as handle:
                processes.append(subprocess.Popen(command, cwd=REPO, stdout=handle,
                                                  stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        try:
            processes[0].wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        for process in processes:
            _stop(process, grace=0 if timed_out else 15)
    return LocustRun(prefix, processes[0].returncode, round(time.monotonic() - started, 2),
                     timed_out, logs)


def _stop(process: subprocess.Popen[bytes], grace: float) -> None:
    """Let a process we started end by itself within ``grace``; else SIGTERM (locust then
    still writes its statistics), then SIGKILL, to its own process group only."""
    for sig, wait in ((None, grace), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if sig is not None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- one judged scenario ----------------------------------------------------------------------
@dataclass
class LoadResult:
    scenario: str
    settings: LoadSettings
    summary: Summary
    breaches: list[str]
    failures: list[tuple[str, int]]
    run: LocustRun

    def accepted(self, name: str) -> int:
        """Successful requests of step ``name`` (e.g. SMTP messages accepted by the server)."""
        step = next((s for s in self.summary.steps if s["step"].endswith(f" {name}")), None)
        return step["requests"] - step["failures"] if step else 0

    def explain(self) -> str:
        """The broken thresholds, and the most frequent failure as the likely cause."""
        cause = (f"; most frequent failure: {self.failures[0][0]} ({self.failures[0][1]}x)"
                 if self.failures else "")
        return "; ".join(self.breaches) + cause


def execute(config: pytest.Config, profile: Profile, scenario: Scenario, marker: str,
            evidence: Path, record: Recorder, item: pytest.Item) -> LoadResult:
    """Run, read, judge and report one scenario; LoadRunError (an *error*) if locust could not
    produce statistics — a crash, a kill at the time bound, workers that never connected."""
    settings = resolve(profile, scenario.name, parse_overrides(config))
    info = config.stash[run.RUN_KEY]
    out_dir = run.reports_dir(config) / "load" / f"{info.run_id}-{profile.name}"
    locust = run_locust(scenario, settings, profile_argument(profile), out_dir, marker,
                        workers=config.getoption("mssante_load_workers"),
                        remote_workers=config.getoption("mssante_load_remote_workers"),
                        master_port=config.getoption("mssante_load_master_port"))
    problem = ""
    if locust.timed_out:
        problem = f"locust did not stop within its bound ({locust.wall_s:.0f}s) and was killed"
    elif not locust.file(".json").is_file():
        problem = f"locust wrote no statistics (exit {locust.returncode})"
    if problem:
        item.user_properties.append(("could_not_run", problem))
        raise LoadRunError(f"{problem}; log {locust.logs[0]}:\n{locust.log_tail()}")

    steps = read_stats_json(locust.file(".json"))
    summary = summarise(steps, step_key(profile, scenario), scenario.unit)
    breaches = judge(summary, settings.thresholds)
    exceptions = read_exceptions_csv(locust.file("_exceptions.csv"))
    if exceptions:
        breaches.append(f"{sum(n for _, n in exceptions)} exception(s) inside the load users: "
                        + redaction.redact(exceptions[0][0]))
    failures = [(redaction.redact(text), n) for text, n in
                read_failures_csv(locust.file("_failures.csv"))]
    result = LoadResult(scenario.name, settings, summary, breaches, failures, locust)
    _report(result, profile, steps, read_users_history(locust.file("_stats_history.csv")),
            evidence, record)
    return result


def _report(result: LoadResult, profile: Profile, steps: list[StepStats],
            users: list[tuple[int, int]], evidence: Path, record: Recorder) -> None:
    """Key figures as measured values; summary JSON and latency chart as evidence."""
    summary, name, limits = result.summary, result.scenario, result.settings.thresholds
    record.measure(f"{name} throughput ({summary.key})", summary.throughput, summary.unit)
    for label, value in (("p50", summary.p50_ms), ("p95", summary.p95_ms), ("p99", summary.p99_ms)):
        record.measure(f"{name} {label} ({summary.key})", value, "ms")
    record.measure(f"{name} worst p95 ({summary.worst_step})", summary.worst_p95_ms,
                   f"ms (max {limits.p95_ms:g})")
    record.measure(f"{name} failures", summary.failures,
                   f"of {summary.requests} requests ({summary.failure_ratio:.2%}, "
                   f"max {limits.max_failure_ratio:.2%})")
    record.measure(f"{name} users", result.settings.users, "virtual users")
    record.measure(f"{name} wall time", result.run.wall_s, "s")
    folder = evidence / "load"
    title = (f"{profile.name} — {name}: {result.settings.users} users, "
             f"{summary.throughput:g} {summary.unit}, p95 {summary.p95_ms} ms, "
             f"failures {summary.failure_ratio:.2%}")
    chart = latency_chart(steps, users, summary, limits, title, folder / f"{name}-latency.png")
    data = {"scenario": name, "environment": profile.name,
            "settings": {k: v for k, v in asdict(result.settings).items() if k != "origins"},
            "origins": result.settings.origins, "summary": summary.to_dict(),
            "breaches": result.breaches, "failures": result.failures[:20],
            "wall_s": result.run.wall_s, "locust_exit": result.run.returncode,
            "reports": {"html": str(result.run.file(".html")),
                        "json": str(result.run.file(".json")),
                        "csv": str(result.run.file("_stats.csv"))}}
    summary_file = folder / f"{name}-summary.json"
    summary_file.write_text(redaction.redact(json.dumps(data, indent=2, ensure_ascii=False)))
    record.evidence(f"load/{chart.name}")
    record.evidence(f"load/{summary_file.name}")


# --- pytest hooks -------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mssante")
    group.addoption("--load", dest="mssante_load", action="store_true",
                    help="run the load tests (suites/load): real load and real mail on the target")
    group.addoption("--load-workers", dest="mssante_load_workers", type=int, default=0,
                    metavar="N", help="locust master + N worker processes on this machine "
                                      "(default: one locust process)")
    group.addoption("--load-remote-workers", dest="mssante_load_remote_workers", type=int,
                    default=0, metavar="M", help="the master also waits for M workers started "
                                                 "on other machines (see suites/load/README.md)")
    group.addoption("--load-master-port", dest="mssante_load_master_port", type=int, default=0,
                    metavar="PORT", help=f"locust master port (default: {DEFAULT_MASTER_PORT} "
                                         "with remote workers, else a free local port)")
    group.addoption("--load-run-time", dest="mssante_load_run_time", default=None,
                    metavar="DURATION", help="override the profile's run time (5s, 2m, 1h30m)")
    group.addoption("--load-set", dest="mssante_load_set", action="append", metavar="KEY=VALUE",
                    help=f"override a [load] setting for this run ({', '.join(LOAD_KEYS)})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "load: a load test, run only with --load (suites/load)")
    if not config.getoption("mssante_load"):
        return
    profile = environments.get_profile(config)
    if (profile is not None and profile.kind == "production"
            and not config.getoption("mssante_confirm_prod")):
        raise pytest.UsageError(f"--load on {profile.name} (production) needs --confirm-prod: "
                                "it puts real load on the platform and sends real mail; "
                                "nothing was sent")
    if not hasattr(config, "workerinput") and (
            config.getoption("numprocesses", None) or config.getoption("dist", "no") != "no"):
        raise pytest.UsageError(
            "--load cannot run under pytest-xdist (-n/--dist): parallel load runs would measure "
            "each other. Run the load suite without -n; scale it with --load-workers N.")
    parse_overrides(config)            # a malformed override stops the run before any test
    for option in ("mssante_load_workers", "mssante_load_remote_workers"):
        if config.getoption(option) < 0:
            raise pytest.UsageError(f"--{option.removeprefix('mssante_').replace('_', '-')} "
                                    "must be 0 or more")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --load: skip, saying how to opt in. With it: a pytest-timeout bound that fits
    the run (the seed's 5 minutes exceed the suite's default per-test time-out)."""
    marker = _time_bound(config) if config.getoption("mssante_load") else pytest.mark.skip(
        reason="load test: opt-in, pass --load to run it (it puts real load on the target and "
               "sends real mail)")
    for item in items:
        if marker is not None and item.get_closest_marker("load"):
            item.add_marker(marker)


def _time_bound(config: pytest.Config) -> pytest.MarkDecorator | None:
    profile = environments.get_profile(config)
    if profile is None or not profile.has("load"):
        return None
    overrides = parse_overrides(config)
    longest = max(resolve(profile, name, overrides).run_time_s for name in SCENARIOS)
    wait = (REMOTE_WORKERS_WAIT_S if config.getoption("mssante_load_remote_workers") else
            WORKERS_WAIT_S if config.getoption("mssante_load_workers") else 0)
    return pytest.mark.timeout(longest + wait + STOP_GRACE_S +
                               profile.threshold("delivery_deadline_s") + 60)


def pytest_report_header(config: pytest.Config) -> list[str]:
    profile = environments.get_profile(config)
    if not config.getoption("mssante_load") or profile is None or not profile.has("load"):
        return []
    overrides = parse_overrides(config)
    workers = config.getoption("mssante_load_workers")
    remote = config.getoption("mssante_load_remote_workers")
    mode = (f"master + {workers} local + {remote} remote worker(s)" if workers or remote
            else "one process")
    lines = [f"load: locust {mode}"]
    for name in SCENARIOS:
        lines.append(f"load {name}: {resolve(profile, name, overrides).describe()}")
    return lines


@pytest.fixture
def load_marker(run_info: run.RunInfo) -> str:
    """Marker header value of the mail one load test sends (to find and delete it after)."""
    return f"mssante-check-load-{run_info.run_id}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def load_run(request: pytest.FixtureRequest, env_profile: Profile, evidence_path: Path,
             record: Recorder, mailboxes: list[tuple[str, str]]) -> Callable[..., LoadResult]:
    """``load_run("api")`` runs that scenario with locust and returns the judged result.

    Load users are the profile's test mailboxes: without them (``mailboxes`` skips as not
    configured) or without their passwords (an error) no locust process is started.
    """

    def run_scenario(scenario: str, marker: str = "mssante-check-load") -> LoadResult:
        return execute(request.config, env_profile, SCENARIOS[scenario], marker, evidence_path,
                       record, request.node)

    return run_scenario
