"""The evidence report's content and its two renderings: self-contained HTML and a markdown twin.

An auditor reads it as a matrix — requirement → tests → outcome → evidence files — under the
run's identity (environment, target version, time, tool versions, policy hash). Pure functions
of merged results and file listings, so the rendering is unit-tested without a pytest run;
:mod:`plugins.evidence` gathers the inputs and writes the bundle. Every text is redacted.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from plugins.redaction import redact
from plugins.requirements import Requirement
from plugins.results import OUTCOMES, CheckResult

# Worst first: a requirement is as good as its worst test.
RANK = ("failed", "error", "waived", "warning", "passed", "skipped")
# Run facts shown in the report header, in this order (key, label).
META_FIELDS = (
    ("environment", "Environment"), ("profile", "Profile"), ("profile_sha256", "Profile SHA-256"),
    ("trust_anchors", "Trust anchors"), ("vantage", "Vantage (source address)"),
    ("run_id", "Run"), ("started", "Started (UTC)"), ("finished", "Finished (UTC)"),
    ("target_version", "Target version"), ("user", "Run by"), ("command", "Command"),
    ("suite_commit", "mssante-check commit"), ("tools", "Tool and library versions"),
    ("tls_policy", "TLS policy"), ("tls_policy_sha256", "TLS policy SHA-256"),
    ("waivers_file", "Waiver file"), ("waivers_sha256", "Waiver file SHA-256"),
)
FOLD_AFTER = 5                  # longer test lists under an evidence file are folded
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:2px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.meta-key{width:14em;font-weight:600;background:#fafafa}
code,.mono{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
td.req-id code{white-space:nowrap}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;
font-weight:600;white-space:nowrap}
.passed{background:#2e7d32}.warning{background:#b26a00}.waived{background:#5e35b1}
.failed{background:#c62828}.error{background:#6d1b1b}.skipped{background:#757575}
.verdict{font-size:1.2em;padding:.5em 1em;border-radius:6px;color:#fff;display:inline-block}
.sev{font-size:11px;color:#555;text-transform:uppercase}.small{font-size:12px;color:#555}
ul.tests{margin:0;padding-left:1.1em}.missing{color:#c62828;font-weight:600}
"""


@dataclass
class EvidenceFile:
    path: str                   # relative to the bundle, POSIX separators
    size: int
    sha256: str
    tests: list[str] = field(default_factory=list)


@dataclass
class WaiverStatus:
    waiver: dict[str, str]
    state: str                  # "applied", "active, unused", "expired"
    tests: list[str] = field(default_factory=list)


@dataclass
class MatrixRow:
    requirement: Requirement
    results: list[CheckResult]

    @property
    def outcome(self) -> str:
        return requirement_outcome(self.results)

    @property
    def label(self) -> str:
        """What an auditor reads: a requirement whose worst check could not run (unreachable,
        blocked by a failed prerequisite) was *not measured*, which must not read as a verdict
        on the requirement itself."""
        return requirement_label(self.results)


@dataclass
class EvidenceReport:
    meta: dict[str, str]
    verdict: str
    results: list[CheckResult]
    catalogue: dict[str, Requirement]
    files: list[EvidenceFile]
    waivers: list[WaiverStatus]
    present: set[str] = field(default_factory=set)   # evidence paths that exist in the bundle
    figures: dict[str, str] = field(default_factory=dict)  # PNG evidence path -> base64 content

    @property
    def rows(self) -> list[MatrixRow]:
        by_requirement: dict[str, list[CheckResult]] = {}
        for result in self.results:
            for rid in result.requirements:
                by_requirement.setdefault(rid, []).append(result)
        return [MatrixRow(self.catalogue[rid], group) for rid, group in sorted(
            by_requirement.items()) if rid in self.catalogue]

    @property
    def not_exercised(self) -> list[Requirement]:
        exercised = {rid for result in self.results for rid in result.requirements}
        return [req for rid, req in sorted(self.catalogue.items()) if rid not in exercised]

    def counts(self) -> dict[str, int]:
        return {name: sum(1 for r in self.results if r.outcome == name) for name in OUTCOMES}


def requirement_outcome(results: list[CheckResult]) -> str:
    outcomes = {r.outcome for r in results}
    return next((name for name in RANK if name in outcomes), "skipped")


def requirement_label(results: list[CheckResult]) -> str:
    """The matrix cell: the outcome, except that ``error`` reads "not measured (error)", or
    "partly measured (error)" when some of the requirement's other checks did measure it."""
    outcome = requirement_outcome(results)
    if outcome != "error":
        return outcome
    measured = any(r.outcome in ("passed", "warning", "waived") for r in results)
    return "partly measured (error)" if measured else "not measured (error)"


# ---- HTML ---------------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _badge(outcome: str) -> str:
    return f'<span class="badge {_e(outcome)}">{_e(outcome)}</span>'


def _link(path: str, present: set[str]) -> str:
    if path in present:
        return f'<a class="mono" href="{_e(path)}">{_e(path)}</a>'
    return f'<span class="mono missing" title="not in the bundle">{_e(path)} (missing)</span>'


