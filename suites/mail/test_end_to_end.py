"""End to end: what a health professional sends arrives as sent, and reports come back.

One test mailbox submits (STARTTLS + AUTH) a message the way MSSanté client software does —
a CDA document in an IHE XDM zip with ``X-MSS-CODECDA`` (fixtures/messages/) — and another
reads it over IMAP within the profile's deadline: every header sent is there unchanged, the
body is the same bytes, the attachment has the same SHA-256. A success DSN asked for with
``NOTIFY=SUCCESS`` comes back to the sender. Every test message (and report) is deleted.
The mailboxes that must read something back are opened first: where one cannot be read,
nothing is sent (an *error*), and a message that cannot be deleted is named in a warning.
"""
from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from plugins.profile import NotConfigured
from probes import testmail

pytestmark = pytest.mark.service("smtp-submission", "imap")

XDM_ARCHIVE = Path(__file__).resolve().parents[2] / "fixtures" / "messages" / "IHE_XDM.zip"
CDA_NS = "{urn:hl7-org:v3}"
# RFC 3464 §2.3.3: the actions a success report may carry (Postfix says "relayed" when the
# final hop, e.g. its LMTP delivery agent, takes the report duty no further).
SUCCESS_ACTIONS = ("delivered", "relayed", "expanded")


@pytest.fixture
def pair(env_profile, mailboxes):
    """(sender, recipient) accounts: two distinct test mailboxes."""
    if len(mailboxes) < 2:
        raise NotConfigured(env_profile.name, "[[mailboxes]]: two test mailboxes")
    return mailboxes[0], mailboxes[1]


def cda_code(archive: bytes) -> str:
    """The ``code`` of the CDA document in the XDM archive: the X-MSS-CODECDA value."""
    with zipfile.ZipFile(io.BytesIO(archive)) as xdm:
        for name in xdm.namelist():
            if name.upper().startswith("IHE_XDM/") and name.upper().endswith(".XML"):
                root = ET.fromstring(xdm.read(name))
                if root.tag == f"{CDA_NS}ClinicalDocument":
                    code = root.find(f"{CDA_NS}code")
                    return code.attrib["code"]  # type: ignore[union-attr]  # CDA requires <code>
    raise ValueError("no CDA document in the XDM archive")


def named(message: EmailMessage) -> str:
    """How a report names a test message that might stay behind."""
    return f"Message-ID {message['Message-ID']}, Subject {message['Subject']!r}"


def body_of(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


@pytest.mark.requirement("MSS-MSG-INTACT", "MSS-MSG-HEADERS")
def test_message_with_attachment_arrives_intact(pair, submit_session, outbox, record):
    sender, recipient = pair
    archive = XDM_ARCHIVE.read_bytes()
    marker = testmail.new_marker()
    record.measure("test_message", marker)
    message = testmail.marked_message(sender[0], recipient[0], marker, "end-to-end")
    message["X-MSS-CODECDA"] = cda_code(archive)
    message.add_attachment(archive, maintype="application", subtype="zip",
                           filename=XDM_ARCHIVE.name)
    sent = testmail.wire_bytes(message)

    outbox.ready(recipient)
    session, _ = submit_session(sender, "submission")
    outbox.expect(recipient, testmail.by_marker(marker), named(message))
    refused = session.sendmail(sender[0], [recipient[0]], sent)
    assert not refused, f"recipient refused: {refused}"
    waited, received = outbox.collect(recipient, testmail.by_marker(marker))
    record.measure("delivery_time", round(waited.elapsed_s, 2), "s")
    assert received is not None, (f"not in {recipient[0]}'s INBOX within {outbox.deadline}s: "
                                  f"{waited.summary()}")

    original = message_from_bytes(sent, policy=policy.compat32)
    arrived = message_from_bytes(received, policy=policy.compat32)
    changed = [name for name in dict.fromkeys(k.lower() for k in original)
               if original.get_all(name) != arrived.get_all(name)]
    assert not changed, "headers not carried unchanged: " + "; ".join(
        f"{n}: sent {original.get_all(n)!r}, got {arrived.get_all(n)!r}" for n in changed)
    attachments = [part.get_payload(decode=True) for part in arrived.walk()
                   if part.get_filename() == XDM_ARCHIVE.name]
    digest = hashlib.sha256(archive).hexdigest()
    record.measure("attachment_sha256", digest)
    assert [hashlib.sha256(a).hexdigest() for a in attachments] == [digest], (
        f"{XDM_ARCHIVE.name} did not arrive once with SHA-256 {digest}")
    assert body_of(received) == body_of(sent), (
        f"body changed in transit ({len(body_of(sent))} bytes sent, "
        f"{len(body_of(received))} received)")


@pytest.mark.requirement("MSS-MSG-DSN")
def test_success_dsn_returned(pair, submit_session, outbox, record):
    sender, recipient = pair
    marker = testmail.new_marker()
    record.measure("test_message", marker)
    message = testmail.marked_message(sender[0], recipient[0], marker, "DSN")
    outbox.ready(recipient)
    outbox.ready(sender)
    session, _ = submit_session(sender, "submission")
    outbox.expect(recipient, testmail.by_marker(marker), named(message))
    outbox.expect(sender, ["TEXT", marker], f"the delivery report for {named(message)}")
    refused = session.sendmail(sender[0], [recipient[0]], testmail.wire_bytes(message),
                               mail_options=[f"ENVID={marker}", "RET=HDRS"],
                               rcpt_options=["NOTIFY=SUCCESS"])
    assert not refused, f"recipient refused: {refused}"

    waited, raw = outbox.collect(sender, ["TEXT", marker])
    record.measure("dsn_time", round(waited.elapsed_s, 2), "s")
    assert raw is not None, (f"no delivery report in {sender[0]}'s INBOX within "
                             f"{outbox.deadline}s: {waited.summary()}")
    outbox.collect(recipient, testmail.by_marker(marker))
    report = message_from_bytes(raw, policy=policy.default)
    assert report.get_content_type() == "multipart/report" and \
        report.get_param("report-type") == "delivery-status", (
            f"the report is {report.get_content_type()}, not a multipart/report DSN")
    fields = [part.get_payload() for part in report.walk()
              if part.get_content_type() == "message/delivery-status"]
    assert fields, "the report has no message/delivery-status part"
    per_message, *per_recipient = fields[0]
    assert per_message.get("Original-Envelope-Id", "").strip() == marker, (
        f"report for envelope {per_message.get('Original-Envelope-Id')!r}, not {marker!r}")
    actions = [(r.get("Action", "").strip().lower(), r.get("Status", "").strip())
               for r in per_recipient]
    record.measure("dsn_actions", actions)
    assert actions and all(a in SUCCESS_ACTIONS and s.startswith("2.") for a, s in actions), (
        f"the report is not a success report (delivered/relayed/expanded, 2.x.x): {actions}")
