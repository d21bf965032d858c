"""``--evidence``: the bundle verifies with sha256sum, shows tampering, reads right in a browser.

The runs are throw-away test modules through the real plugin (no lab needed): a pass with an
evidence file, a deliberate failure, a skip, a test naming evidence that was never written and
a parameter that must be escaped in HTML. The HTML is opened in headless Chromium, whose DOM
and screenshot are what an auditor sees.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from plugins.evidence_report import requirement_label, requirement_outcome
from plugins.results import CheckResult
from tests.plugin.test_cli import pytest_run
from tests.tmp_suite import POLICY, TmpRun, run_tmp_suite

SOURCE = """
import struct, zlib
import pytest

def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    rows = b"".join(b"\\x00" + b"\\x20\\x60\\xc0" * width for _ in range(height))
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

@pytest.mark.requirement("SEED-MON-PROMETHEUS")
def test_with_scan(evidence_path, record):
    (evidence_path / "scans").mkdir(exist_ok=True)
    (evidence_path / "scans" / "api.json").write_text('{"tls": "1.3"}')
    record.evidence("scans/api.json")
    (evidence_path / "charts").mkdir(exist_ok=True)
    (evidence_path / "charts" / "latency.png").write_bytes(png(120, 40))
    record.evidence("charts/latency.png")

@pytest.mark.requirement("SEED-MON-PROMETHEUS")
def test_deliberate_failure():
    assert 1 == 2, "deliberate"

@pytest.mark.requirement("SEED-MON-TARGETS")
def test_names_missing_evidence(record):
    record.evidence("transcripts/never-written.txt")

@pytest.mark.requirement("SEED-MON-RULES")
def test_not_configured():
    pytest.skip("not configured in tmpenv: [prometheus]")

@pytest.mark.requirement("SEED-MON-GRAFANA", "SEED-MON-ALERTMANAGER")
@pytest.mark.parametrize("value", ["<b>bold</b>"])
def test_escaped(value):
    pass