def _html_test_line(result: CheckResult) -> str:
    detail = f' — <span class="small">{_e(result.message)}</span>' if result.message else ""
    return f"<li>{_badge(result.outcome)} <code>{_e(result.nodeid)}</code>{detail}</li>"


def render_html(report: EvidenceReport) -> str:
    meta, counts = report.meta, report.counts()
    verdict_class = ("failed" if report.verdict == "FAILED" else
                     "passed" if report.verdict == "PASSED" else "warning")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mssante-check evidence — {_e(meta.get('environment', '?'))} — "
        f"{_e(meta.get('run_id', '?'))}</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>mssante-check evidence report</h1>",
        f'<p><span class="verdict {verdict_class}" id="verdict">{_e(report.verdict)}</span> '
        + " ".join(f"{_badge(name)} {n}" for name, n in counts.items() if n) + "</p>",
        '<h2 id="run">Run</h2><table id="metadata">']
    parts += [f'<tr><td class="meta-key">{_e(label)}</td><td>{_e(meta[key])}</td></tr>'
              for key, label in META_FIELDS if meta.get(key)]
    parts.append("</table>")

    parts += ['<h2 id="requirements">Requirement matrix</h2>',
              f'<p class="small">{len(report.rows)} requirements exercised by '
              f'{len(report.results)} tests. A requirement is as good as its worst test.</p>',
              '<table id="matrix"><thead><tr><th>Requirement</th><th>Title and source</th>'
              "<th>Tests</th><th>Evidence</th><th>Outcome</th></tr></thead><tbody>"]
    for row in report.rows:
        req = row.requirement
        evidence = sorted({path for r in row.results for path in r.evidence})
        parts.append(
            f'<tr class="requirement" data-outcome="{_e(row.outcome)}" id="req-{_e(req.id)}">'
            f'<td class="req-id"><code>{_e(req.id)}</code><br>'
            f'<span class="sev">{_e(req.severity)}</span></td>'
            f'<td>{_e(req.title)}<br><span class="small">{_e(req.source)}</span></td>'
            f'<td><ul class="tests">{"".join(_html_test_line(r) for r in row.results)}</ul></td>'
            f'<td>{"<br>".join(_link(p, report.present) for p in evidence) or "—"}</td>'
            f'<td><span class="badge {_e(row.outcome)}">{_e(row.label)}</span></td></tr>')
    parts.append("</tbody></table>")

    if report.figures:
        parts.append('<h2 id="figures">Figures</h2>')
        parts += [f'<figure><img alt="{_e(path)}" style="max-width:100%" '
                  f'src="data:image/png;base64,{data}"><figcaption class="small">'
                  f'{_link(path, report.present)}</figcaption></figure>'
                  for path, data in sorted(report.figures.items())]

    parts += ['<h2 id="tests">Tests</h2><table id="results"><thead><tr><th>Test</th>'
              "<th>Requirements</th><th>Outcome</th><th>Duration</th><th>Detail</th></tr>"
              "</thead><tbody>"]
    for r in report.results:
        detail = [_e(r.message)] if r.message else []
        detail += [f"⚠ {_e(w)}" for w in r.warnings if w != r.message]
        detail += [f'<span class="small">{_e(m["name"])} = {_e(m["value"])} '
                   f'{_e(m.get("unit", ""))}</span>' for m in r.measured]
        if r.waiver:
            detail.append(f"waiver {_e(r.waiver.get('id'))} approved by "
                          f"{_e(r.waiver.get('approver'))} until {_e(r.waiver.get('expires'))}: "
                          f"{_e(r.waiver.get('justification'))}")
        parts.append(f'<tr class="test" data-outcome="{_e(r.outcome)}"><td><code>{_e(r.nodeid)}'
                     f'</code></td><td>{_e(", ".join(r.requirements))}</td>'
                     f"<td>{_badge(r.outcome)}</td><td>{r.duration_s:.2f}s</td>"
                     f'<td>{"<br>".join(detail)}</td></tr>')
    parts.append("</tbody></table>")

    parts.append('<h2 id="waivers">Waivers</h2>')
    if report.waivers:
        parts.append("<table><thead><tr><th>Waiver</th><th>Approver</th><th>Expires</th>"
                     "<th>Justification</th><th>State</th></tr></thead><tbody>")
        for status in report.waivers:
            w = status.waiver
            tests = "".join(f"<br><code>{_e(t)}</code>" for t in status.tests)
            parts.append(f"<tr><td><code>{_e(w['id'])}</code></td><td>{_e(w['approver'])}</td>"
                         f"<td>{_e(w['expires'])}</td><td>{_e(w['justification'])}</td>"
                         f"<td>{_e(status.state)}{tests}</td></tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No waiver in force for this run.</p>")

    parts += ['<h2 id="files">Evidence files</h2>',
              '<p class="small">Every file of this folder is listed in '
              "<code>manifest.sha256</code>;"
              " check it with <code>sha256sum -c manifest.sha256</code> from this folder.</p>",
              '<table id="evidence"><thead><tr><th>File</th><th>Size</th><th>SHA-256</th>'
              "<th>Tests</th></tr></thead><tbody>"]
    for f in report.files:
        tests = "<br>".join(f"<code>{_e(t)}</code>" for t in f.tests) or "—"
        if len(f.tests) > FOLD_AFTER:   # a TLS scan serves dozens of rule tests
            tests = f"<details><summary>{len(f.tests)} tests</summary>{tests}</details>"
        parts.append(f"<tr><td>{_link(f.path, report.present)}</td><td>{f.size}</td>"
                     f'<td class="mono">{_e(f.sha256)}</td><td>{tests}</td></tr>')
    parts.append("</tbody></table>")

    parts += ['<h2 id="not-exercised">Requirements not exercised by this run</h2>',
              '<table id="not-exercised-table"><thead><tr><th>Requirement</th><th>Title</th>'
              "<th>Source</th><th>Severity</th></tr></thead><tbody>"]
    parts += [f"<tr><td><code>{_e(q.id)}</code></td><td>{_e(q.title)}</td>"
              f'<td class="small">{_e(q.source)}</td><td>{_e(q.severity)}</td></tr>'
              for q in report.not_exercised]
    parts.append("</tbody></table></body></html>")
    return redact("\n".join(parts)) + "\n"


