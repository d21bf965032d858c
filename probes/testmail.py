"""Test messages: marked so they can be found, and nothing else (they go to test mailboxes).

Every message the suites send carries a unique ``X-MSSante-Check`` marker header, so a test
finds exactly its own message in a mailbox (and deletes it) however busy the mailbox is.
"""
from __future__ import annotations

import uuid
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

MARKER_HEADER = "X-MSSante-Check"


def new_marker() -> str:
    return f"mssante-check-{uuid.uuid4()}"


def marked_message(sender: str, recipient: str, marker: str, purpose: str) -> EmailMessage:
    """A small text message carrying the marker; callers may add headers and attachments.

    The text part is quoted-printable so the message is 7-bit and no relay has a reason to
    re-encode it (the end-to-end test compares bytes).
    """
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = f"[mssante-check] {purpose} {marker}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message[MARKER_HEADER] = marker
    message.set_content(f"Message de test automatique mssante-check ({purpose}). A supprimer.\n",
                        cte="quoted-printable")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as sent over SMTP: CRLF line ends (smtplib sends bytes unchanged)."""
    return message.as_bytes(policy=policy.SMTP)


def by_marker(marker: str) -> list[str]:
    """IMAP SEARCH criteria finding the message that carries this marker."""
    return ["HEADER", MARKER_HEADER, marker]
