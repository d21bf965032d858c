"""Done when (issue 14): with distinctive secrets set and checks failing against accepting,
leaky fake servers, nothing a run writes — files under its reports folder (junit.xml,
report.html, results.json, summary.md, the evidence bundle, transcripts) and its terminal —
contains a secret, an 8-character fragment of one, or its base64 (AUTH PLAIN included) or
URL-encoded forms. Run plain (with --evidence), under xdist (``-n 2``: the controller writes
what workers produced) and with ``--showlocals`` and long tracebacks. No lab needed.
"""
from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.labctl import REPO
from tests.support.fake_servers import FakePlatform, accepting_platform

SUITES = ("suites/smoke", "suites/post_deploy", "suites/mail")
MAILBOXES = ("medecin.leak@leak.test", "secretariat.leak@leak.test")
# Distinctive values: long random-looking ones with base64- and URL-significant characters,
# and a short one of characters that ordinary output does not put together.
SECRETS = {
    "LEAK_MAILBOX1_PASSWORD": "Mb1+vK9/qT4&zX7#wR2%jL5",
    "LEAK_MAILBOX2_PASSWORD": "Q7#z",
    "LEAK_ADMIN_PASSWORD": "Adm!n-8fG3+pW6/sD1=hN4",
    "LEAK_DB_PASSWORD": "Pg-3kJ8&rT5+yU2/iO9",
    "LEAK_REDIS_PASSWORD": "Rd-7hG2#bN6%mC4+xZ1",
}
TOKEN = "tok3n-Zx9Wq2Lp7Rt4Vb8Nm6Kj1Hg5"        # what the fake API hands out at login
USERS = {"LEAK_MAILBOX1_PASSWORD": MAILBOXES[0], "LEAK_MAILBOX2_PASSWORD": MAILBOXES[1]}
# mode -> (pytest options, whether the fakes refuse every SMTP/IMAP login). With -l the logins
# are refused, so clients fail inside smtplib and imapclient, whose frames' locals hold the
# credentials (smtplib's '\0user\0password' and its base64) and servers' echoes of them.
MODES = {
    "plain": (("--evidence",), False),
    "xdist": (("-n", "2"), False),
    "showlocals": (("-l", "--tb=long"), True),
}
MUST_FAIL = {
    False: ("suites/post_deploy/test_api.py::test_login_refuses_wrong_password",
            "suites/mail/test_submission.py::test_wrong_password_refused",
            "suites/mail/test_end_to_end.py::test_message_with_attachment_arrives_intact",
            "suites/post_deploy/test_end_to_end.py::test_message_submitted_is_read_back"),
    True: ("suites/post_deploy/test_api.py::test_login_refuses_wrong_password",
           "suites/mail/test_submission.py::test_auth_after_tls",
           "suites/mail/test_imap.py::test_login_after_starttls",
           "suites/post_deploy/test_end_to_end.py::test_message_submitted_is_read_back"),
}


