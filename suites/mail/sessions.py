"""Small helpers the mail suite's fixtures and checks share: how a port is named in an
*error* message, and how a session's result reads to the refusal policy (policy/refusal.py)."""
from __future__ import annotations

import smtplib

from plugins.profile import Section
from policy.refusal import Outcome
from probes import smtp


def endpoint(section: Section) -> str:
    """How a could-not-run message names a mail port: ``[imap] 127.0.0.1:1143``."""
    return f"[{section.name}] {section['host']}:{section['port']}"


def outcome(attempt: smtp.Attempt) -> Outcome:
    """An SMTP transaction's result as the refusal policy reads it."""
    return Outcome(attempt.stage, attempt.code, attempt.reply,
                   final=attempt.accepted or attempt.refused)


def smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    """The text of a refused SMTP step."""
    error = exc.smtp_error
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def imap_reply(exc: BaseException) -> str:
    """The server's text of a refused IMAP command (imapclient wraps it as ``b'...'``)."""
    text = str(exc)
    return text[2:-1] if text[:2] in ("b'", 'b"') else text
