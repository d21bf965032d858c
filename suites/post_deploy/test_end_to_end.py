"""End to end: a message submitted with AUTH is read back over IMAP within the deadline.

It proves the whole chain (submission, SASL, queue, LMTP delivery, IMAP) rather than ports.
It writes (sends one message to a test mailbox declared in the profile, then deletes it), so
it only runs where the profile declares test mailboxes. The receiving mailbox is opened first
(STARTTLS, LOGIN, SELECT INBOX): where it cannot be read, nothing is sent — the check is an
*error* ("blocked: IMAP login ... failed") — since a message sent there could not be deleted
either. A message that was sent but could not be deleted is named in a warning.
"""
from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from plugins.outcomes import wait_until
from probes import smtp
from probes.errors import Blocked
from probes.imap import ImapSession
from probes.tlsctx import client_context


@pytest.mark.service("smtp-submission", "imap")
@pytest.mark.requirement("SEED-MANUAL-MAIL")
def test_message_submitted_is_read_back(target, env_profile, timeouts, mailboxes,
                                        evidence_path, record):
    submission, imap = target("smtp.submission"), target("imap")
    sender, sender_password = mailboxes[0]
    recipient, recipient_password = mailboxes[-1]
    marker = f"mssante-check-{uuid.uuid4()}"
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"[mssante-check] post-deploy {marker}"
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["X-MSSante-Check"] = marker
    message.set_content("Message de test automatique mssante-check. À supprimer.\n")
    where = f"{imap['host']}:{imap['port']}"
    named = (f"Message-ID {message['Message-ID']}, Subject {message['Subject']!r}, "
             f"mailbox {recipient} (INBOX)")

    reader = ImapSession(imap["host"], imap["port"], timeouts["connect"], "e2e-imap")
    try:
        reader.starttls(client_context(imap.path("ca_file")))
        try:
            reader.login(recipient, recipient_password)
        except LoginError as exc:
            raise Blocked(where, "IMAP login", f"{recipient}: {_reply(exc)}") from exc
        try:
            reader.select("INBOX")
        except IMAPClientError as exc:
            raise Blocked(where, "IMAP SELECT INBOX", f"{recipient}: {_reply(exc)}") from exc

        session = smtp.connect(submission["host"], submission["port"], timeouts["connect"],
                               "e2e-submission")
        try:
            smtp.ehlo_features(session)
            smtp.starttls(session, client_context(submission.path("ca_file")))
            session.login(sender, sender_password)
            refused = session.send_message(message)
            assert not refused, f"recipients refused: {refused}"
        finally:
            smtp.close(session)
            record.evidence(session.transcript.save(evidence_path / "transcripts"))
        record.measure("test_message", named)

        def arrived() -> list[int]:
            reader.client.select_folder("INBOX")
            return reader.client.search(["HEADER", "X-MSSante-Check", marker])

        deadline = env_profile.threshold("delivery_deadline_s")
        waited = wait_until(arrived, timeout=deadline, interval=0.5)
        record.measure("delivery_time", round(waited.elapsed_s, 2), "s")
        if not waited.ok:
            record.measure("undeleted_test_message", named)
        assert waited.ok, (f"message not in {recipient}'s INBOX within {deadline}s: "
                           f"{waited.summary()}; test message left undeleted: {named}")
        try:
            reader.delete(waited.value)
        except Exception as exc:  # noqa: BLE001 - delivery is proven; the leftover is named
            record.measure("undeleted_test_message", named)
            record.warn(f"test message not deleted: {named}: {type(exc).__name__}: {exc}")
    finally:
        reader.close()
        record.evidence(reader.transcript.save(evidence_path / "transcripts"))


def _reply(exc: BaseException) -> str:
    """The server's text of a refused IMAP command (imapclient wraps it as ``b'...'``)."""
    text = str(exc)
    return text[2:-1] if text[:2] in ("b'", 'b"') else text
