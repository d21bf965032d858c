"""Throughput of the load suite's generators vs the reference tools, against the lab, in one run.

    .venv/bin/python benchmarks/load_throughput.py [--messages 600] [--sessions 10]
                                                   [--api-users 10] [--api-seconds 10]

* SMTP, messages/s: the locust ``SmtpUser`` (suites/load/locustfile.py, run by
  ``plugins.load.run_locust`` exactly as ``pytest --load`` runs it) with 1 and 2 worker
  processes, vs Postfix's ``smtp-source`` with as many parallel sessions. smtp-source speaks
  neither TLS nor AUTH and the lab's submission port requires both, so it goes through
  ``stunnel`` (``protocol = smtp``: STARTTLS, then AUTH PLAIN before handing the session over):
  per message the server does the same work for both — TCP connect, EHLO, STARTTLS, AUTH,
  MAIL/RCPT/DATA, QUIT.
* API, requests/s: the locust ``ApiUser`` (1 and 2 workers) vs ``wrk`` with as many
  connections, both on ``GET /api/v1/mailboxes`` with a bearer token.

Target (issue 7): with 2 workers our load path reaches at least half of the reference tool's
throughput, so the load generator is not what limits a measurement. The lab is held through
``tests.labctl.lab_up()`` (no fault test breaks it mid-measure) and every message sent is
deleted at the end. Needs the Debian packages postfix (smtp-source), stunnel4 and wrk.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from plugins import profile as profiles
from plugins.load import SCENARIOS, LoadSettings, free_port, profile_argument, run_locust
from plugins.load_stats import read_stats_json, summarise
from probes.imap import ImapSession
from probes.smtp import MARKER_HEADER
from probes.tlsctx import client_context
from tests.labctl import lab_up

TARGET_RATIO = 0.5


def ours(scenario: str, users: int, workers: int, seconds: float, messages: int,
         profile: profiles.Profile, out: Path, marker: str) -> tuple[float, int]:
    """Throughput of one locust run of our user class (successes per second of its key step)
    and its failures (e.g. logins timing out when 100 users log in at once)."""
    settings = LoadSettings(users=users, spawn_rate=max(users, 1), run_time_s=seconds,
                            smtp_messages=messages, p95_ms=1e9, max_failure_ratio=1,
                            min_rps=0, origins={})
    run = run_locust(SCENARIOS[scenario], settings, profile_argument(profile),
                     out / f"{scenario}-w{workers}", marker, workers=workers)
    if not run.file(".json").is_file():
        raise RuntimeError(f"locust wrote no statistics:\n{run.log_tail()}")
    summary = summarise(read_stats_json(run.file(".json")), SCENARIOS[scenario].key,
                        SCENARIOS[scenario].unit)
    return summary.throughput, summary.failures


def smtp_source(messages: int, sessions: int, profile: profiles.Profile, subject: str,
                size: int) -> float:
    """messages/s of smtp-source through stunnel (STARTTLS + AUTH) to the submission port."""
    section = profile.section("smtp.submission")
    sender, password = _account(profile, 0)
    recipient, _ = _account(profile, -1)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = Path(folder) / "stunnel.conf"
        config.touch(mode=0o600)        # holds the test mailbox password until deleted below
        config.write_text(
            "foreground = yes\npid =\ndebug = err\n[submission]\nclient = yes\n"
            f"accept = 127.0.0.1:{port}\nconnect = {section['host']}:{section['port']}\n"
            f"protocol = smtp\nprotocolAuthentication = plain\nprotocolUsername = {sender}\n"
            f"protocolPassword = {password}\nCAfile = {section.path('ca_file')}\n"
            f"verifyChain = yes\ncheckHost = {section['host']}\n")
        tunnel = subprocess.Popen(["stunnel", str(config)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        try:
            _wait_port(port)
            started = time.perf_counter()
            sent = subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(messages),
                                   "-l", str(size), "-S", subject, "-f", sender, "-t", recipient,
                                   f"127.0.0.1:{port}"], capture_output=True, text=True,
                                  timeout=600)
            elapsed = time.perf_counter() - started
        finally:
            tunnel.terminate()
            tunnel.wait(timeout=10)
    if sent.returncode != 0 or "error" in sent.stderr.lower():
        raise RuntimeError(f"smtp-source failed: {sent.stderr[-500:]}")
    return round(messages / elapsed, 2)


def wrk(connections: int, seconds: float, profile: profiles.Profile) -> float:
    """requests/s of wrk on GET /api/v1/mailboxes with a token from one login."""
    section = profile.section("api")
    email, password = _account(profile, 0)
    with httpx.Client(base_url=section["url"], verify=client_context(section.path("ca_file")),
                      timeout=10) as client:
        token = client.post("/api/v1/auth/login",
                            json={"email": email, "password": password}).json()["data"]["token"]
    out = subprocess.run(["wrk", "-t", str(min(connections, os.cpu_count() or 1)),
                          "-c", str(connections), "-d", f"{int(seconds)}s",
                          "-H", f"Authorization: Bearer {token}",
                          f"{section['url']}/api/v1/mailboxes"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk got errors, not comparable:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def delete_sent(profile: profiles.Profile, criteria: list[list[str]], expected: int) -> int:
    """Wait for the sent messages in the recipient's INBOX (bounded), then delete them."""
    section = profile.section("imap")
    recipient, password = _account(profile, -1)
    session = ImapSession(section["host"], section["port"], 10, "bench-cleanup")
    try:
        session.starttls(client_context(section.path("ca_file")))
        session.login(recipient, password)
        deadline = time.monotonic() + 60
        while True:
            found = sorted({uid for c in criteria for uid in session.find(c)})
            if len(found) >= expected or time.monotonic() > deadline:
                break
            time.sleep(1)
        if found:
            session.delete(found)
        return len(found)
    finally:
        session.close()


