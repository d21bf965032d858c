"""How long the lab takes to come up and go down (issue: `up` under 30 s on 2 cores).

Measured, not asserted: runs `down`, a cold-ish `up` (processes stopped, state kept), a warm
`up` (nothing to do) and a fault switch, several times, and prints the medians.

    .venv/bin/python benchmarks/lab_up.py --runs 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script: the repository root goes on the path (lab is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import control


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"down": [], "up (stopped)": [], "up (warm)": [],
                                       "fault switch (db-down)": [], "back to good": []}
    for _ in range(args.runs):
        figures["down"].append(timed(control.down))
        figures["up (stopped)"].append(timed(lambda: control.up([])))
        figures["up (warm)"].append(timed(lambda: control.up([])))
        figures["fault switch (db-down)"].append(timed(lambda: control.up(["db-down"])))
        figures["back to good"].append(timed(lambda: control.up([])))
    print(f"{'step':<26}{'median s':>10}{'max s':>10}")
    for step, values in figures.items():
        print(f"{step:<26}{statistics.median(values):>10.2f}{max(values):>10.2f}")


if __name__ == "__main__":
    main()
