"""Locust's output files read back and judged: per-step statistics, summary, threshold verdicts.

Pure functions over the files locust writes (``--json-file``, ``--csv``), so they are
unit-tested on sample files and never import locust (whose gevent patching stays out of
pytest). The JSON is read for the figures because locust writes it at shutdown from its final
statistics, merged from every worker; the CSV files give the failure messages and the user
count over time.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PERCENTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


@dataclass
class StepStats:
    """One locust statistics entry: a request type (``GET``, ``SMTP``) and a step name."""

    kind: str
    name: str
    requests: int
    failures: int
    histogram: dict[int, int]           # response time (ms, as locust rounds it) -> count
    first: float                        # epoch seconds of the entry's first request
    last: float                         # epoch seconds of its last request
    per_second: dict[int, int] = field(default_factory=dict)
    failures_per_second: dict[int, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def percentile(self, fraction: float) -> int:
        """Response time under which ``fraction`` of the requests fall (locust's own method)."""
        if not self.requests:
            return 0
        allowed_above = int(self.requests * fraction)
        seen = 0
        for value in sorted(self.histogram, reverse=True):
            seen += self.histogram[value]
            if self.requests - seen <= allowed_above:
                return value
        return 0


def read_stats_json(path: Path) -> list[StepStats]:
    """The entries of locust's ``--json-file`` output (histogram keys come back as strings)."""
    entries = json.loads(path.read_text())
    return [StepStats(kind=e["method"] or "", name=e["name"], requests=e["num_requests"],
                      failures=e["num_failures"],
                      histogram={int(float(k)): v for k, v in e["response_times"].items()},
                      first=e["start_time"], last=e["last_request_timestamp"] or e["start_time"],
                      per_second={int(float(k)): v for k, v in e["num_reqs_per_sec"].items()},
                      failures_per_second={int(float(k)): v
                                           for k, v in e["num_fail_per_sec"].items()})
            for e in entries]


def read_failures_csv(path: Path) -> list[tuple[str, int]]:
    """(``"SMTP auth: error text"``, occurrences) from ``<prefix>_failures.csv``, most first."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [(f"{r['Method']} {r['Name']}: {r['Error']}", int(r["Occurrences"]))
                for r in csv.DictReader(handle)]
    return sorted(rows, key=lambda row: -row[1])


def read_exceptions_csv(path: Path) -> list[tuple[str, int]]:
    """(message, count) of exceptions raised inside the users (bugs, not service failures)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [(r["Message"], int(r["Count"])) for r in csv.DictReader(handle)]


def read_users_history(path: Path) -> list[tuple[int, int]]:
    """(epoch second, running users) from ``<prefix>_stats_history.csv`` (Aggregated rows)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [(int(r["Timestamp"]), int(r["User Count"])) for r in csv.DictReader(handle)
                if r["Name"] == "Aggregated"]


@dataclass(frozen=True)
class Thresholds:
    p95_ms: float
    max_failure_ratio: float
    min_rps: float


@dataclass
class Summary:
    """What the reports show and the thresholds judge, for one scenario."""

    key: str                            # the step counted as the unit of work ("SMTP send")
    unit: str                           # "requests/s", "messages/s", ...
    requests: int                       # every step of every session
    failures: int
    failure_ratio: float
    throughput: float                   # key steps completed per second over the run
    p50_ms: int                         # key step percentiles
    p95_ms: int
    p99_ms: int
    worst_step: str                     # the step with the highest p95 (the one judged)
    worst_p95_ms: int
    span_s: float
    steps: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(steps: list[StepStats], key: tuple[str, str], unit: str) -> Summary:
    """Totals over every step; throughput and percentiles of the ``key`` (kind, name) step.

    Throughput counts the key step's successes only (a refused message is not a message
    sent) over the span from the first to the last request of the run.
    """
    requests = sum(s.requests for s in steps)
    failures = sum(s.failures for s in steps)
    span = max(max((s.last for s in steps), default=0) - min((s.first for s in steps), default=0),
               0.1)
    main = next((s for s in steps if (s.kind, s.name) == key), None)
    worst = max(steps, key=lambda s: s.percentile(0.95), default=None)
    return Summary(
        key=f"{key[0]} {key[1]}", unit=unit, requests=requests, failures=failures,
        failure_ratio=failures / requests if requests else 1.0,
        throughput=round((main.requests - main.failures) / span, 2) if main else 0.0,
        p50_ms=main.percentile(0.5) if main else 0, p95_ms=main.percentile(0.95) if main else 0,
        p99_ms=main.percentile(0.99) if main else 0,
        worst_step=worst.label if worst else "",
        worst_p95_ms=worst.percentile(0.95) if worst else 0,
        span_s=round(span, 2),
        steps=[{"step": s.label, "requests": s.requests, "failures": s.failures,
                **{f"p{p * 100:g}_ms": s.percentile(p) for p in PERCENTILES}} for s in steps])


def judge(summary: Summary, limits: Thresholds) -> list[str]:
    """Every threshold the run broke, one readable line each (empty: the run passes)."""
    if not summary.requests:
        return ["no request completed: the load generator could not reach the target"]
    breaches = []
    if summary.worst_p95_ms > limits.p95_ms:
        breaches.append(f"p95 latency of {summary.worst_step} is {summary.worst_p95_ms} ms "
                        f"(threshold {limits.p95_ms:g} ms)")
    if summary.failure_ratio > limits.max_failure_ratio:
        breaches.append(f"failure ratio {summary.failure_ratio:.2%} ({summary.failures} of "
                        f"{summary.requests}) exceeds {limits.max_failure_ratio:.2%}")
    if summary.throughput < limits.min_rps:
        breaches.append(f"throughput {summary.throughput:g} {summary.unit} of {summary.key} is "
                        f"under the minimum {limits.min_rps:g}")
    return breaches
