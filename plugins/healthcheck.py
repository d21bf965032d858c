"""The seed's 5-minute health check as a command: ``python -m plugins.healthcheck --env NAME``.

The seed's ``health-check.sh`` (run by cron) counts the services that fail a ``curl -f``,
writes ``health-status.json`` (timestamp, errors, healthy/degraded) and posts a ``ServiceDown``
alert to Alertmanager when the count reaches ``ALERT_THRESHOLD`` (3). This keeps that contract,
file shape included, but each service must speak its protocol: the API's health JSON says
``ok``, the front end serves its page, SMTP submission and IMAP complete a STARTTLS handshake
against the profile's IGC Santé anchors. Targets come from the same profile as the suites.

Bounded, always: each probe runs under its deadline (``[thresholds] http_timeout_s`` /
``connect_timeout_s``) for its whole exchange, the four side by side; the round gives up a probe
still running 2 s past the longest deadline (recorded as could-not-run), and the alert post is
one more bounded exchange. So a silent, trickling or garbage-sending target costs one deadline,
and ``health-status.json`` is written every time.

Exit status: 0 healthy, 1 degraded, 2 usage or profile error (one line naming file and key).
The seed's cron line becomes::

    */5 * * * * cd /opt/mssante-check && .venv/bin/python -m plugins.healthcheck --env prod \
        --output /var/log/mssante/health-status.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from plugins import profile as profiles
from plugins.profile import NotConfigured, Profile, ProfileError
from plugins.redaction import redact
from plugins.run import REPORTS_DIR
from policy.api_contract import ApiContract
from probes import http, smtp, vantage
from probes.http import http_client
from probes.imap import ImapSession
from probes.monitoring import post_alert
from probes.tlsctx import client_context

DEFAULT_THRESHOLD = 3           # the seed's ALERT_THRESHOLD
DEFAULT_OUTPUT = REPORTS_DIR / "health-status.json"
ALERT_SOURCE = "mssante-check-healthcheck"


@dataclass
class ServiceHealth:
    service: str
    ok: bool | None             # None: not configured in this environment (not an error)
    detail: str
    duration_ms: float


def _check_api(profile: Profile, timeouts: dict[str, float]) -> str:
    """The health path's status judged by the profile's API contract (accepted values at the
    status pointer: the seed's ``{"status": "ok"}`` by default)."""
    section = profile.section("api")
    contract = ApiContract.from_section(section)
    path = contract.health_path
    response = http.get(section, timeouts["http"], path)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    try:
        health = contract.judge_health(response.json(), need_checks=False)
    except ValueError:
        raise RuntimeError(f"{path} answered without JSON") from None
    if not health.healthy:
        raise RuntimeError("; ".join(health.problems))
    return f"{path} status {health.status}"


def _check_frontend(profile: Profile, timeouts: dict[str, float]) -> str:
    section = profile.section("frontend")
    response = http.get(section, timeouts["http"], "/")
    if response.status_code != 200:
        raise RuntimeError(f"/ answered {response.status_code}")
    expected = section.get("expect_text")
    if expected and expected not in response.text:
        raise RuntimeError(f"page does not contain {expected!r}")
    return f"/ answered 200 ({len(response.content)} bytes)"


def _check_smtp(profile: Profile, timeouts: dict[str, float]) -> str:
    section = profile.section("smtp.submission")
    session = smtp.connect(section["host"], section["port"], timeouts["connect"], "health-smtp")
    try:
        if "starttls" not in smtp.ehlo_features(session):
            raise RuntimeError("STARTTLS not offered")
        smtp.starttls(session, client_context(section.path("ca_file")))
    finally:
        smtp.close(session)
    return "banner, EHLO, STARTTLS ok"


def _check_imap(profile: Profile, timeouts: dict[str, float]) -> str:
    section = profile.section("imap")
    session = ImapSession(section["host"], section["port"], timeouts["connect"], "health-imap")
    try:
        if "STARTTLS" not in session.capabilities():
            raise RuntimeError("STARTTLS not offered")
        session.starttls(client_context(section.path("ca_file")))
    finally:
        session.close()
    return "CAPABILITY, STARTTLS ok"


# The seed's four services, in its order and with its names, and the section each one probes.
CHECKS: dict[str, Callable[[Profile, dict[str, float]], str]] = {
    "API": _check_api, "Frontend": _check_frontend, "SMTP": _check_smtp, "IMAP": _check_imap,
}
SECTIONS = {"API": "api", "Frontend": "frontend", "SMTP": "smtp.submission", "IMAP": "imap"}
# How long past the longest probe deadline the round waits before it gives a probe up.
GRACE_S = 2.0


def _run_one(name: str, check: Callable[[Profile, dict[str, float]], str], profile: Profile,
             timeouts: dict[str, float]) -> ServiceHealth:
    started = time.monotonic()
    try:
        ok, detail = True, check(profile, timeouts)
    except NotConfigured as exc:
        ok, detail = None, str(exc.msg)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, wrong answer: all an error
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return ServiceHealth(name, ok, redact(detail), round((time.monotonic() - started) * 1000, 1))


def round_bound(profile: Profile) -> float:
    """The longest the round of checks may take: its slowest probe's deadline, plus grace."""
    return max(profile.threshold("http_timeout_s"), profile.threshold("connect_timeout_s")) \
        + GRACE_S


def check_services(profile: Profile) -> list[ServiceHealth]:
    """Run the checks side by side: the whole round takes one deadline at worst, not four.

    Each probe bounds its own exchange; the round still waits at most :func:`round_bound`, so
    a probe that overstays (whatever it is stuck in) is recorded as could-not-run and left
    behind in its daemon thread: the status file is written on time all the same.
    """
    timeouts = {"http": profile.threshold("http_timeout_s"),
                "connect": profile.threshold("connect_timeout_s")}
    bound = round_bound(profile)
    results: dict[str, ServiceHealth] = {}

    def run(name: str, check: Callable[[Profile, dict[str, float]], str]) -> None:
        results[name] = _run_one(name, check, profile, timeouts)

    workers = [threading.Thread(target=run, args=item, name=f"health-{item[0]}", daemon=True)
               for item in CHECKS.items()]
    for worker in workers:
        worker.start()
    ends = time.monotonic() + bound
    for worker in workers:
        worker.join(max(ends - time.monotonic(), 0))
    return [results.get(name) or _overstayed(profile, name, bound) for name in CHECKS]


def _overstayed(profile: Profile, name: str, bound: float) -> ServiceHealth:
    section = profile.data.get(SECTIONS[name], {})
    endpoint = section.get("url") or f"{section.get('host')}:{section.get('port')}"
    return ServiceHealth(name, False, redact(f"could not run: {endpoint}: {name} check: no "
                                             f"complete answer within {bound:g} s"),
                         round(bound * 1000, 1))


def alert_for(profile: Profile, failing: list[ServiceHealth], now: dt.datetime) -> dict[str, Any]:
    """Post the seed's ServiceDown alert; the outcome is recorded, never raised."""
    names = ", ".join(s.service for s in failing)
    if not profile.has("alertmanager"):
        return {"sent": False, "error": f"not configured in {profile.name}: [alertmanager]"}
    section = profile.section("alertmanager")
    labels = {"alertname": "ServiceDown", "severity": "critical", "source": ALERT_SOURCE,
              "environment": profile.name}
    annotations = {"summary": f"{len(failing)} services en erreur: {names}",
                   "description": redact("; ".join(f"{s.service}: {s.detail}" for s in failing))}
    try:
        with http_client(section, profile.threshold("http_timeout_s")) as client:
            post_alert(client, labels, annotations, now)
    except Exception as exc:  # noqa: BLE001 - a failed alert is reported in the status file
        return {"sent": False, "url": section["url"],
                "error": redact(f"{type(exc).__name__}: {exc}")}
    return {"sent": True, "url": section["url"], "labels": labels}


def status_document(profile: Profile, services: list[ServiceHealth], threshold: int,
                    now: dt.datetime) -> dict[str, Any]:
    """The seed's health-status.json (timestamp, errors, status) plus what was checked."""
    errors = sum(1 for s in services if s.ok is False)
    return {"timestamp": now.isoformat(timespec="seconds"), "errors": errors,
            "status": "healthy" if errors == 0 else "degraded",
            "environment": profile.name, "alert_threshold": threshold,
            "services": [asdict(s) for s in services], "alert": None}


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """A monitoring agent reading the file mid-write must never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.healthcheck",
        description="The seed's periodic health check: write health-status.json and alert "
                    "Alertmanager when errors reach the threshold.")
    parser.add_argument("--env", default=os.environ.get("MSSANTE_ENV"), metavar="NAME|PATH",
                        help="environment profile (default: $MSSANTE_ENV)")
    parser.add_argument("--output", type=Path, default=None, metavar="PATH",
                        help="status file (default: the profile's [healthcheck] output, else "
                             f"{DEFAULT_OUTPUT})")
    parser.add_argument("--threshold", type=int, default=None, metavar="N",
                        help="errors that trigger an alert (default: [healthcheck] "
                             f"error_threshold, else {DEFAULT_THRESHOLD})")
    args = parser.parse_args(argv)
    if not args.env:
        parser.error("no environment: pass --env NAME "
                     f"(one of {', '.join(profiles.available())}) or set MSSANTE_ENV")
    if args.threshold is not None and args.threshold < 1:
        parser.error("--threshold must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        profile = profiles.load(args.env)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4                        # bad input, as pytest's usage errors
    vantage.bind_from(profile.data["environment"].get("source_address"))
    settings = profile.data.get("healthcheck", {})
    threshold = args.threshold or settings.get("error_threshold", DEFAULT_THRESHOLD)
    output = args.output or profile.path_of("healthcheck", "output") or DEFAULT_OUTPUT
    now = dt.datetime.now(dt.UTC).astimezone()
    started = time.monotonic()
    services = check_services(profile)
    document = status_document(profile, services, threshold, now)
    for service in services:
        state = "OK" if service.ok else ("non configuré" if service.ok is None else "ERREUR")
        print(f"{service.service}: {state} — {service.detail}")
    if document["errors"] >= threshold:
        document["alert"] = alert_for(profile, [s for s in services if s.ok is False], now)
        if document["alert"]["sent"]:
            print(f"⚠️ {document['errors']} services en erreur - Alerte envoyée")
        else:
            print(f"⚠️ {document['errors']} services en erreur - alerte NON envoyée: "
                  f"{document['alert']['error']}", file=sys.stderr)
    document["duration_s"] = round(time.monotonic() - started, 1)
    write_atomically(output, document)
    print(f"{document['status']} ({document['errors']} errors) → {output}")
    return 0 if document["status"] == "healthy" else 1


if __name__ == "__main__":
    sys.exit(main())
