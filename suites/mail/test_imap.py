"""IMAP access: STARTTLS with LOGINDISABLED before it, implicit TLS, credentials checked, a
usable INBOX, IDLE and the capabilities the profile requires.
"""
from __future__ import annotations

import uuid

import pytest
from imapclient.exceptions import LoginError

pytestmark = pytest.mark.service("imap")


@pytest.fixture
def imap(target):
    return target("imap")


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_starttls_and_logindisabled_before_tls(imap, open_imap, mail_tls):
    session = open_imap(imap, "plain")
    before = session.capabilities()
    assert "STARTTLS" in before, "IMAP does not offer STARTTLS"
    assert "LOGINDISABLED" in before, (
        "IMAP does not announce LOGINDISABLED before TLS: passwords may cross in clear")
    session.starttls(mail_tls(imap))


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_login_after_starttls(mailbox, mailboxes):
    mailbox(mailboxes[0], "login")


@pytest.mark.fails_login
@pytest.mark.requirement("MSS-CLIENT-AUTH")
def test_wrong_credentials_refused(imap, open_imap, mail_tls, mailboxes):
    session = open_imap(imap, "wrong-password", patient=True)
    session.starttls(mail_tls(imap))
    with pytest.raises(LoginError):
        session.login(mailboxes[0][0], f"wrong-{uuid.uuid4()}")


@pytest.mark.requirement("MSS-CLIENT-IMAP")
def test_implicit_tls_login(target, open_imap, mailboxes, record):
    section = target("imaps")
    session = open_imap(section, "implicit-tls", implicit_tls=True, patient=True)
    record.measure("tls_version", session.client._imap.sock.version())  # noqa: SLF001
    session.login(*mailboxes[0])


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_inbox_selectable(mailbox, mailboxes, record):
    session = mailbox(mailboxes[0], "inbox")
    selected = session.client.select_folder("INBOX", readonly=True)
    assert b"EXISTS" in selected, f"SELECT INBOX gave no EXISTS count: {selected}"
    record.measure("inbox_messages", selected[b"EXISTS"])


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_idle_works(mailbox, mailboxes):
    """IDLE (how clients learn of new mail) announced, entered (the server's continuation)
    and left cleanly (tagged OK)."""
    session = mailbox(mailboxes[0], "idle")
    assert "IDLE" in session.capabilities(), "IDLE is not announced after login"
    session.client.select_folder("INBOX", readonly=True)
    session.client.idle()
    session.client.idle_check(timeout=0.2)
    session.client.idle_done()


@pytest.mark.requirement("MSS-CLIENT-CAPS")
def test_required_capabilities(imap, mailbox, mailboxes, record):
    required = {c.upper() for c in imap["required_capabilities"]}
    session = mailbox(mailboxes[0], "capabilities")
    announced = session.capabilities()
    record.measure("imap_capabilities", sorted(announced))
    missing = sorted(required - announced)
    assert not missing, f"capabilities missing after login: {', '.join(missing)}"
