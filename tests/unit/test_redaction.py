"""Redaction masks registered secrets, their fragments and encoded forms, and secret-shaped
patterns, and nothing else; a Secret's repr never shows it."""
from __future__ import annotations

import base64
import html
import imaplib
import json
import logging
import re
import smtplib
import subprocess
import sys
import textwrap
import time
from urllib.parse import quote, quote_plus

import psycopg
import pytest

from probes import redaction
from probes.secret import Mailbox, Secret
from probes.tlsctx import client_context
from tests.labctl import REPO
from tests.support.fake_servers import accepting_platform

LONG = "Zq8+Hq4/rT8yL3vN&w#k"       # base64- and URL-significant characters on purpose
USER = "b@example.fr"


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets registered here ("E", "Q7#z") must not mask this test session's own output."""
    monkeypatch.setattr(redaction, "_registry", redaction._Registry())  # noqa: SLF001 - a fresh registry


def leaks(text: str, secret: str) -> list[str]:
    """Every 8-character fragment of ``secret`` (or the whole, if shorter) found in text."""
    size = min(8, len(secret))
    return [secret[i:i + size] for i in range(len(secret) - size + 1)
            if secret[i:i + size] in text]


def test_registered_value_is_masked():
    redaction.register("s3cr3t-value-xyz")
    assert redaction.redact("password is s3cr3t-value-xyz!") == "password is [REDACTED]!"


def test_fragments_of_a_secret_are_masked_wherever_a_repr_cut_it():
    redaction.register(LONG)
    for cut in (f"account=('b@examp...{LONG[6:]}')", f"'{LONG[:9]}...'", f"x{LONG[3:13]}y"):
        clean = redaction.redact(cut)
        assert not leaks(clean, LONG), clean
    assert redaction.redact(f"x{LONG[3:13]}y") == "x[REDACTED]y"


def test_short_secrets_are_masked_too():
    redaction.register("Q7#z")
    redaction.register("\u00a7")                     # a 1-character secret: '§'
    assert redaction.redact("a Q7#z b") == "a [REDACTED] b"
    assert redaction.redact("x\u00a7y") == "x[REDACTED]y"
    assert redaction.redact("Q7#") == "Q7#"            # part of a short secret is not it


def test_base64_forms_at_every_alignment_and_auth_plain():
    redaction.register(LONG, user=USER)
    raw = LONG.encode()
    texts = [base64.b64encode(prefix + raw + suffix).decode()
             for prefix in (b"", b"a", b"ab") for suffix in (b"", b"!", b"!!")]
    plain = base64.b64encode(f"\0{USER}\0{LONG}".encode()).decode()
    assert redaction.redact(f"C: AUTH PLAIN-ish {plain}") == "C: AUTH PLAIN-ish [REDACTED]"
    for text in texts:
        clean = redaction.redact(text)
        assert mostly_masked(clean), (text, clean)


def mostly_masked(clean: str) -> bool:
    """Masked but for what mixes the secret's bits with its neighbours' (at most 2 characters
    on each side) and the padding (at most 2 '=')."""
    return "[REDACTED]" in clean and len(clean.replace("[REDACTED]", "")) <= 4 + 2


def test_base64_of_a_short_secret_in_auth_plain():
    redaction.register("Q7#z", user="c@example.fr")
    plain = base64.b64encode(b"\0c@example.fr\0Q7#z").decode()
    assert redaction.redact(plain) == "[REDACTED]"
    login = base64.b64encode(b"Q7#z").decode()
    assert login not in redaction.redact(f"334 xx {login}")


def test_url_encoded_forms():
    redaction.register(LONG)
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(LONG, safe=""))
    for form in (quote(LONG, safe=""), quote(LONG), quote_plus(LONG), lower_hex):
        assert redaction.redact(f"GET /login?p={form} HTTP/1.1") == (
            "GET /login?p=[REDACTED] HTTP/1.1"), form


def test_escaped_forms_json_html_repr():
    secret = 'Aa"b\\c<d>&e\'f9x'
    redaction.register(secret)
    for form in (json.dumps(secret), html.escape(secret), repr(secret)):
        assert "[REDACTED]" in redaction.redact(form) and "c<d" not in redaction.redact(form)


def test_password_inside_a_url_is_masked_even_unregistered():
    clean = redaction.redact("url = https://alice:n0t-registered@api.example.fr/x, ssh://root@h")
    assert clean == "url = https://alice:[REDACTED]@api.example.fr/x, ssh://root@h"


def test_patterns_catch_unregistered_secrets():
    text = ('Authorization: Bearer eyJhbGciOi.abc.def\n{"password": "hunter2", "email": "a@b"}\n'
            "AUTH PLAIN AGFAYgBj\nA1 LOGIN user@x pass-word\npassword=abc123&x=1")
    clean = redaction.redact(text)
    for secret in ("eyJhbGciOi", "hunter2", "AGFAYgBj", "pass-word", "abc123"):
        assert secret not in clean
    assert '"email": "a@b"' in clean


def test_redaction_is_idempotent():
    redaction.register("E")                     # even a secret found inside the mask itself
    once = redaction.redact("HELLO E")
    assert redaction.redact(once) == once


