"""Deploy → verify → roll back around the profile's commands (DESIGN §6), opt-in: ``--deploy``.

``pytest suites/post_deploy --env NAME --deploy VERSION`` runs the seed's deploy-production.sh
around the session's tests: pre-deploy checks (``suites/pre_deploy``, in a subprocess) →
backup (:mod:`plugins.backups`) → maintenance on → the profile's deploy command → its migrate
command, if any → wait until the API's version endpoint serves the target version with the
schema it expects (the proof that the deploy happened: a deploy command that exits 0 proves
nothing) → wait until healthy → smoke (``suites/smoke``) → maintenance off → post-deploy: the
session's own tests → report (:mod:`plugins.deployment_report`). Any failure after the backup
rolls back by itself, as the seed's ``ROLLBACK_AUTO=true``: maintenance on → the profile's
rollback command (code) → database and Redis restored from the backup → healthy again → the
previous version is served and the data equals the backup's fingerprint (any difference fails
loudly) → maintenance off. A production profile also needs ``--confirm-prod`` (the seed asks
to type DEPLOY).

Every phase has a wall-clock deadline: ``[lifecycle] command_timeout_s`` for commands and the
nested suites, ``health_timeout_s`` and ``version_timeout_s`` (default: the health time-out)
for the waits, ``[backup] timeout_s`` for backup and restore. A command past it is killed with
its process group (:mod:`plugins.commands`); a phase past it fails, which rolls back. Commands
are the profile's templates split into argument lists, never given to a shell.

Under pytest-xdist, session fixtures run once per worker, so the sequence runs on the
controller only: ``pytest_sessionstart`` before the workers start, ``pytest_sessionfinish``
after they stopped. Workers receive the deployment through ``pytest_configure_node`` →
``workerinput`` (the ``deployment`` fixture); the rollback decision after the tests is taken on
the controller from the merged results (the reporting Collector). Each phase is reported as a
result of its own (``lifecycle::<phase>``), so JUnit, HTML and the summary show the gates.
"""
from __future__ import annotations

import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugins import backups, commands, environments, hosts, redaction, reporting, run
from plugins.outcomes import wait_until
from plugins.profile import NotConfigured, Profile, ProfileError
from plugins.targets import http_client
from policy.api_contract import ApiContract
from probes.deadline import DeadlineExceeded, deadline
from probes.errors import CouldNotRun

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENT_KEY = "mssante_deployment"
API_SAMPLES = 20                 # GET /health requests timed once the platform is settled
# Beyond a phase's own deadline, the hard stop leaves a command's process-group kill time to
# finish (SIGTERM, then SIGKILL), and a phase may overrun by this much before it is failed.
HARD_STOP_MARGIN_S = 2 * commands.KILL_GRACE_S + 1
OVERRUN_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class DeploymentInfo:
    """What a test learns of the session's deployment (the same on every xdist worker)."""

    id: str
    environment: str
    version: str                 # the version deployed
    previous_version: str        # what the backup holds and a rollback returns to
    backup_id: str
    state: str                   # deployed, rolled_back, aborted, failed (before the tests)


@dataclass
class Phase:
    name: str
    label: str
    ok: bool | None              # None: not configured in this environment (skipped)
    duration_s: float
    detail: str
    requirement: str
    deadline_s: float | None = None


@dataclass
class Deployment:
    id: str
    environment: str
    version: str
    started: float
    previous_version: str = "?"
    backup: backups.Backup | None = None
    state: str = "pending"
    reason: str = ""
    finished: float | None = None
    phases: list[Phase] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    data_check: list[str] = field(default_factory=list)
    served: str = ""             # what the version endpoint last said (the deploy's proof)
    nested_reports: dict[str, Path] = field(default_factory=dict)

    def info(self) -> DeploymentInfo:
        return DeploymentInfo(self.id, self.environment, self.version, self.previous_version,
                              self.backup.id if self.backup else "", self.state)


class PhaseFailed(Exception):
    """A gate did not pass; the message is the report's one-line reason."""