"""
# requirement -> outcome the matrix must show (worst test wins)
MATRIX = {"SEED-MON-PROMETHEUS": "failed", "SEED-MON-TARGETS": "passed",
          "SEED-MON-RULES": "skipped", "SEED-MON-GRAFANA": "passed",
          "SEED-MON-ALERTMANAGER": "passed"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def bundle_run(tmp_path_factory: pytest.TempPathFactory) -> TmpRun:
    run = run_tmp_suite(tmp_path_factory.mktemp("evidence"), SOURCE, "--evidence")
    assert run.proc.returncode == 1, run.proc.stdout[-3000:] + run.proc.stderr[-3000:]
    return run


def sha256sum_check(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=bundle,
                          capture_output=True, text=True, timeout=30)


def matrix_section(markdown: str) -> list[str]:
    return markdown.split("## Requirement matrix")[1].split("\n## ")[0].strip().splitlines()


def test_manifest_verifies_and_covers_every_file(bundle_run):
    bundle = bundle_run.bundle
    proc = sha256sum_check(bundle)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = {line.split("  ", 1)[1] for line in (bundle / "manifest.sha256").read_text().splitlines()}
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert listed == on_disk - {"manifest.sha256"}
    assert {"evidence.html", "evidence.md", "scans/api.json", "run-reports/junit.xml",
            "run-reports/results.json", "run-reports/summary.md", "run-reports/report.html"} <= listed


def test_altered_file_fails_the_check(bundle_run, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_run.bundle, copy)
    (copy / "scans" / "api.json").write_text('{"tls": "1.0"}')
    proc = sha256sum_check(copy)
    assert proc.returncode != 0
    assert "scans/api.json: FAILED" in proc.stdout
    assert "evidence.html: OK" in proc.stdout


def test_markdown_matrix_and_metadata(bundle_run):
    markdown = (bundle_run.bundle / "evidence.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in matrix_section(markdown)[2:]}
    assert {rid: line.rstrip(" |").rsplit("**", 2)[1] for rid, line in rows.items()} == MATRIX
    assert "[scans/api.json](scans/api.json)" in rows["SEED-MON-PROMETHEUS"]
    assert "transcripts/never-written.txt (missing)" in rows["SEED-MON-TARGETS"]
    policy_hash = hashlib.sha256(POLICY.read_bytes()).hexdigest()
    assert f"| TLS policy SHA-256 | {policy_hash} |" in markdown
    assert "| Target version | unknown (not configured in tmpenv: [api]) |" in markdown
    assert "OpenSSL" in markdown and "pytest-xdist" in markdown
    assert "| SEED-OPS-9 |" in markdown.split("## Requirements not exercised")[1]
    assert "![charts/latency.png](charts/latency.png)" in markdown.split("## Figures")[1]
    assert "**Verdict: FAILED**" in markdown


def test_evidence_file_linked_to_its_test(bundle_run):
    markdown = (bundle_run.bundle / "evidence.md").read_text()
    files = markdown.split("## Evidence files")[1]
    line = next(line for line in files.splitlines() if line.startswith("| [scans/api.json]"))
    digest = hashlib.sha256((bundle_run.bundle / "scans" / "api.json").read_bytes()).hexdigest()
    assert f"`{digest}`" in line and "test_tmp.py::test_with_scan" in line


def test_same_matrix_under_xdist(bundle_run, tmp_path):
    parallel = run_tmp_suite(tmp_path, SOURCE, "--evidence", "-n", "2")
    assert sha256sum_check(parallel.bundle).returncode == 0
    serial_md = (bundle_run.bundle / "evidence.md").read_text()
    parallel_md = (parallel.bundle / "evidence.md").read_text()
    assert sorted(matrix_section(parallel_md)) == sorted(matrix_section(serial_md))
    assert (parallel.bundle / "scans" / "api.json").is_file()


def test_evidence_needs_an_environment(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = pytest_run("-p", "plugins", str(tmp_path / "test_x.py"), "--evidence",
                      "--rootdir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 4
    assert "--evidence needs an environment profile (--env NAME)" in proc.stderr


def test_requirement_is_as_good_as_its_worst_test():
    def results(*outcomes: str) -> list[CheckResult]:
        return [CheckResult(f"t{i}", outcome) for i, outcome in enumerate(outcomes)]

    assert requirement_outcome(results("passed", "skipped")) == "passed"
    assert requirement_outcome(results("passed", "waived")) == "waived"
    assert requirement_outcome(results("error", "failed")) == "failed"
    assert requirement_outcome(results("skipped")) == "skipped"


def test_requirement_whose_checks_could_not_run_is_not_measured():
    def results(*outcomes: str) -> list[CheckResult]:
        return [CheckResult(f"t{i}", outcome) for i, outcome in enumerate(outcomes)]

    assert requirement_label(results("error", "skipped")) == "not measured (error)"
    assert requirement_label(results("error", "passed")) == "partly measured (error)"
    assert requirement_label(results("error", "failed")) == "failed"
    assert requirement_label(results("passed")) == "passed"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y "
                    "chromium): the evidence HTML was NOT looked at in a browser")
def test_html_in_headless_chromium(bundle_run, tmp_path):
    page = (bundle_run.bundle / "evidence.html").as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page], capture_output=True, text=True,
                         timeout=60).stdout
    run_id = bundle_run.results["metadata"]["run_id"]
    assert f"<title>mssante-check evidence — tmpenv (test) — {run_id}</title>" in dom
    rows = re.findall(r'<tr class="requirement" data-outcome="(\w+)" id="req-([\w-]+)">', dom)
    assert {rid: outcome for outcome, rid in rows} == MATRIX
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom and "<b>bold</b>" not in dom
    assert 'href="scans/api.json"' in dom
    assert re.search(r'<img alt="charts/latency.png" [^>]*src="data:image/png;base64,', dom), (
        "the chart must be embedded: the HTML is one self-contained file")
    screenshot = tmp_path / "evidence.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1280,1400", f"--screenshot={screenshot}",
                    page], capture_output=True, timeout=60)
    assert screenshot.stat().st_size > 10_000, "Chromium rendered an empty page"