def test_logging_filter_redacts_rendered_message_and_traceback(caplog):
    redaction.register("tok-1234567890")
    logger = logging.getLogger("mssante.test")
    logger.addFilter(redaction.RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("token %s", "tok-1234567890")
        try:
            raise ValueError("bad tok-1234567890")
        except ValueError:
            logger.exception("failed")
    assert "tok-1234567890" not in caplog.text and "[REDACTED]" in caplog.text


def test_ordinary_text_is_left_alone():
    text = "api_login = <function api_login.<locals>.login at 0x7f17eb7d6700>; auth ok"
    assert redaction.redact(text) == text


def test_server_auth_capability_line_is_kept():
    text = "  0.010 S: 250-AUTH PLAIN LOGIN\n  0.020 C: AUTH PLAIN AGFAYgBjZGVm"
    clean = redaction.redact(text)
    assert "250-AUTH PLAIN LOGIN" in clean and "AGFAYgBjZGVm" not in clean


def test_fast_enough_for_a_run():
    for n in range(10):
        redaction.register(f"perf-secret-{n}-{'x' * 20}", user=f"u{n}@example.fr")
    text = "E   AssertionError: something ordinary happened here\n" * 2000   # ~110 kB
    redaction.redact("warm up")
    started = time.perf_counter()
    redaction.redact(text)
    assert time.perf_counter() - started < 0.5


def test_profile_registers_every_secret_it_names_when_it_loads(tmp_path, monkeypatch):
    """Every process (an xdist controller too) masks what a profile names, read or not."""
    (tmp_path / "secrets.env").write_text("T_FILE_ONLY=file-only-value-1\nT_MB=mailbox-pw-1\n")
    path = tmp_path / "t.toml"
    path.write_text('[environment]\nname = "t"\nkind = "test"\nenv_file = "secrets.env"\n'
                    '[redis]\nhost = "127.0.0.1"\nport = 6379\npassword_env = "T_REDIS"\n'
                    '[[mailboxes]]\naddress = "a@t.fr"\npassword_env = "T_MB"\n')
    monkeypatch.setenv("T_REDIS", "redis-pw-1")
    from plugins import profile as profiles

    loaded = profiles.load(str(path))
    assert {"file-only-value-1", "mailbox-pw-1", "redis-pw-1"} <= redaction.known()
    plain = base64.b64encode(b"\0a@t.fr\0mailbox-pw-1").decode()
    assert redaction.redact(plain) == "[REDACTED]"
    assert "mailbox-pw-1" not in repr(loaded.mailboxes()) + repr(loaded)
    assert "redis-pw-1" not in repr(loaded.section("redis").secret("password"))


# --- Secret -------------------------------------------------------------------------------------
def test_secret_repr_is_masked_and_value_still_usable():
    secret = Secret("pw-" + LONG)
    box = Mailbox(USER, secret)
    assert repr(secret) == "Secret('********')" and LONG not in repr(box) and LONG not in f"{box!r}"
    assert str(secret) == f"{secret}" == "%s" % secret == "pw-" + LONG  # noqa: UP031 - libraries %-format it
    assert secret.encode() == ("pw-" + LONG).encode() and secret == "pw-" + LONG
    address, password = box
    assert (address, password) == box and box.password is secret
    assert "pw-" + LONG in redaction.known()


def test_secret_never_shown_by_pytest(tmp_path):
    """Assertion rewriting (a diff of two strings, a truncated tuple repr), tracebacks'
    arguments, --showlocals, parametrize ids and JUnit properties, in a real pytest run."""
    secret = "Sh0w-Me-Not-" + LONG
    (tmp_path / "test_show.py").write_text(textwrap.dedent(f"""
        import pytest
        from probes.secret import Mailbox, Secret
        SECRET = Secret({secret!r})

        def check(account):
            assert account == ("other@example.fr", "x" * 40)

        def test_compare():
            assert SECRET == "something-else"

        def test_tuple_truncated():
            check(Mailbox("b@example.fr" * 3, SECRET))

        def test_in_message():
            account = Mailbox("b@example.fr", SECRET)
            assert not account, f"cannot log in with {{account!r}}"

        @pytest.mark.parametrize("password", [SECRET])
        def test_param(password):
            assert password is None

        def test_property(record_property):
            record_property("token", SECRET)         # JUnit writes str(value)
            assert False
    """))
    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=long", "-l", "-vv",
             "-rA", *args, str(tmp_path / "test_show.py")],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    # The type alone, no redaction behind it: reprs never show the value.
    alone = run("-k", "tuple or message")
    assert "2 failed" in alone and "Secret('********')" in alone, alone[-3000:]
    assert not leaks(alone, secret), alone[-3000:]
    # With the plugin: no string diff of a Secret, no Secret as a parametrize id.
    full = run("-p", "plugins.redaction", f"--junitxml={tmp_path / 'junit.xml'}")
    assert "5 failed" in full and "password-secret" in full, full[-3000:]
    assert not leaks((tmp_path / "junit.xml").read_text(), secret)
    assert "(a secret is never shown or diffed)" in full
    assert not leaks(full, secret), full[-3000:]


def test_secret_is_sent_as_its_value_by_smtplib_imaplib_and_psycopg():
    """The clients build AUTH PLAIN with %s, quote LOGIN's password as text, write the
    conninfo string: all must see the value (the fakes echo what they received)."""
    secret = Secret("Cl1ent+Value/&#%-x")
    with accepting_platform("unused-token") as fake:
        context = client_context(fake.ca_file)
        with smtplib.SMTP("127.0.0.1", fake.smtp_port, timeout=10) as session:
            session.starttls(context=context)
            code, reply = session.login("a@t.fr", secret)
        assert code == 235 and f"password {str(secret)} " in reply.decode()
        imap = imaplib.IMAP4("127.0.0.1", fake.imap_port, timeout=10)
        imap.starttls(context)
        status, answer = imap.login("a@t.fr", secret)
        imap.logout()
        assert status == "OK" and f'"{str(secret)}"'.encode() in answer[0]
    assert f"password={str(secret)}" in psycopg.conninfo.make_conninfo(password=secret).replace("'", "")