def forbidden(secret: str, user: str | None = None) -> set[str]:
    """What must never appear: the secret, its 8-character fragments, its URL-encoded forms,
    its base64 at the three alignments (the characters that depend on it alone, 4 or more)
    and, with the user, the base64 of the whole AUTH PLAIN string."""
    found = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    found |= {secret[i:i + 8] for i in range(len(secret) - 7)}
    raw = secret.encode()
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + raw).decode()
        stable = encoded[-(-8 * align // 6):8 * (align + len(raw)) // 6]
        if len(stable) >= 4:
            found.add(stable)
    found.add(base64.b64encode(raw).decode())
    if user:
        found.add(base64.b64encode(f"\0{user}\0{secret}".encode()).decode())
    return found


FORBIDDEN = {needle: name for name, value in SECRETS.items()
             for needle in forbidden(value, USERS.get(name))} | {
    needle: "token" for needle in forbidden(TOKEN)}


def profile_text(fake: FakePlatform) -> str:
    ca = fake.ca_file
    mailboxes = "".join(f'\n[[mailboxes]]\naddress = "{address}"\n'
                        f'password_env = "LEAK_MAILBOX{n}_PASSWORD"\n'
                        for n, address in enumerate(MAILBOXES, 1))
    return f"""
[environment]
name = "leak"
kind = "test"
domains = ["leak.test"]

[trust]
anchors = "{ca}"

[thresholds]
delivery_deadline_s = 1
http_timeout_s = 5
connect_timeout_s = 3

[api]
url = "{fake.api_url}"
health_path = "/health"
version_path = "/version"
ca_file = "{ca}"
admin_email = "admin@leak.test"
admin_password_env = "LEAK_ADMIN_PASSWORD"

[smtp.submission]
host = "127.0.0.1"
port = {fake.smtp_port}
tls = "starttls"
ca_file = "{ca}"

[imap]
host = "127.0.0.1"
port = {fake.imap_port}
tls = "starttls"
ca_file = "{ca}"
required_capabilities = ["IDLE", "UIDPLUS", "MOVE"]

[imaps]
host = "127.0.0.1"
port = {fake.imaps_port}
tls = "implicit"
ca_file = "{ca}"
{mailboxes}
[postgres]
host = "127.0.0.1"
port = {fake.closed_port}
dbname = "mssante"
user = "mssante"
password_env = "LEAK_DB_PASSWORD"

[redis]
host = "127.0.0.1"
port = {fake.closed_port}
password_env = "LEAK_REDIS_PASSWORD"
"""


@pytest.fixture(scope="module")
def leak_profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, Path]]:
    """refuse_logins -> a profile pointing at fakes that accept (False) or refuse logins."""
    with accepting_platform(TOKEN) as accepting, \
            accepting_platform(TOKEN, refuse_logins=True) as refusing:
        folder = tmp_path_factory.mktemp("leak")
        profiles = {}
        for refuse, fake in ((False, accepting), (True, refusing)):
            profiles[refuse] = folder / f"leak-{'refusing' if refuse else 'accepting'}.toml"
            profiles[refuse].write_text(profile_text(fake))
        yield profiles


def leaks_in(text: str) -> list[str]:
    """Which secret each forbidden string found in ``text`` belongs to (never the string)."""
    views = {text, html.unescape(text)}
    return sorted({f"{FORBIDDEN[needle]} ({len(needle)} chars)" for needle in FORBIDDEN
                   if any(needle in view for view in views)})


def strings_of(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_of(item)


@pytest.mark.parametrize("mode", MODES)
def test_no_secret_reaches_reports_or_terminal(leak_profiles: dict[bool, Path], tmp_path: Path,
                                               mode: str):
    options, refuse = MODES[mode]
    reports = tmp_path / "reports"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MSSANTE_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *SUITES, "--env", str(leak_profiles[refuse]),
         "--reports-dir", str(reports), "-p", "no:cacheprovider", "-rA", *options],
        cwd=REPO, capture_output=True, text=True, timeout=180, env={**environ, **SECRETS})
    elapsed = time.monotonic() - started
    runs = sorted((reports / "runs").glob("*"))
    assert runs and (runs[-1] / "results.json").exists(), (
        f"no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results = json.loads((runs[-1] / "results.json").read_text())
    outcomes = {r["nodeid"]: r["outcome"] for r in results["results"]}

    # The run really failed with credentials in play (not a vacuous pass of this test).
    failing = {n for n, o in outcomes.items() if o in ("failed", "error")}
    for expected in MUST_FAIL[refuse]:
        assert expected in failing, f"{mode}: {expected} did not fail: {outcomes.get(expected)}"
    assert "passed" in outcomes.values(), f"{mode}: the fakes answered nothing: {outcomes}"

    files = [p for p in reports.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"junit.xml", "report.html", "results.json", "summary.md"} <= names, names
    assert any("transcripts" in p.parts for p in files), "no transcripts written"
    if mode == "plain":
        assert {"evidence.html", "evidence.md", "manifest.sha256"} <= names, sorted(names)
    leaked = {}
    for path in files:
        text = path.read_text(errors="replace")
        if path.suffix == ".json":
            text += "\n".join(strings_of(json.loads(text)))
        found = leaks_in(text)
        if found:
            leaked[str(path.relative_to(reports))] = found
    for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        if leaks_in(text):
            leaked[stream] = leaks_in(text)
    assert not leaked, f"{mode}: secrets leaked: {leaked}"
    # The leaky fakes' echoes reached the reports, masked.
    everything = "\n".join(p.read_text(errors="replace") for p in files) + proc.stdout
    assert "[REDACTED]" in everything
    if mode == "showlocals":
        assert "Secret('********')" in proc.stdout
    print(f"{mode}: {elapsed:.1f} s, " + ", ".join(
        f"{o} {sum(1 for v in outcomes.values() if v == o)}" for o in sorted(set(outcomes.values()))))
