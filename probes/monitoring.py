"""Readings from the monitoring stack's HTTP APIs: Prometheus, Alertmanager, Grafana.

Both the monitoring suite and the health-check command talk to these services; this module is
the one place that knows their endpoints and JSON shapes (Prometheus HTTP API v1, Alertmanager
API v2, Grafana ``/api/health``). Callers pass an ``httpx.Client`` bound to the service's base
URL, bounded for each whole exchange (:func:`probes.http.http_client`): an unreachable or
trickling service raises :class:`~probes.errors.CouldNotRun` naming the URL and the step.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx

from probes.errors import CouldNotRun


class MonitoringApiError(Exception):
    """The service answered, but not what its API promises (a failed check, not an outage)."""


def _duration_s(text: str) -> float:
    """A Prometheus duration as the targets API prints it (``5s``, ``1m``, ``1m30s``)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0.0, ""
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if text.startswith("ms", index) else char
        total += float(number or 0) * units.get(unit, 0)
        number, index = "", index + len(unit)
    return total


def prometheus_data(client: httpx.Client, path: str) -> Any:
    """``data`` of a Prometheus API answer; anything but HTTP 200 with status success raises."""
    response = client.get(path)
    if response.status_code != 200:
        raise MonitoringApiError(f"Prometheus {path} answered {response.status_code}: "
                                 f"{response.text[:200]}")
    payload = response.json()
    if payload.get("status") != "success":
        raise MonitoringApiError(f"Prometheus {path} status {payload.get('status')!r}: "
                                 f"{payload.get('error', '')}")
    return payload["data"]


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    instance: str
    health: str                 # up | down | unknown (not scraped yet)
    last_error: str
    last_scrape: str            # as Prometheus prints it; changes at every scrape
    interval_s: float
    timeout_s: float

    @property
    def label(self) -> str:
        return f"{self.job} ({self.instance})"


def scrape_targets(client: httpx.Client) -> list[ScrapeTarget]:
    """Active scrape targets with their last scrape's health."""
    data = prometheus_data(client, "/api/v1/targets?state=active")
    targets = []
    for entry in data.get("activeTargets", []):
        labels = entry.get("labels", {})
        discovered = entry.get("discoveredLabels", {})
        targets.append(ScrapeTarget(
            job=labels.get("job", entry.get("scrapePool", "?")),
            instance=labels.get("instance", entry.get("scrapeUrl", "?")),
            health=entry.get("health", "unknown"), last_error=entry.get("lastError", ""),
            last_scrape=entry.get("lastScrape", ""),
            interval_s=_duration_s(entry.get("scrapeInterval", "") or discovered.get(
                "__scrape_interval__", "")),
            timeout_s=_duration_s(entry.get("scrapeTimeout", "") or discovered.get(
                "__scrape_timeout__", ""))))
    return targets


@dataclass(frozen=True)
class AlertRule:
    name: str
    group: str
    health: str                 # ok | err | unknown (not evaluated yet)
    last_error: str
    state: str                  # inactive | pending | firing


def alert_rules(client: httpx.Client) -> list[AlertRule]:
    """Every alerting rule Prometheus has loaded, across rule groups."""
    data = prometheus_data(client, "/api/v1/rules?type=alert")
    return [AlertRule(rule["name"], group.get("name", ""), rule.get("health", "unknown"),
                      rule.get("lastError", ""), rule.get("state", ""))
            for group in data.get("groups", []) for rule in group.get("rules", [])
            if rule.get("type") == "alerting"]


def active_alertmanagers(client: httpx.Client) -> list[str]:
    """URLs of the Alertmanagers Prometheus currently sends alerts to."""
    data = prometheus_data(client, "/api/v1/alertmanagers")
    return [entry["url"] for entry in data.get("activeAlertmanagers", [])]


def endpoint_key(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, the port defaulted by scheme: what "the same
    Alertmanager" means when Prometheus prints ``http://host:port/api/v2/alerts`` and the
    profile says ``http://host:port``."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.host.lower().strip("[]"), port


def alertmanager_in_use(active: list[str], profile_url: str) -> str | None:
    """The URL among Prometheus' active Alertmanagers that is the profile's (same host and
    port), or None: alerts sent elsewhere are not the ones the operator reads."""
    wanted = endpoint_key(profile_url)
    return next((url for url in active if endpoint_key(url) == wanted), None)


def alerting_problem(prometheus: httpx.Client, alertmanager: httpx.Client,
                     profile_url: str) -> tuple[list[str], str | None]:
    """(Prometheus' active Alertmanagers, what is wrong with the wiring or None).

    Wrong: none active; none of them the profile's ``profile_url``; or the profile's not
    answering ``/-/ready``. Prometheus sending to an Alertmanager that does not answer is the
    platform's alerting broken, so that is a problem, not could-not-run; Prometheus itself
    not answering stays :class:`~probes.errors.CouldNotRun` (nothing measured)."""
    active = active_alertmanagers(prometheus)
    if not active:
        return active, "Prometheus has no active Alertmanager: its alerts go nowhere"
    used = alertmanager_in_use(active, profile_url)
    if used is None:
        return active, (f"Prometheus sends its alerts to {', '.join(active)}, not to the "
                        f"profile's Alertmanager {profile_url}: the alerts the operator reads "
                        "are not Prometheus' ones")
    try:
        response = alertmanager.get("/-/ready")
    except CouldNotRun as exc:
        return active, (f"Prometheus sends its alerts to {used}, which does not answer: "
                        f"{exc.reason} (alerts go nowhere)")
    if response.status_code != 200:
        return active, (f"Prometheus sends its alerts to {used}, whose /-/ready answers "
                        f"{response.status_code}")
    return active, None


def alertmanager_status(client: httpx.Client) -> dict[str, Any]:
    """Alertmanager's ``/api/v2/status`` (version, uptime, loaded configuration)."""
    response = client.get("/api/v2/status")
    if response.status_code != 200:
        raise MonitoringApiError(f"Alertmanager /api/v2/status answered {response.status_code}")
    status: dict[str, Any] = response.json()
    return status


def post_alert(client: httpx.Client, labels: dict[str, str], annotations: dict[str, str],
               starts_at: dt.datetime, ends_at: dt.datetime | None = None) -> None:
    """Post one alert to Alertmanager (API v2: the v1 endpoint the seed uses is gone since 0.27).
    ``ends_at``: when it resolves by itself (a test alert must not linger)."""
    alert = {"labels": labels, "annotations": annotations,
             "startsAt": starts_at.astimezone(dt.UTC).isoformat()}
    if ends_at is not None:
        alert["endsAt"] = ends_at.astimezone(dt.UTC).isoformat()
    response = client.post("/api/v2/alerts", json=[alert])
    if response.status_code != 200:
        raise MonitoringApiError(f"Alertmanager refused the alert: {response.status_code} "
                                 f"{response.text[:200]}")


def alerts(client: httpx.Client, **label_filter: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager holds whose labels equal ``label_filter``."""
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("filter", f'{name}="{value}"') for name, value in label_filter.items()]
    response = client.get("/api/v2/alerts", params=params)
    if response.status_code != 200:
        raise MonitoringApiError(f"Alertmanager /api/v2/alerts answered {response.status_code}")
    held: list[dict[str, Any]] = response.json()
    return held


def grafana_health(client: httpx.Client) -> dict[str, Any]:
    """Grafana's ``/api/health`` JSON (``database`` is ``ok`` when its database answers)."""
    response = client.get("/api/health")
    if response.status_code != 200:
        raise MonitoringApiError(f"Grafana /api/health answered {response.status_code}")
    health: dict[str, Any] = response.json()
    return health