def bare(version: str) -> str:
    """``v1.1.0`` → ``1.1.0``: tags carry a v, the API reports the bare version."""
    return version.removeprefix("v")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mssante")
    group.addoption("--deploy", dest="mssante_deploy", metavar="VERSION", default=None,
                    help="deploy VERSION with the profile's commands around this session's "
                         "tests (backup, maintenance, automatic rollback): destructive, opt-in")
    group.addoption("--confirm-prod", dest="mssante_confirm_prod", action="store_true",
                    help="required with --deploy or --load on a production profile")
    group.addoption("--target-version", dest="mssante_target_version", metavar="VERSION",
                    default=None, help="the version about to be deployed (suites/pre_deploy "
                                       "checks that it is a tag); implied by --deploy")


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def configure(config: pytest.Config) -> None:
    """Validate ``[[hosts]]`` up front; with ``--deploy`` on the controller, arm the lifecycle."""
    profile = environments.get_profile(config)
    try:
        if profile is not None:
            hosts.platform_host(profile)
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    version = config.getoption("mssante_deploy")
    if not version or not _is_controller(config) or config.option.collectonly:
        return
    if profile is None:
        raise pytest.UsageError("--deploy needs an environment (--env NAME)")
    if profile.kind == "production" and not config.getoption("mssante_confirm_prod"):
        raise pytest.UsageError(f"--deploy {version} on {profile.name} (production) needs "
                                "--confirm-prod: nothing was touched")
    for section in ("lifecycle", "backup"):
        if not profile.has(section):
            raise pytest.UsageError(f"--deploy: {profile.path} has no [{section}] section")
    if hosts.platform_host(profile) is None:
        raise pytest.UsageError(f"--deploy: {profile.path} declares no [[hosts]] to run the "
                                "deploy commands on")
    config.pluginmanager.register(Lifecycle(config, profile, version), "mssante-lifecycle")


def current(config: pytest.Config) -> DeploymentInfo | None:
    """The session's deployment, on the controller or on an xdist worker."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        data = workerinput.get(DEPLOYMENT_KEY)
        return DeploymentInfo(**data) if data else None
    plugin = config.pluginmanager.get_plugin("mssante-lifecycle")
    return plugin.deployment.info() if plugin else None


@pytest.fixture(scope="session")
def deployment(pytestconfig: pytest.Config) -> DeploymentInfo:
    """The deployment this session verifies (``--deploy``); skipped without one."""
    info = current(pytestconfig)
    if info is None:
        pytest.skip("no deployment in this session (--deploy VERSION)")
    return info


@pytest.fixture(scope="session")
def target_version(pytestconfig: pytest.Config) -> str | None:
    """The version about to be deployed: ``--target-version``, else ``--deploy``."""
    return (pytestconfig.getoption("mssante_target_version")
            or pytestconfig.getoption("mssante_deploy"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tag every test's report with the deployment id: the controller counts them to prove
    each worker ran under the same deployment."""
    info = current(item.config)
    if info is not None:
        item.user_properties.append(("deployment", info.id))