# ---- Markdown ---------------------------------------------------------------------------------
def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_link(path: str, present: set[str]) -> str:
    return f"[{path}]({path})" if path in present else f"{path} (missing)"


def render_markdown(report: EvidenceReport) -> str:
    meta, counts = report.meta, report.counts()
    lines = [f"# mssante-check evidence report — {meta.get('environment', '?')}", "",
             f"**Verdict: {report.verdict}** — " + ", ".join(
                 f"{n} {name}" for name, n in counts.items() if n), "", "## Run", "",
             "| | |", "|---|---|"]
    lines += [f"| {label} | {_cell(meta[key])} |" for key, label in META_FIELDS if meta.get(key)]

    lines += ["", "## Requirement matrix", "",
              "| Requirement | Severity | Title | Tests | Evidence | Outcome |",
              "|---|---|---|---|---|---|"]
    for row in report.rows:
        req = row.requirement
        tests = "<br>".join(f"`{_cell(r.nodeid)}` {r.outcome}" for r in row.results)
        evidence = "<br>".join(_md_link(p, report.present) for p in sorted(
            {p for r in row.results for p in r.evidence})) or "—"
        lines.append(f"| {req.id} | {req.severity} | {_cell(req.title)} "
                     f"({_cell(req.source)}) | {tests} | {evidence} | **{row.label}** |")

    if report.figures:
        lines += ["", "## Figures", ""] + [f"![{path}]({path})" for path in sorted(report.figures)]

    lines += ["", "## Tests", "", "| Test | Requirements | Outcome | Duration | Detail |",
              "|---|---|---|---|---|"]
    for r in report.results:
        detail = [r.message] if r.message else []
        detail += [f"⚠ {w}" for w in r.warnings if w != r.message]
        detail += [f"{m['name']} = {m['value']} {m.get('unit', '')}".strip() for m in r.measured]
        if r.waiver:
            detail.append(f"waiver {r.waiver.get('id')} approved by {r.waiver.get('approver')} "
                          f"until {r.waiver.get('expires')}: {r.waiver.get('justification')}")
        lines.append(f"| `{_cell(r.nodeid)}` | {', '.join(r.requirements)} | {r.outcome} | "
                     f"{r.duration_s:.2f}s | {_cell('<br>'.join(detail))} |")

    lines += ["", "## Waivers", ""]
    if report.waivers:
        lines += ["| Waiver | Approver | Expires | Justification | State |",
                  "|---|---|---|---|---|"]
        for status in report.waivers:
            w = status.waiver
            state = status.state + "".join(f"<br>`{t}`" for t in status.tests)
            lines.append(f"| {_cell(w['id'])} | {_cell(w['approver'])} | {w['expires']} | "
                         f"{_cell(w['justification'])} | {_cell(state)} |")
    else:
        lines.append("No waiver in force for this run.")

    lines += ["", "## Evidence files", "",
              "Every file of this folder is listed in `manifest.sha256`; check it with "
              "`sha256sum -c manifest.sha256` from this folder.", "",
              "| File | Size | SHA-256 | Tests |", "|---|---|---|---|"]
    lines += [f"| {_md_link(f.path, report.present)} | {f.size} | `{f.sha256}` | "
              f"{'<br>'.join(f'`{_cell(t)}`' for t in f.tests) or '—'} |" for f in report.files]

    lines += ["", "## Requirements not exercised by this run", "",
              "| Requirement | Title | Source | Severity |", "|---|---|---|---|"]
    lines += [f"| {q.id} | {_cell(q.title)} | {_cell(q.source)} | {q.severity} |"
              for q in report.not_exercised]
    return redact("\n".join(lines)) + "\n"
