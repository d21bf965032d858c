"""IMAP access: STARTTLS with LOGINDISABLED before it, implicit TLS, credentials checked, a
usable INBOX, IDLE and the capabilities the profile requires.
"""
from __future__ import annotations

import uuid

import pytest

from policy import refusal
from probes.errors import Blocked
from suites.mail.sessions import endpoint

pytestmark = pytest.mark.service("imap")


@pytest.fixture
def imap(target):
    return target("imap")


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_starttls_and_logindisabled_before_tls(imap, open_imap, mail_tls, vantage_note, record):
    """LOGINDISABLED before TLS means something only if it is lifted after STARTTLS (the
    control, on the same session): a server that never allows LOGIN proves nothing about TLS."""
    session = open_imap(imap, "plain")
    before = session.capabilities()
    assert "STARTTLS" in before, "IMAP does not offer STARTTLS"
    assert "LOGINDISABLED" in before, (
        "IMAP does not announce LOGINDISABLED before TLS: passwords may cross in clear"
        + vantage_note(imap))
    session.starttls(mail_tls(imap))
    after = session.capabilities()
    record.measure("capabilities_after_tls", sorted(after))
    if "LOGINDISABLED" in after:
        raise Blocked(endpoint(imap), "control (LOGIN after STARTTLS)",
                      "cannot tell: LOGINDISABLED is still announced after STARTTLS")


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_login_after_starttls(imap_login, mailboxes):
    """The right password logs in after STARTTLS (the login check of this port)."""
    login = imap_login("login", *mailboxes[0])
    assert login.accepted, f"the test mailbox's right password is refused: {login}"


@pytest.mark.fails_login
@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_wrong_credentials_refused(imap, imap_login, judge_refusal, mailboxes):
    """NO [AUTHENTICATIONFAILED] for a wrong password, while the right one (the control,
    first) logs in."""
    user, password = mailboxes[0]
    control = imap_login("right-password", user, password)
    attempt = imap_login("wrong-password", user, f"wrong-{uuid.uuid4()}")
    judge_refusal(refusal.IMAP_PASSWORD, attempt, control, endpoint(imap))


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_implicit_tls_login(target, open_imap, mailboxes, record):
    section = target("imaps")
    session = open_imap(section, "implicit-tls", implicit_tls=True, patient=True)
    record.measure("tls_version", session.client._imap.sock.version())  # noqa: SLF001 - imapclient has no accessor
    session.login(*mailboxes[0])


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_inbox_selectable(mailbox, mailboxes, record):
    session = mailbox(mailboxes[0], "inbox")
    selected = session.select("INBOX", readonly=True)
    assert b"EXISTS" in selected, f"SELECT INBOX gave no EXISTS count: {selected}"
    record.measure("inbox_messages", selected[b"EXISTS"])


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_idle_works(mailbox, mailboxes):
    """IDLE (how clients learn of new mail) announced, entered (the server's continuation)
    and left cleanly (tagged OK)."""
    session = mailbox(mailboxes[0], "idle")
    assert "IDLE" in session.capabilities(), "IDLE is not announced after login"
    session.select("INBOX", readonly=True)
    session.idle(wait=0.2)


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_required_capabilities(imap, mailbox, mailboxes, record):
    required = {c.upper() for c in imap["required_capabilities"]}
    session = mailbox(mailboxes[0], "capabilities")
    announced = session.capabilities()
    record.measure("imap_capabilities", sorted(announced))
    missing = sorted(required - announced)
    assert not missing, f"capabilities missing after login: {', '.join(missing)}"
