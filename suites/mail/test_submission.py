"""Submission (the "587" role): what a user's mail client meets before it may send.

STARTTLS is offered and AUTH only after it, so no password ever crosses in clear; credentials
are checked; an anonymous client cannot relay; SIZE is advertised within the profile's bounds
and enforced; DSN is offered (clients ask for delivery reports through it).
"""
from __future__ import annotations

import smtplib
import uuid

import pytest

from probes import smtp

pytestmark = pytest.mark.service("smtp-submission")

RELAY_PROBE = "relay-probe@example.org"    # RFC 2606 domain: never the operator's own


@pytest.fixture
def submission(target):
    return target("smtp.submission")


@pytest.mark.requirement("MSS-CLIENT-SUBMISSION")
def test_starttls_offered(submission, open_smtp, mail_tls, record):
    session = open_smtp(submission, "starttls")
    features = smtp.ehlo_features(session)
    assert "starttls" in features, "submission port does not offer STARTTLS"
    smtp.starttls(session, mail_tls(submission))
    record.measure("tls_version", session.sock.version())


@pytest.mark.requirement("MSS-CLIENT-SUBMISSION")
def test_no_auth_before_tls(submission, open_smtp):
    session = open_smtp(submission, "plain-ehlo")
    features = smtp.ehlo_features(session)
    assert "auth" not in features, (
        f"AUTH offered before TLS (mechanisms:{features['auth']}): passwords could cross in clear")


@pytest.mark.requirement("MSS-CLIENT-SUBMISSION")
def test_auth_after_tls(submit_session, mailboxes, record):
    session, features = submit_session(mailboxes[0], "auth")
    assert "auth" in features, "AUTH not offered after STARTTLS"
    record.measure("auth_mechanisms", features["auth"].split())


@pytest.mark.fails_login
@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_wrong_password_refused(submission, open_smtp, mail_tls, mailboxes):
    session = open_smtp(submission, "wrong-password", patient=True)
    smtp.ehlo_features(session)
    features = smtp.starttls(session, mail_tls(submission))
    mechanisms = features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in mechanisms), None)
    assert mechanism, f"no PLAIN or LOGIN among the AUTH mechanisms offered: {mechanisms}"
    # One attempt with one mechanism (smtplib.login would retry with each mechanism).
    session.user, session.password = mailboxes[0][0], f"wrong-{uuid.uuid4()}"
    authobject = session.auth_plain if mechanism == "PLAIN" else session.auth_login
    try:
        code, reply = session.auth(mechanism, authobject)
    except smtplib.SMTPAuthenticationError as exc:
        assert exc.smtp_code == 535, f"wrong password refused with {exc.smtp_code}, not 535"
    else:
        pytest.fail(f"a wrong password was accepted: {code} {reply!r}")


@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_relay_without_auth_refused(client_features, mailboxes, record):
    session, _ = client_features("relay-without-auth")
    attempt = smtp.attempt(session, None, mailboxes[0][0], RELAY_PROBE)
    record.measure("relay_attempt", str(attempt))
    assert attempt.refused, f"sending to {RELAY_PROBE} without AUTH is not refused: {attempt}"


@pytest.mark.requirement("MSS-MSG-SIZE")
def test_size_advertised_within_bounds(submission, client_features, record):
    _, features = client_features("size")
    assert "size" in features, "SIZE is not advertised"
    limit = int(features["size"] or 0)
    assert limit > 0, "SIZE is advertised without a limit"
    record.measure("size_limit", limit, "bytes")
    low, high = submission.get("min_size"), submission.get("max_size")
    assert low is None or limit >= low, f"SIZE {limit} is below the profile's min_size {low}"
    assert high is None or limit <= high, f"SIZE {limit} is above the profile's max_size {high}"


@pytest.mark.requirement("MSS-MSG-SIZE")
def test_message_above_size_refused(submit_session, mailboxes, record):
    """RFC 1870: a MAIL declaring more than the advertised SIZE is refused (552) before any
    data is sent, so the check never uploads a large message."""
    session, features = submit_session(mailboxes[0], "size-exceeded")
    limit = int(features.get("size") or 0)
    assert limit > 0, "SIZE is not advertised with a limit: nothing to exceed"
    code, reply = session.mail(mailboxes[0][0], [f"SIZE={limit + 1}"])
    session.rset()
    record.measure("oversize_mail_reply", f"{code} {reply.decode('utf-8', 'replace')}")
    assert code == 552, f"MAIL with SIZE={limit + 1} answered {code} {reply!r}, not 552"


@pytest.mark.requirement("MSS-MSG-DSN")
def test_dsn_advertised(client_features):
    _, features = client_features("dsn")
    assert "dsn" in features, "DSN (RFC 3461) is not advertised: clients cannot ask for reports"
