"""End to end: a message submitted with AUTH is read back over IMAP within the deadline.

It proves the whole chain (submission, SASL, queue, LMTP delivery, IMAP) rather than ports.
It writes (sends one message to a test mailbox declared in the profile, then deletes it), so
it only runs where the profile declares test mailboxes.
"""
from __future__ import annotations

import uuid
from email.message import EmailMessage

import pytest

from plugins.outcomes import wait_until
from probes import smtp
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
    message["X-MSSante-Check"] = marker
    message.set_content("Message de test automatique mssante-check. À supprimer.\n")

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

    reader = ImapSession(imap["host"], imap["port"], timeouts["connect"], "e2e-imap")
    try:
        reader.starttls(client_context(imap.path("ca_file")))
        reader.login(recipient, recipient_password)

        def arrived() -> list[int]:
            reader.client.select_folder("INBOX")
            return reader.client.search(["HEADER", "X-MSSante-Check", marker])

        deadline = env_profile.threshold("delivery_deadline_s")
        waited = wait_until(arrived, timeout=deadline, interval=0.5)
        record.measure("delivery_time", round(waited.elapsed_s, 2), "s")
        assert waited.ok, f"message not in {recipient}'s INBOX within {deadline}s: {waited.summary()}"
        reader.client.delete_messages(waited.value)
        reader.client.expunge()
    finally:
        reader.close()
        record.evidence(reader.transcript.save(evidence_path / "transcripts"))
