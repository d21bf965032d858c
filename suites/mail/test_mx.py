"""Inter-operator MX (the "25" role): only whitelisted operators, over mutual TLS, for us only.

Each refusal check runs its positive control first (policy/refusal.py): the whitelisted peer's
own certificate and a sender of its domain, to the first test mailbox, which must get past the
stage where the attempt under test is stopped — else the check is *error* ("cannot tell": an
MX refusing every recipient refuses a peer without certificate too, for another reason). The
refusal must then be one the property explains: for a certificate, a TLS alert, a cut
connection, 421 or a 5xx at EHLO or MAIL, or a 5.7.x policy reply at RCPT — never "550 5.1.1
User unknown". A transaction accepted through DATA fails, and so does a 4xx "try again
later": a peer would retry, and a rule that only defers is not enforced. Messages go to the
profile's first test mailbox and are deleted if a broken server takes them. The peer's
certificates and domains are the profile's (``[smtp.mx]``).
"""
from __future__ import annotations

import pytest

from policy import refusal
from probes import testmail

pytestmark = pytest.mark.service("smtp-mx")


@pytest.fixture
def mx(target):
    return target("smtp.mx")


@pytest.mark.requirement("MSS-MX-TLS")
def test_mail_before_starttls_refused(mx_refusal, mailboxes, peer_sender):
    """Refused at EHLO or MAIL: a later refusal (RCPT) would still let a peer start a
    transaction in clear. The recipient is given, so no data is ever sent."""
    mx_refusal(refusal.MX_TLS_FIRST, "plain-mail", None, peer_sender, mailboxes[0][0],
               starttls=False)


@pytest.mark.requirement("MSS-MX-CLIENT-CERT")
def test_client_without_certificate_refused(mx_refusal, peer_sender):
    mx_refusal(refusal.CLIENT_CERTIFICATE, "no-client-cert", None, peer_sender)


@pytest.mark.requirement("MSS-MX-CLIENT-CERT")
def test_client_with_foreign_certificate_refused(mx_refusal, peer_sender):
    """A certificate outside the IGC Santé anchors."""
    mx_refusal(refusal.CLIENT_CERTIFICATE, "foreign-client-cert", "foreign", peer_sender)


@pytest.mark.requirement("MSS-WL-ENFORCED")
def test_sender_domain_off_whitelist_refused(mx, mx_refusal):
    """The whitelisted peer's own, valid certificate, but a sender domain not on the list."""
    mx_refusal(refusal.WHITELISTED_SENDER, "sender-off-whitelist", "peer",
               f"mssante-check@{mx['rogue_domain']}")


@pytest.mark.requirement("MSS-MX-NO-OPEN-RELAY")
def test_recipient_outside_own_domains_refused(mx, mx_refusal, peer_sender, vantage_note):
    """RCPT for another operator's domain: refused, or the MX is a relay (no data is sent)."""
    mx_refusal(refusal.OWN_RECIPIENT, "relay", "peer", peer_sender,
               f"relay-probe@{mx['peer_domain']}", note=vantage_note(mx))


@pytest.mark.requirement("MSS-MX-DELIVERY")
def test_whitelisted_peer_delivers(mx_attempt, outbox, mailboxes, peer_sender, record):
    attempt, marker = mx_attempt("peer-delivery", "peer", peer_sender)
    assert attempt.accepted, f"the MX refuses the whitelisted peer: {attempt}"
    waited, raw = outbox.collect(mailboxes[0], testmail.by_marker(marker))
    record.measure("delivery_time", round(waited.elapsed_s, 2), "s")
    assert raw is not None, (
        f"accepted from the peer but not in {mailboxes[0][0]}'s INBOX within "
        f"{outbox.deadline}s: {waited.summary()}")
