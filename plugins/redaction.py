"""Secret redaction for every report and log the suite writes.

Values are registered when a profile secret is read or a token is obtained; anything that
leaves a test (failure text, captured output, transcripts, evidence) passes through
:func:`redact`. Patterns catch what was never registered (AUTH lines, Bearer tokens, passwords
in JSON) so a secret typed by hand in a test is still hidden.
"""
from __future__ import annotations

import logging
import re

MASK = "[REDACTED]"
_values: set[str] = set()
_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s'\"]+"),
    re.compile(r"(?i)(\"(?:password|token|secret)\"\s*:\s*\")[^\"]*"),
    re.compile(r"(?m)((?:^|C:\s*)AUTH\s+(?:PLAIN|LOGIN|XOAUTH2)\s+)\S+"),  # SMTP client
    re.compile(r"(?m)(^\s*(?:C:\s*)?[A-Za-z0-9.]+\s+LOGIN\s+\S+\s+)\S+"),  # IMAP "tag LOGIN u p"
    re.compile(r"(?i)((?:password|passwd|pwd)=)[^\s&;]+"),
)


def register(value: str | None) -> None:
    """Remember a secret value; short values are ignored to avoid masking ordinary words."""
    if value and len(value) >= 6:
        _values.add(value)


def known() -> frozenset[str]:
    return frozenset(_values)


def redact(text: str) -> str:
    """Mask every registered secret and every secret-shaped fragment."""
    if not text:
        return text
    for value in sorted(_values, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter: records are rendered, redacted and frozen before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
