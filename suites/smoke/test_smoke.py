"""Smoke: each service speaks its protocol within seconds (the seed's smoke tests, for real).

Not a port probe: the API must answer JSON with an accepted status (the profile's API
contract, policy/api_contract.py), SMTP must greet and complete a STARTTLS handshake,
IMAP must list capabilities and complete STARTTLS, PostgreSQL must run a query, Redis must
answer PING after authenticating.
"""
from __future__ import annotations

import pytest

from probes import postgres, smtp
from probes import redis as redis_probe
from probes.imap import ImapSession
from probes.tlsctx import client_context

pytestmark = pytest.mark.requirement("SEED-SMOKE")


@pytest.mark.service("api")
def test_api_health_answers_json(api, api_contract, record):
    """The health path of the profile's API contract answers JSON whose status (at the
    contract's pointer) is an accepted value; dependencies are post-deployment test 1's."""
    path = api_contract.health_path
    response = api.get(path)
    assert response.headers.get("content-type", "").startswith("application/json"), (
        f"{path} answered {response.status_code} with {response.headers.get('content-type')}")
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{path} answered {response.status_code}: not JSON") from None
    health = api_contract.judge_health(body, need_checks=False)
    record.measure("api_health_status", repr(health.status))
    assert health.healthy, "; ".join(health.problems)


@pytest.mark.service("smtp-submission")
def test_smtp_banner_ehlo_starttls(target, timeouts, evidence_path, record):
    section = target("smtp.submission")
    session = smtp.connect(section["host"], section["port"], timeouts["connect"],
                           "smoke-smtp-submission")
    try:
        features = smtp.ehlo_features(session)
        assert "starttls" in features, "submission port does not offer STARTTLS"
        smtp.starttls(session, client_context(section.path("ca_file")))
    finally:
        smtp.close(session)
        record.evidence(session.transcript.save(evidence_path / "transcripts"))


@pytest.mark.service("imap")
def test_imap_capability_starttls(target, timeouts):
    section = target("imap")
    session = ImapSession(section["host"], section["port"], timeouts["connect"], "smoke-imap")
    try:
        assert "STARTTLS" in session.capabilities(), "IMAP does not offer STARTTLS"
        session.starttls(client_context(section.path("ca_file")))
    finally:
        session.close()


@pytest.mark.service("postgres")
def test_postgres_select_1(target, timeouts):
    assert postgres.fetch(target("postgres"), timeouts["connect"], "SELECT 1") == [(1,)]


@pytest.mark.service("redis")
def test_redis_ping_with_auth(target, timeouts):
    with redis_probe.client_for(target("redis"), timeouts["connect"]) as client:
        assert redis_probe.ping(client, timeouts["connect"]) is True