class Lifecycle:
    """The sequence; registered on the controller only, and only with ``--deploy``."""

    def __init__(self, config: pytest.Config, profile: Profile, version: str) -> None:
        self.config = config
        self.profile = profile
        self.section = profile.section("lifecycle")
        spec = hosts.platform_host(profile)
        assert spec is not None
        self.host_spec = spec
        run_id = config.stash[run.RUN_KEY].run_id
        self.deployment = Deployment(f"{run_id}-{profile.name}", profile.name, bare(version),
                                     time.time())
        # float(), never int(): a 0.5 s time-out stays 0.5 s (int() made it 0, "no limit").
        self.timeout = float(self.section.get("command_timeout_s", 300))
        self.health_timeout = float(self.section.get("health_timeout_s", 60))
        self.version_timeout = float(self.section.get("version_timeout_s", self.health_timeout))
        self._expires: float | None = None      # the running phase's deadline (monotonic)
        self.under_deployment: set[str] = set()
        self.all_tests: set[str] = set()

    # --- hooks ------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Deploy before any test (and before xdist starts its workers: its hook is trylast)."""
        self.deploy()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[DEPLOYMENT_KEY] = asdict(self.deployment.info())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid.startswith("lifecycle::"):
            return
        self.all_tests.add(report.nodeid)
        if ("deployment", self.deployment.id) in report.user_properties:
            self.under_deployment.add(report.nodeid)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After the tests (merged on the controller): post-deploy gate, rollback if needed,
        phase results, deployment-info.json status, the deployment report."""
        from plugins import deployment_report

        d = self.deployment
        if d.state == "deployed":
            collector = self.config.stash.get(reporting.COLLECTOR_KEY, None)
            results = list(collector.results.values()) if collector else []
            bad = [r for r in results if r.outcome in ("failed", "error")]
            detail = (f"{len(results)} test(s), {len(bad)} failed: "
                      + ", ".join(r.nodeid.split("::")[-1] for r in bad[:5]) if bad
                      else f"{len(results)} test(s) passed or skipped, none failed")
            self._record("post_deploy", "Tests post-déploiement", not bad, 0.0, detail,
                         "LIFE-DEPLOY")
            if bad:
                self.rollback(f"post-deploy tests failed: {detail}")
        d.finished = time.time()
        if d.backup is not None:
            status = {"deployed": "success", "rolled_back": "rolled_back"}.get(d.state, "failed")
            d.backup.set_status(status, deployment_id=d.id, reason=d.reason,
                                finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self._emit_phase_reports()
        path = deployment_report.write(self.config, self.profile, self, d)
        self._say(f"deployment report: {path}")
        if d.state != "deployed" and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    # --- the sequence -------------------------------------------------------------------------
    def deploy(self) -> None:
        d = self.deployment
        self._say(f"deploying {d.version} to {d.environment} (deployment {d.id})")
        command, health, version, data = self._limits()
        if not self._phase("pre_deploy", "Vérifications pré-déploiement", self._pre_deploy,
                           "LIFE-DEPLOY", command):
            d.state, d.reason = "aborted", f"pre-deploy checks failed: {self._last_detail()}"
            return
        if not self._phase("backup", "Sauvegarde", self._backup, "LIFE-DEPLOY", data):
            d.state, d.reason = "aborted", f"backup failed: {self._last_detail()}"
            return
        steps: list[tuple[str, str, Callable[[], str], tuple[float, str]]] = [
            ("maintenance_on", "Mode maintenance activé", lambda: self._command(
                "maintenance_on_command"), command),
            ("deploy", "Déploiement", lambda: self._command("deploy_command", d.version),
             command),
            ("migrations", "Migrations", self._migrations, command),
            ("wait_version", "Version servie", lambda: self._wait_version(d.version, True),
             version),
            ("wait_healthy", "Attente de santé", self._wait_healthy, health),
            ("smoke", "Tests de fumée", lambda: self._nested("smoke", "smoke_suite",
                                                              "suites/smoke"), command),
            ("maintenance_off", "Mode maintenance désactivé", lambda: self._command(
                "maintenance_off_command"), command),
        ]
        for name, label, step, limit in steps:
            if not self._phase(name, label, step, "LIFE-DEPLOY", limit):
                self.rollback(f"{label}: {self._last_detail()}")
                return
        self._sample_api()
        d.state = "deployed"

    def rollback(self, reason: str) -> None:
        """The seed's automatic rollback (ROLLBACK_AUTO=true), then its proof."""
        d = self.deployment
        d.reason = reason
        self._say(f"rolling back to {d.previous_version}: {reason}")
        backup = d.backup
        assert backup is not None
        command, health, version, data = self._limits()
        steps: list[tuple[str, str, Callable[[], str], tuple[float, str]]] = [
            ("rollback_maintenance_on", "Rollback : mode maintenance", lambda: self._command(
                "maintenance_on_command"), command),
            ("rollback_code", "Rollback : code", lambda: self._command(
                "rollback_command", d.previous_version, {"ROLLBACK_AUTO": "true"}), command),
            ("rollback_data", "Rollback : base et Redis", lambda: " ; ".join(
                backups.restore(self.profile, backup, check=False)), data),
            ("rollback_wait_healthy", "Rollback : attente de santé", self._wait_healthy,
             health),
            ("rollback_verify", "Rollback : version et données", self._verify_rollback,
             (version[0] + data[0], f"{version[1]} + {data[1]}")),
            ("rollback_maintenance_off", "Rollback : fin de maintenance", lambda: self._command(
                "maintenance_off_command"), command),
        ]
        for name, label, step, limit in steps:
            if not self._phase(name, label, step, "LIFE-ROLLBACK", limit):
                d.state = "failed"
                d.reason += f"; rollback failed at {label}: {self._last_detail()}"
                return
        self._sample_api()
        d.state = "rolled_back"

    # --- phases -----------------------------------------------------------------------------
    def _limits(self) -> tuple[tuple[float, str], ...]:
        """Each kind of phase's deadline and the setting it comes from: commands and nested
        suites, the health wait, the version wait, backup/restore."""
        data = self.profile.section("backup").get("timeout_s", 300)     # as backups.settings
        return ((self.timeout, "[lifecycle] command_timeout_s"),
                (self.health_timeout, "[lifecycle] health_timeout_s"),
                (self.version_timeout, "[lifecycle] version_timeout_s"),
                (float(data), "[backup] timeout_s"))

    def _phase(self, name: str, label: str, step: Callable[[], str], requirement: str,
               limit: tuple[float, str]) -> bool:
        """Run one gate under its deadline: the step bounds its own work to ``limit`` (a
        command is killed, a wait gives up); a hard stop a little later catches whatever
        did not, and a phase that ends past its deadline fails all the same."""
        seconds, source = limit
        started = time.monotonic()
        self._expires = started + seconds
        ok: bool | None = True
        try:
            with deadline(seconds + HARD_STOP_MARGIN_S, f"lifecycle {name}", label):
                detail = step()
        except NotConfigured as exc:            # a skip: not configured in this environment
            detail, ok = str(exc.msg), None
        except DeadlineExceeded as exc:
            detail, ok = str(exc), False
            if exc.endpoint == f"lifecycle {name}":      # this phase's hard stop
                detail = f"past its deadline: not finished within {seconds:g}s ({source})"
        except (PhaseFailed, commands.CommandTimedOut) as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - whatever breaks a step fails its gate
            detail, ok = f"{type(exc).__name__}: {exc}", False
        finally:
            self._expires = None
        duration = time.monotonic() - started
        if ok is True and duration > seconds + OVERRUN_TOLERANCE_S:
            detail, ok = (f"past its deadline: took {duration:.1f}s, more than {seconds:g}s "
                          f"({source}); {detail}"), False
        detail = redaction.redact(detail)
        self._record(name, label, ok, duration, detail, requirement, seconds)
        return ok is not False

    def _record(self, name: str, label: str, ok: bool | None, duration: float, detail: str,
                requirement: str, deadline_s: float | None = None) -> None:
        self.deployment.phases.append(Phase(name, label, ok, duration, detail, requirement,
                                            deadline_s))
        mark = {True: "ok", False: "FAILED", None: "skipped"}[ok]
        self._say(f"{name}: {mark} ({duration:.1f}s) {detail}")

    def _last_detail(self) -> str:
        return self.deployment.phases[-1].detail

    def _say(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"lifecycle: {redaction.redact(line)}")

    def _command(self, key: str, version: str | None = None,
                 env: dict[str, str] | None = None) -> str:
        """Run the profile's command on the platform host: the template split into arguments,
        each placeholder replaced inside its argument (:func:`plugins.commands.build_argv`),
        bounded by ``command_timeout_s``."""
        template = self.section.get(key)
        if template is None:
            raise NotConfigured(self.profile.name, f"[lifecycle] {key}")
        values = {"python": sys.executable}
        if version is not None:
            values["version"] = version
        try:
            argv = commands.build_argv(template, values)
        except ValueError as exc:
            raise PhaseFailed(f"[lifecycle] {key}: {exc}") from None
        shown = shlex.join(argv)
        result = commands.run(self.host_spec.connection, argv, self.timeout, env)
        if result.rc != 0:
            raise PhaseFailed(f"`{shown}` exited {result.rc}: {result.tail}")
        return f"`{shown}` ({result.duration_s:.1f}s): {result.tail}"

    def _nested(self, name: str, key: str, default: str, *extra: str) -> str:
        """Run a suite in a subprocess exactly as a user would; fail on any failed check."""
        suite = self.section.get(key, default)
        reports = self._out_dir() / name
        cmd = [sys.executable, "-m", "pytest", suite, "--env", str(self.profile.path),
               "--reports-dir", str(reports), "-p", "no:cacheprovider", "-q", "--tb=line",
               *extra]
        if self.config.getoption("mssante_strict_warnings"):
            cmd.append("--strict-warnings")
        try:
            commands.run_local(cmd, self.timeout, cwd=REPO)
        except commands.CommandTimedOut as exc:
            raise PhaseFailed(f"{suite} did not finish within {self.timeout:g}s: killed "
                              "(process group)") from exc
        results_file = reports / "runs" / "latest" / "results.json"
        if not results_file.is_file():
            raise PhaseFailed(f"{suite} wrote no results (see {reports})")
        self.deployment.nested_reports[name] = results_file.parent.resolve()
        data = json.loads(results_file.read_text())
        bad = [r for r in data["results"] if r["outcome"] in ("failed", "error")]
        counts = ", ".join(f"{n} {k}" for k, n in data["counts"].items() if n)
        if bad:
            raise PhaseFailed(f"{suite}: {counts} — " + "; ".join(
                f"{r['nodeid'].split('::')[-1]}: {r['message']}" for r in bad[:4]))
        return f"{suite}: {counts}"

    def _pre_deploy(self) -> str:
        return self._nested("pre_deploy", "pre_deploy_suite", "suites/pre_deploy",
                            "--target-version", self.deployment.version)

    def _backup(self) -> str:
        d = self.deployment
        backup = backups.create(self.profile, version_to_deploy=d.version, status="in_progress")
        d.backup = backup
        d.previous_version = backup.version
        if d.previous_version == "unknown":      # no git checkout declared: ask the API
            d.previous_version = str(self.api_version().get("version", "unknown"))
        return (f"{backup.path} ({backups.human_size(backup.size())}), "
                f"holds {d.previous_version}")

    def _api(self, path: str) -> httpx.Response:
        """GET on the API under one deadline for the whole exchange (the HTTP time-out, cut
        to what the running phase has left), timed for the report's mean response time."""
        section = self.profile.section("api")
        seconds = self.profile.threshold("http_timeout_s")
        if self._expires is not None:
            seconds = min(seconds, max(self._expires - time.monotonic(), 0.1))
        with http_client(section, seconds) as client, deadline(
                seconds, f"{section['url']}{path}", "GET"):
            started = time.perf_counter()
            response = client.get(path)
            self.deployment.api_ms.append((time.perf_counter() - started) * 1000)
        return response

    def api_version(self) -> dict[str, Any]:
        path = self.profile.section("api")["version_path"]
        response = self._api(path)
        if response.status_code != 200:
            raise PhaseFailed(f"{path} answered {response.status_code}")
        return response.json()

    def _migrations(self) -> str:
        """The profile's migrate command; without one (the deploy command migrates, as the
        lab's does) the phase is skipped. Either way the schema is proven by ``wait_version``."""
        return self._command("migrate_command", self.deployment.version)

    def _wait_version(self, version: str, proof: bool = False) -> str:
        """Wait (``version_timeout_s``) until the version endpoint serves ``version`` with the
        schema that version expects: a deploy command that exited 0 proves nothing. With
        ``proof``, what the endpoint last said is kept for the report (``Deployment.served``)."""
        path = self.profile.section("api")["version_path"]
        seen: list[dict[str, Any]] = []

        def served() -> bool:
            info = self.api_version()
            seen[:] = [info]
            return info.get("version") == version and info.get("schema") == info.get(
                "schema_expected")

        waited = wait_until(served, timeout=self.version_timeout, interval=1.0)
        if seen and proof:
            info = seen[0]
            self.deployment.served = (f"{info.get('version')} (schema {info.get('schema')}, "
                                      f"expected {info.get('schema_expected')})")
        within = (f"within {self.version_timeout:g}s ([lifecycle] version_timeout_s, "
                  f"{waited.attempts} attempt(s))")
        if not waited.ok:
            if not seen:
                raise PhaseFailed(f"{path} gave no answer {within}: {waited.summary()}")
            info = seen[0]
            if info.get("version") != version:
                raise PhaseFailed(f"the API still serves {info.get('version')}, not {version}, "
                                  f"{within}: the deploy did not take effect")
            raise PhaseFailed(f"the API serves {version} on schema {info.get('schema')}, not "
                              f"the {info.get('schema_expected')} it expects, {within}")
        return (f"{path} serves {version}, schema {seen[0].get('schema')} as expected, after "
                f"{waited.elapsed_s:.1f}s")

    def _wait_healthy(self) -> str:
        contract = ApiContract.from_section(self.profile.section("api"))
        path = contract.health_path
        last: list[str] = []

        def healthy() -> bool:
            response = self._api(path)
            last[:] = [f"{response.status_code} {response.text[:300]}"]
            if response.status_code != 200:
                return False
            try:
                return contract.judge_health(response.json(), need_checks=False).healthy
            except ValueError:
                return False

        waited = wait_until(healthy, timeout=self.health_timeout, interval=1.0)
        if not waited.ok:
            raise PhaseFailed(f"{path} not healthy within {self.health_timeout:g}s "
                              f"({waited.attempts} attempts): "
                              f"{last[0] if last else waited.summary()}")
        return f"{path} ok after {waited.elapsed_s:.1f}s ({waited.attempts} attempt(s))"

    def _verify_rollback(self) -> str:
        """The previous version is served (bounded wait) and the data is exactly the backup's."""
        d = self.deployment
        assert d.backup is not None
        differences = backups.compare(d.backup.fingerprint(), backups.fingerprint(self.profile))
        expected = d.backup.fingerprint()
        d.data_check = differences or [
            f"database: {len(expected['database'])} tables identical (rows and content "
            f"checksums)", f"redis: {len(expected['redis'])} keys identical"]
        served = self._wait_version(bare(d.previous_version))
        if differences:
            raise PhaseFailed("data differs from the backup: " + "; ".join(differences))
        return f"{served}; " + "; ".join(d.data_check)

    def _sample_api(self) -> None:
        """Time a few health requests once settled: the report's API response time."""
        path = ApiContract.from_section(self.profile.section("api")).health_path
        for _ in range(API_SAMPLES):
            try:
                self._api(path)
            except (httpx.HTTPError, CouldNotRun):   # refused, timed out: no sample
                return

    def _out_dir(self) -> Path:
        collector = self.config.stash.get(reporting.COLLECTOR_KEY, None)
        base = collector.out_dir if collector else run.reports_dir(self.config)
        return base / "lifecycle"

    # --- reporting ----------------------------------------------------------------------------
    def api_stats(self) -> dict[str, float] | None:
        samples = self.deployment.api_ms
        if not samples:
            return None
        ordered = sorted(samples)
        return {"count": len(samples), "mean_ms": round(statistics.fmean(samples), 1),
                "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1)}

    def _emit_phase_reports(self) -> None:
        """Each phase becomes a result (setup/call/teardown reports), like any test."""
        hook = self.config.hook
        d = self.deployment
        outcome_of = {"deployed": "deployed", "rolled_back": f"rolled back to {d.previous_version}",
                      "aborted": "aborted, nothing changed", "failed": "rollback failed"}
        fact = f"target_version={d.version} ({outcome_of.get(d.state, d.state)})"
        for phase in d.phases:
            nodeid = f"lifecycle::{phase.name}"
            props = [("requirement", phase.requirement), ("service", "deployment"), ("fact", fact),
                     ("measured", json.dumps({"name": f"{phase.name} duration",
                                              "value": round(phase.duration_s, 1),
                                              "unit": "s"}))]
            outcome = {True: "passed", False: "failed", None: "skipped"}[phase.ok]
            longrepr: Any = None
            if phase.ok is False:
                longrepr = f"{phase.label}: {phase.detail}"
            elif phase.ok is None:
                longrepr = ("lifecycle", 0, f"Skipped: {phase.detail}")
            location = ("lifecycle", 0, phase.name)
            for when, result, text, duration in (
                    ("setup", "passed", None, 0.0),
                    ("call", outcome, longrepr, phase.duration_s),
                    ("teardown", "passed", None, 0.0)):
                report = pytest.TestReport(nodeid, location, {},
                                           result, text, when,  # type: ignore[arg-type]  # literals above
                                           duration=duration, user_properties=props)
                hook.pytest_runtest_logreport(report=report)
