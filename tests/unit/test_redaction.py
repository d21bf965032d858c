"""Redaction masks registered secrets and secret-shaped fragments, and nothing else."""
from __future__ import annotations

import logging

from plugins import redaction


def test_registered_value_is_masked():
    redaction.register("s3cr3t-value-xyz")
    assert redaction.redact("password is s3cr3t-value-xyz!") == "password is [REDACTED]!"


def test_short_values_are_not_registered():
    redaction.register("abc")
    assert redaction.redact("abc abc") == "abc abc"


def test_patterns_catch_unregistered_secrets():
    text = ('Authorization: Bearer eyJhbGciOi.abc.def\n{"password": "hunter2", "email": "a@b"}\n'
            "AUTH PLAIN AGFAYgBj\nA1 LOGIN user@x pass-word\npassword=abc123&x=1")
    clean = redaction.redact(text)
    for secret in ("eyJhbGciOi", "hunter2", "AGFAYgBj", "pass-word", "abc123"):
        assert secret not in clean
    assert '"email": "a@b"' in clean


def test_logging_filter_redacts_rendered_message(caplog):
    redaction.register("tok-1234567890")
    logger = logging.getLogger("mssante.test")
    logger.addFilter(redaction.RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("token %s", "tok-1234567890")
    assert "tok-1234567890" not in caplog.text and "[REDACTED]" in caplog.text


def test_ordinary_text_is_left_alone():
    text = "api_login = <function api_login.<locals>.login at 0x7f17eb7d6700>; auth ok"
    assert redaction.redact(text) == text


def test_server_auth_capability_line_is_kept():
    text = "  0.010 S: 250-AUTH PLAIN LOGIN\n  0.020 C: AUTH PLAIN AGFAYgBjZGVm"
    clean = redaction.redact(text)
    assert "250-AUTH PLAIN LOGIN" in clean and "AGFAYgBjZGVm" not in clean
