"""The seed's load tests (API virtual users, SMTP messages), plus IMAP, judged by thresholds.

Opt-in with ``--load``: each test runs one locust scenario (plugins/load.py) with the
profile's ``[load]`` settings and fails when the run breaks a threshold — p95 latency of any
step, failure ratio, minimum throughput of the unit of work. The SMTP test also proves that
every message the server accepted under load reached the mailbox, then deletes them all.
"""
from __future__ import annotations

import pytest

from plugins.outcomes import wait_until
from probes.imap import ImapSession
from probes.smtp import MARKER_HEADER
from probes.tlsctx import client_context

pytestmark = pytest.mark.load


@pytest.mark.service("api")
@pytest.mark.requirement("LOAD-API")
def test_api_under_load(load_run):
    result = load_run("api")
    assert not result.breaches, result.explain()


@pytest.mark.service("smtp-submission")
@pytest.mark.requirement("LOAD-SMTP")
def test_smtp_under_load(load_run, load_marker, target, env_profile, timeouts, mailboxes, record,
                         evidence_path):
    imap = target("imap")
    recipient, password = mailboxes[-1]       # the locust SMTP user sends to the last mailbox
    marked = ["HEADER", MARKER_HEADER, load_marker]
    deadline = env_profile.threshold("delivery_deadline_s")
    accepted = 0
    try:
        result = load_run("smtp", marker=load_marker)
        accepted = result.accepted("send")
    finally:                                  # whatever happened, delete what the run sent
        reader = ImapSession(imap["host"], imap["port"], timeouts["connect"], "load-cleanup")
        try:
            reader.starttls(client_context(imap.path("ca_file")))
            reader.login(recipient, password)
            if accepted:
                waited = wait_until(lambda: len(reader.find(marked)) >= accepted,
                                    timeout=deadline, interval=1)
                record.measure("smtp delivery of the last message", round(waited.elapsed_s, 2), "s")
            delivered = reader.find(marked)
            if delivered:
                reader.delete(delivered)
        finally:
            reader.close()
            reader.transcript.save(evidence_path / "transcripts")
            record.evidence(f"transcripts/{reader.transcript.name}.txt")
    record.measure("smtp messages accepted / delivered", f"{accepted} / {len(delivered)}")
    assert not result.breaches, result.explain()
    assert len(delivered) >= accepted, (
        f"{accepted - len(delivered)} of {accepted} messages accepted under load were not "
        f"delivered within {deadline}s")


@pytest.mark.service("imap")
@pytest.mark.requirement("LOAD-IMAP")
def test_imap_under_load(load_run):
    result = load_run("imap")
    assert not result.breaches, result.explain()
