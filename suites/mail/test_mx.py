"""Inter-operator MX (the "25" role): only whitelisted operators, over mutual TLS, for us only.

Each refusal check judges behaviour, wherever the server chooses to refuse: a TLS alert, a cut
connection, 421, or a 5xx reply to EHLO, MAIL, RCPT or DATA all count. A transaction accepted
through DATA fails it, and so does a 4xx "try again later": a peer would retry, and a rule
that only defers is not enforced. Messages go to the profile's first test mailbox
and are deleted if a broken server takes them. The peer's certificates and domains are the
profile's (``[smtp.mx]``).
"""
from __future__ import annotations

import pytest

from probes import smtp, testmail

pytestmark = pytest.mark.service("smtp-mx")


@pytest.fixture
def mx(target):
    return target("smtp.mx")


@pytest.fixture
def peer_sender(mx) -> str:
    """An address of the whitelisted peer operator."""
    return f"mssante-check@{mx['peer_domain']}"


@pytest.mark.requirement("MSS-MX-TLS")
def test_mail_before_starttls_refused(mx, open_smtp, peer_sender, record):
    """Refused at MAIL at the latest: a later refusal (RCPT) would still let a peer start a
    transaction in clear. No data is ever sent."""
    session = open_smtp(mx, "plain-mail")
    attempt = smtp.attempt(session, None, peer_sender, f"postmaster@{mx['peer_domain']}")
    record.measure("mx_attempt", str(attempt))
    assert attempt.refused and attempt.stage in ("ehlo", "mail"), (
        f"the MX does not refuse MAIL without TLS: {attempt}")


@pytest.mark.requirement("MSS-MX-CLIENT-CERT")
def test_client_without_certificate_refused(mx_attempt, peer_sender, record):
    attempt, _ = mx_attempt("no-client-cert", None, peer_sender)
    record.measure("mx_attempt", str(attempt))
    assert attempt.refused, f"the MX does not refuse a peer without certificate: {attempt}"


@pytest.mark.requirement("MSS-MX-CLIENT-CERT")
def test_client_with_foreign_certificate_refused(mx_attempt, peer_sender, record):
    attempt, _ = mx_attempt("foreign-client-cert", "foreign", peer_sender)
    record.measure("mx_attempt", str(attempt))
    assert attempt.refused, (
        f"the MX does not refuse a peer whose certificate is outside the IGC Santé anchors: "
        f"{attempt}")


@pytest.mark.requirement("MSS-WL-ENFORCED")
def test_sender_domain_off_whitelist_refused(mx, mx_attempt, record):
    """The whitelisted peer's own, valid certificate, but a sender domain not on the list."""
    sender = f"mssante-check@{mx['rogue_domain']}"
    attempt, _ = mx_attempt("sender-off-whitelist", "peer", sender)
    record.measure("mx_attempt", str(attempt))
    assert attempt.refused, f"the MX does not refuse {sender} (not whitelisted): {attempt}"


@pytest.mark.requirement("MSS-MX-NO-OPEN-RELAY")
def test_recipient_outside_own_domains_refused(mx, mx_attempt, peer_sender, record):
    """RCPT for another operator's domain: refused, or the MX is a relay (no data is sent)."""
    recipient = f"relay-probe@{mx['peer_domain']}"
    attempt, _ = mx_attempt("relay", "peer", peer_sender, recipient)
    record.measure("mx_attempt", str(attempt))
    assert attempt.refused, f"the MX does not refuse a recipient outside its domains: {attempt}"


@pytest.mark.requirement("MSS-MX-DELIVERY")
def test_whitelisted_peer_delivers(mx_attempt, outbox, mailboxes, peer_sender, record):
    attempt, marker = mx_attempt("peer-delivery", "peer", peer_sender)
    assert attempt.accepted, f"the MX refuses the whitelisted peer: {attempt}"
    waited, raw = outbox.collect(mailboxes[0], testmail.by_marker(marker))
    record.measure("delivery_time", round(waited.elapsed_s, 2), "s")
    assert raw is not None, (
        f"accepted from the peer but not in {mailboxes[0][0]}'s INBOX within "
        f"{outbox.deadline}s: {waited.summary()}")
