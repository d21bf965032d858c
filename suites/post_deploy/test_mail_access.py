"""Post-deployment tests 4 and 5: SMTP submission and IMAP behave, not merely listen.

SMTP: STARTTLS offered, AUTH not offered before TLS, offered after. IMAP: LOGINDISABLED
before TLS, login after STARTTLS with a test mailbox.
"""
from __future__ import annotations

import pytest

from probes import smtp
from probes.imap import ImapSession
from probes.tlsctx import client_context


@pytest.mark.service("smtp-submission")
@pytest.mark.requirement("SEED-POST-4")
def test_submission_starttls_and_no_auth_before_tls(target, timeouts, evidence_path, record):
    section = target("smtp.submission")
    session = smtp.connect(section["host"], section["port"], timeouts["connect"],
                           "post-deploy-smtp-submission")
    try:
        before = smtp.ehlo_features(session)
        assert "starttls" in before, "submission port does not offer STARTTLS"
        assert "auth" not in before, f"AUTH offered before TLS: {before['auth']}"
        after = smtp.starttls(session, client_context(section.path("ca_file")))
        assert "auth" in after, "AUTH not offered after STARTTLS"
        record.measure("smtp_auth_mechanisms_after_tls", after["auth"])
    finally:
        smtp.close(session)
        record.evidence(session.transcript.save(evidence_path / "transcripts"))


@pytest.mark.service("imap")
@pytest.mark.requirement("SEED-POST-5")
def test_imap_logindisabled_then_login(target, timeouts, mailboxes, evidence_path, vantage_note,
                                       record):
    section = target("imap")
    address, password = mailboxes[0]
    session = ImapSession(section["host"], section["port"], timeouts["connect"],
                          "post-deploy-imap")
    try:
        before = session.capabilities()
        assert "STARTTLS" in before, "IMAP does not offer STARTTLS"
        assert "LOGINDISABLED" in before, (
            "IMAP allows LOGIN before TLS (no LOGINDISABLED)" + vantage_note(section))
        session.starttls(client_context(section.path("ca_file")))
        session.login(address, password)
    finally:
        session.close()
        record.evidence(session.transcript.save(evidence_path / "transcripts"))