def _account(profile: profiles.Profile, index: int) -> tuple[str, str]:
    entry = profile.data["mailboxes"][index]
    return entry["address"], profile.lookup_env(entry["password_env"]) or ""


def _wait_port(port: int) -> None:
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("stunnel did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="lab")
    parser.add_argument("--messages", type=int, default=600, help="messages per SMTP run")
    parser.add_argument("--sessions", type=int, default=10, help="parallel SMTP sessions/users")
    parser.add_argument("--api-users", type=int, default=10, help="API users / wrk connections")
    parser.add_argument("--api-seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=1, help="repeat and keep the median")
    args = parser.parse_args()
    missing = [tool for tool in ("smtp-source", "stunnel", "wrk") if not shutil.which(tool)]
    if missing:
        parser.error(f"missing tools: {', '.join(missing)} (apt-get install postfix stunnel4 wrk)")
    lab_up()                                  # holds the lab lock; the lab without faults
    profile = profiles.load(args.env)
    marker = f"mssante-check-bench-{uuid.uuid4().hex[:8]}"
    out = Path(tempfile.mkdtemp(prefix="load-bench-"))
    results: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    sent = 0
    try:
        for _ in range(args.runs):
            results.setdefault("smtp-source", []).append(
                smtp_source(args.messages, args.sessions, profile, marker, 400))
            sent += args.messages
            for workers in (1, 2):
                rate, failed = ours("smtp", args.sessions, workers, 300, args.messages, profile,
                                    out, marker)
                results.setdefault(f"smtp ours w{workers}", []).append(rate)
                key = f"smtp ours w{workers}"
                failures[key] = failures.get(key, 0) + failed
                sent += args.messages
            results.setdefault("wrk", []).append(wrk(args.api_users, args.api_seconds, profile))
            for workers in (1, 2):
                rate, failed = ours("api", args.api_users, workers, args.api_seconds, 0, profile,
                                    out, marker)
                results.setdefault(f"api ours w{workers}", []).append(rate)
                failures[f"api ours w{workers}"] = failures.get(f"api ours w{workers}", 0) + failed
    finally:
        deleted = delete_sent(profile, [["HEADER", MARKER_HEADER, marker], ["SUBJECT", marker]],
                              sent)
        shutil.rmtree(out, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"\nload generators vs reference tools on {profile.name} ({os.cpu_count()} CPUs, "
          f"{args.runs} run(s), median; {deleted} of {sent} messages delivered and deleted)")
    print(f"{'':24}{'throughput':>14}{'ratio':>9}")
    ok = True
    for kind, reference, unit in (("smtp", "smtp-source", "msg/s"), ("api", "wrk", "req/s")):
        print(f"{reference + ' (reference)':24}{median[reference]:>10.1f} {unit}{'':>9}")
        for workers in (1, 2):
            ratio = median[f"{kind} ours w{workers}"] / median[reference]
            failed = failures[f"{kind} ours w{workers}"]
            print(f"{f'{kind} ours, {workers} worker(s)':24}"
                  f"{median[f'{kind} ours w{workers}']:>10.1f} {unit}{ratio:>8.2f}x"
                  + (f"   ({failed} failed requests)" if failed else ""))
            ok &= workers != 2 or ratio >= TARGET_RATIO
    print(f"target: >= {TARGET_RATIO}x the reference with 2 workers: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
