"""``--evidence``: the bundle an auditor receives, in ``reports/evidence/<run>/``.

The folder every suite already writes its evidence into (TLS scan JSON, certificate details,
SMTP/IMAP transcripts, load summaries — shared by xdist workers) becomes a self-contained
bundle: copies of the run's reports (``run-reports/``: summary, results JSON, JUnit XML,
pytest-html), the evidence report (``evidence.html`` and its markdown twin ``evidence.md``) and
``manifest.sha256``, in ``sha256sum`` format, covering every other file so an auditor checks
nothing was altered with ``sha256sum -c manifest.sha256``.

Like every report writer it runs on the controller only and reads the Collector's merged
results, so it is the same under ``-n auto``. Its ``pytest_sessionfinish`` is the innermost
hook wrapper: the Collector, JUnit and pytest-html have written their files when it runs, and
the terminal summary that follows can say where the bundle is.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugins import environments, requirements, run, waivers
from plugins.evidence_report import (
    EvidenceFile,
    EvidenceReport,
    WaiverStatus,
    render_html,
    render_markdown,
)
from plugins.profile import Profile
from plugins.redaction import redact
from plugins.reporting import COLLECTOR_KEY, Collector
from plugins.results import CheckResult
from probes.http import http_client

MANIFEST = "manifest.sha256"
HTML_REPORT = "evidence.html"
MD_REPORT = "evidence.md"
RUN_REPORTS = "run-reports"
COPIED_REPORTS = ("summary.md", "results.json", "junit.xml", "report.html")
# Charts (the load suite's latency PNG) are embedded in the HTML so it stays one file.
MAX_EMBEDDED_BYTES = 2_000_000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mssante").addoption(
        "--evidence", dest="mssante_evidence", action="store_true",
        help="write the evidence bundle (HTML + markdown report, SHA-256 manifest) into "
             "reports/evidence/<run>/")


def configure(config: pytest.Config) -> None:
    if (not config.getoption("mssante_evidence", False) or hasattr(config, "workerinput")
            or config.option.collectonly):
        return
    collector = config.stash.get(COLLECTOR_KEY, None)
    profile = environments.get_profile(config)
    if collector is None or profile is None:
        raise pytest.UsageError("--evidence needs an environment profile (--env NAME)")
    config.pluginmanager.register(EvidenceWriter(config, profile, collector), "mssante-evidence")


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def target_version(profile: Profile) -> str:
    """The platform's version from its API (``[api] version_path``, default ``/version``).

    Asked once, from the controller, at the end of the run: the version the checks just saw.
    """
    if not profile.has("api"):
        return f"unknown (not configured in {profile.name}: [api])"
    section = profile.section("api")
    path = section.get("version_path", "/version")
    try:
        with http_client(section, profile.threshold("http_timeout_s")) as client:
            response = client.get(path)
        body = response.json() if response.status_code == 200 else {}
    except Exception as exc:  # noqa: BLE001 - an unreachable API leaves the version unknown
        return redact(f"unknown ({path}: {type(exc).__name__}: {exc})")
    if not isinstance(body, dict) or not body.get("version"):
        return f"unknown ({path} answered {response.status_code} without a version)"
    schema = f" (schema {body['schema']})" if body.get("schema") else ""
    return f"{body['version']}{schema}"


def _files(bundle: Path) -> Iterator[Path]:
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path


def write_manifest(bundle: Path) -> Path:
    """``sha256sum`` format (two spaces, path relative to the bundle), sorted for diffing."""
    lines = [f"{sha256_file(p)}  {p.relative_to(bundle).as_posix()}" for p in _files(bundle)]
    manifest = bundle / MANIFEST
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _waiver_states(config: pytest.Config, results: list[CheckResult]) -> list[WaiverStatus]:
    waiver_file = waivers.get_waivers(config)
    today = dt.date.today()
    states = []
    for waiver in waiver_file.waivers if waiver_file else []:
        entry = waiver.to_dict()
        if waiver.expired(today):
            tests = [r.nodeid for r in results if waivers.expired_note(waiver) in r.warnings]
            states.append(WaiverStatus(entry, f"expired on {entry['expires']}, not applied", tests))
            continue
        tests = [r.nodeid for r in results if r.waiver == entry]
        states.append(WaiverStatus(entry, "applied" if tests else "active, unused", tests))
    return states


class EvidenceWriter:
    def __init__(self, config: pytest.Config, profile: Profile, collector: Collector) -> None:
        self.config = config
        self.profile = profile
        self.collector = collector
        self.bundle: Path | None = None

    def _meta(self, run_meta: dict[str, Any]) -> dict[str, Any]:
        """The run's metadata as results.json holds it (redacted), plus what an auditor checks."""
        profile = self.profile
        meta = dict(run_meta)
        meta["profile_sha256"] = sha256_file(profile.path)
        policy = profile.path_of("policy", "tls")
        if policy is not None:
            meta["tls_policy"] = str(policy)
            meta["tls_policy_sha256"] = (sha256_file(policy) if policy.is_file()
                                         else "file not found")
        meta["tools"] = f"{meta.get('tools', '')}, {ssl.OPENSSL_VERSION}"
        waiver_file = waivers.get_waivers(self.config)
        if waiver_file is not None and waiver_file.path.is_file():
            meta["waivers_file"] = str(waiver_file.path)
            meta["waivers_sha256"] = sha256_file(waiver_file.path)
        return meta

    def write(self) -> Path:
        bundle = run.evidence_dir(self.config)
        copies = bundle / RUN_REPORTS
        copies.mkdir(exist_ok=True)
        for name in COPIED_REPORTS:
            source = self.collector.out_dir / name
            if source.is_file():
                shutil.copyfile(source, copies / name)
        results = list(self.collector.results.values())
        users: dict[str, list[str]] = {}
        for result in results:
            for path in result.evidence:
                users.setdefault(path, []).append(result.nodeid)
        files = [EvidenceFile(p.relative_to(bundle).as_posix(), p.stat().st_size, sha256_file(p))
                 for p in _files(bundle) if p.name not in (HTML_REPORT, MD_REPORT)]
        for entry in files:
            entry.tests = users.get(entry.path, [])
        saved = json.loads((self.collector.out_dir / "results.json").read_text())
        report = EvidenceReport(
            meta=self._meta(saved["metadata"]), verdict=saved["verdict"], results=results,
            catalogue=self.config.stash[requirements.CATALOGUE_KEY], files=files,
            waivers=_waiver_states(self.config, results), present={f.path for f in files},
            figures={f.path: base64.b64encode((bundle / f.path).read_bytes()).decode()
                     for f in files if f.path.endswith(".png") and f.size <= MAX_EMBEDDED_BYTES})
        (bundle / HTML_REPORT).write_text(render_html(report), encoding="utf-8")
        (bundle / MD_REPORT).write_text(render_markdown(report), encoding="utf-8")
        write_manifest(bundle)
        return bundle

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        if "target_version" not in self.collector.facts:
            self.collector.facts["target_version"] = target_version(self.profile)
        yield
        self.bundle = self.write()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.bundle is not None:
            terminalreporter.write_line(
                f"evidence: {self.bundle}/ ({HTML_REPORT}, {MD_REPORT}, {MANIFEST}; verify with "
                f"`cd {self.bundle} && sha256sum -c {MANIFEST}`)")
