"""Prometheus watches the platform: it is up, every target answers, the alert rules are loaded.

A Prometheus that is "healthy" but scrapes nothing, or lost its rule file on reload, pages no
one: the seed's monitoring chapter only holds if all three are true.
"""
from __future__ import annotations

import pytest

from plugins.outcomes import wait_until
from plugins.profile import Profile
from probes.monitoring import ScrapeTarget, alert_rules, scrape_targets

pytestmark = pytest.mark.service("prometheus")

# Never wait longer than this for a down target's next scrape, whatever its interval says.
MAX_RESCRAPE_WAIT_S = 120


@pytest.mark.requirement("SEED-MON-PROMETHEUS")
@pytest.mark.parametrize("endpoint", ["/-/healthy", "/-/ready"])
def test_prometheus_healthy_and_ready(prometheus, endpoint):
    response = prometheus.get(endpoint)
    assert response.status_code == 200, (
        f"Prometheus {endpoint} answered {response.status_code}: {response.text[:200]}")


@pytest.mark.requirement("SEED-MON-TARGETS")
def test_all_scrape_targets_up(prometheus, record):
    """A target seen down is judged on a scrape made after the check began.

    Prometheus reports the health of the *last* scrape, so a target that just came back (or
    just fell) may still show its old state for one interval: the check waits, bounded by the
    target's own interval and time-out, for a fresh scrape of every target not up.
    """
    first = scrape_targets(prometheus)
    assert first, "Prometheus has no active scrape target: it monitors nothing"
    targets = first
    if any(t.health != "up" for t in first):
        seen = {t.label: t.last_scrape for t in first if t.health != "up"}
        bound = min(MAX_RESCRAPE_WAIT_S,
                    max(t.interval_s + t.timeout_s for t in first if t.health != "up") + 2)

        def rescraped() -> list[ScrapeTarget] | None:
            now = scrape_targets(prometheus)
            fresh = all(t.last_scrape != seen[t.label] for t in now if t.label in seen)
            return now if fresh else None

        waited = wait_until(rescraped, timeout=bound, interval=1)
        targets = waited.value or scrape_targets(prometheus)
        record.measure("targets_rescrape_wait_s", round(waited.elapsed_s, 1), "s")
    down = [t for t in targets if t.health != "up"]
    record.measure("targets_up", len(targets) - len(down))
    record.measure("targets_total", len(targets))
    assert not down, "scrape targets not up: " + "; ".join(
        f"{t.label} {t.health}: {t.last_error or 'no error text'}" for t in down)


@pytest.mark.requirement("SEED-MON-RULES")
def test_expected_alert_rules_loaded(prometheus, env_profile: Profile, record):
    expected = env_profile.section("prometheus")["expected_rules"]
    rules = alert_rules(prometheus)
    record.measure("alert_rules_loaded", len(rules))
    names = {rule.name for rule in rules}
    missing = [name for name in expected if name not in names]
    assert not missing, (f"expected alert rules not loaded: {', '.join(missing)} "
                         f"(loaded: {', '.join(sorted(names)) or 'none'})")
    broken = [rule for rule in rules if rule.health == "err"]
    assert not broken, "alert rules failing to evaluate: " + "; ".join(
        f"{rule.name}: {rule.last_error}" for rule in broken)
