"""Lifecycle phases under their deadline (pure units: no lab, real processes and clocks).

A phase that ends past its deadline fails (which rolls the release back); a 0.5 s deadline is
0.5 s, not "no limit"; a step that ignores its own bound is stopped by the hard stop; a
command past its time-out fails its phase with the reason.
"""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

from plugins import commands
from plugins.lifecycle import HARD_STOP_MARGIN_S, Deployment, Lifecycle

LIMIT = (0.5, "[lifecycle] command_timeout_s")


def lifecycle() -> Lifecycle:
    """A Lifecycle with only what ``_phase`` uses (no pytest session, no profile)."""
    bare = object.__new__(Lifecycle)
    bare.config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: None))
    bare.deployment = Deployment("t", "unit", "1.1.0", time.time())
    bare._expires = None
    return bare


def test_a_phase_that_ends_past_its_deadline_fails():
    life = lifecycle()
    assert not life._phase("deploy", "Déploiement", lambda: time.sleep(1.6) or "done",
                           "LIFE-DEPLOY", LIMIT)
    phase = life.deployment.phases[-1]
    assert phase.ok is False and phase.deadline_s == 0.5
    assert phase.detail.startswith("past its deadline: took 1.6s, more than 0.5s "
                                   "([lifecycle] command_timeout_s)")


def test_a_phase_within_its_deadline_passes():
    life = lifecycle()
    assert life._phase("deploy", "Déploiement", lambda: "done", "LIFE-DEPLOY", LIMIT)
    assert life.deployment.phases[-1].ok is True


def test_a_command_past_half_a_second_fails_its_phase():
    life = lifecycle()
    started = time.monotonic()
    ok = life._phase("deploy", "Déploiement", lambda: commands.run_local(
        [sys.executable, "-c", "import time; time.sleep(30)"], LIMIT[0]).tail,
        "LIFE-DEPLOY", LIMIT)
    assert not ok and time.monotonic() - started < 3
    assert "did not finish within 0.5s: killed (process group)" in life.deployment.phases[-1].detail


def test_a_step_that_ignores_its_bound_is_stopped():
    life = lifecycle()
    started = time.monotonic()
    ok = life._phase("wait_version", "Version servie", lambda: time.sleep(60) or "never",
                     "LIFE-DEPLOY", (0.5, "[lifecycle] version_timeout_s"))
    elapsed = time.monotonic() - started
    assert not ok and elapsed < 0.5 + HARD_STOP_MARGIN_S + 1
    assert life.deployment.phases[-1].detail == (
        "past its deadline: not finished within 0.5s ([lifecycle] version_timeout_s)")
