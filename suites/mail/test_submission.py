"""Submission (the "587" role): what a user's mail client meets before it may send.

STARTTLS is offered and AUTH only after it, so no password ever crosses in clear; credentials
are checked; an anonymous client cannot relay; SIZE is advertised within the profile's bounds
and enforced; DSN is offered (clients ask for delivery reports through it).
"""
from __future__ import annotations

import uuid

import pytest

from policy import refusal
from probes import smtp
from probes.errors import Blocked
from suites.mail.sessions import endpoint, outcome

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
def test_no_auth_before_tls(submission, open_smtp, mail_tls, record):
    """AUTH absent before STARTTLS means something only if it is offered after (the control,
    on the same session): a port without AUTH at all proves nothing about TLS."""
    session = open_smtp(submission, "plain-ehlo")
    before = smtp.ehlo_features(session)
    assert "auth" not in before, (
        f"AUTH offered before TLS (mechanisms:{before['auth']}): passwords could cross in clear")
    if "starttls" not in before:
        raise Blocked(endpoint(submission), "control (AUTH after STARTTLS)",
                      "cannot tell: STARTTLS is not offered, so AUTH is offered nowhere")
    after = smtp.starttls(session, mail_tls(submission))
    record.measure("auth_after_tls", after.get("auth", "(not offered)"))
    if "auth" not in after:
        raise Blocked(endpoint(submission), "control (AUTH after STARTTLS)",
                      "cannot tell: AUTH is not offered after STARTTLS either")


@pytest.mark.requirement("MSS-CLIENT-SUBMISSION")
def test_auth_after_tls(submission_auth, mailboxes, record):
    """The right password logs in after STARTTLS (the login check of this port)."""
    session, auth = submission_auth("auth", *mailboxes[0])
    record.measure("auth_mechanisms", session.esmtp_features.get("auth", "").split())
    assert auth.accepted, f"the test mailbox's right password is refused: {auth}"


@pytest.mark.fails_login
@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_wrong_password_refused(submission, submission_auth, judge_refusal, mailboxes):
    """535 for a wrong password, while the right one (the control, first) logs in."""
    user, password = mailboxes[0]
    _, control = submission_auth("right-password", user, password)
    _, attempt = submission_auth("wrong-password", user, f"wrong-{uuid.uuid4()}")
    judge_refusal(refusal.SMTP_PASSWORD, attempt, control, endpoint(submission))


@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_relay_without_auth_refused(submission, client_features, submission_auth,
                                    judge_refusal, mailboxes, vantage_note):
    """Without AUTH, mail to another domain is refused; the control sends the same envelope
    after AUTH (accepted through RCPT, then reset: nothing is sent)."""
    sender = mailboxes[0][0]
    session, control = submission_auth("relay-with-auth", *mailboxes[0])
    if control.accepted:
        control = outcome(smtp.attempt(session, None, sender, RELAY_PROBE))
    session, _ = client_features("relay-without-auth")
    attempt = outcome(smtp.attempt(session, None, sender, RELAY_PROBE))
    judge_refusal(refusal.AUTHENTICATED_RELAY, attempt, control, endpoint(submission),
                  vantage_note(submission))


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
def test_message_above_size_refused(submission, submit_session, judge_refusal, mailboxes):
    """RFC 1870: a MAIL declaring more than the advertised SIZE is refused (552) before any
    data is sent, so the check never uploads a large message; the control declares a size
    within the limit on the same session (then RSET)."""
    session, features = submit_session(mailboxes[0], "size-exceeded")
    limit = int(features.get("size") or 0)
    assert limit > 0, "SIZE is not advertised with a limit: nothing to exceed"
    sender = mailboxes[0][0]
    control = _mail_with_size(session, sender, min(limit, 1024))
    attempt = _mail_with_size(session, sender, limit + 1)
    judge_refusal(refusal.MESSAGE_SIZE, attempt, control, endpoint(submission))


def _mail_with_size(session: smtp.RecordingSMTP, sender: str, size: int) -> refusal.Outcome:
    """MAIL FROM declaring ``size``, then RSET: no message is ever sent."""
    code, reply = session.mail(sender, [f"SIZE={size}"])
    session.rset()
    text = reply.decode("utf-8", "replace")
    if code < 400:
        return refusal.Outcome("accepted", code, text)
    return refusal.Outcome("mail", code, text, final=code >= 500 or code == 421)


@pytest.mark.requirement("MSS-MSG-DSN")
def test_dsn_advertised(client_features):
    _, features = client_features("dsn")
    assert "dsn" in features, "DSN (RFC 3461) is not advertised: clients cannot ask for reports"
