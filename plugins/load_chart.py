"""The latency chart of a load run (PNG), drawn with matplotlib for the reports.

Left: the response-time percentiles of every step against the p95 threshold, so a reader sees
which step is slow and how long its tail is. Right: the unit of work completed each second and
the failures of every step against the minimum throughput, with the number of running users,
so a reader sees whether the load ramped up and held. matplotlib is imported here only (slow
to import, and only needed when a load run happened).
"""
from __future__ import annotations

from pathlib import Path

from plugins.load_stats import PERCENTILES, StepStats, Summary, Thresholds


def latency_chart(steps: list[StepStats], users: list[tuple[int, int]], summary: Summary,
                  limits: Thresholds, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.8))
    labels = [f"p{p * 100:g}" for p in PERCENTILES]
    for step in steps:
        left.plot(labels, [max(step.percentile(p), 0.5) for p in PERCENTILES], marker="o",
                  label=f"{step.label} ({step.requests})")
    left.axhline(limits.p95_ms, color="red", linestyle="--", linewidth=1,
                 label=f"p95 threshold {limits.p95_ms:g} ms")
    left.set_yscale("log")
    left.set_ylabel("response time (ms, log scale)")
    left.set_title("Response time percentiles per step")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)

    key = next((s for s in steps if s.label == summary.key), None)
    start = int(min((s.first for s in steps), default=0))
    if key is not None and key.per_second:
        seconds = sorted(key.per_second)
        right.plot([t - start for t in seconds],
                   [key.per_second[t] - key.failures_per_second.get(t, 0) for t in seconds],
                   color="tab:blue", marker=".", label=f"{summary.key} ok per second")
    failures: dict[int, int] = {}
    for step in steps:                   # a failing run may never reach its key step
        for second, count in step.failures_per_second.items():
            failures[second] = failures.get(second, 0) + count
    if failures:
        right.plot([t - start for t in sorted(failures)], [failures[t] for t in sorted(failures)],
                   color="tab:red", marker=".", label="failures per second (all steps)")
    right.axhline(limits.min_rps, color="red", linestyle="--", linewidth=1,
                  label=f"minimum {limits.min_rps:g} {summary.unit}")
    right.set_xlabel("seconds since start")
    right.set_ylabel(summary.unit)
    right.set_title(f"Throughput: {summary.throughput:g} {summary.unit} over the run")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=7, loc="upper left")
    if any(count for _, count in users):
        twin = right.twinx()
        twin.step([t - start for t, _ in users], [n for _, n in users], where="post",
                  color="grey", alpha=0.6, label="users")
        twin.set_ylabel("running users")
        twin.legend(fontsize=7, loc="upper right")

    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path
