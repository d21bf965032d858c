"""suites/mail against the real lab: green when good, with clean transcripts and its test
messages deleted. What each lab fault makes it fail is the detection matrix's contract
(tests/detection/expected.toml).

Checks no lab fault can break are proven on broken input here: a copy of the lab profile
with one value changed (SIZE bounds, required capabilities, the implicit-TLS port, a whitelist
copy that is malformed, lacks the own domain or names another DN), and a permissive SMTP
server (aiosmtpd: any password, relays, no SIZE, no DSN) standing in for submission.
"""
from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from lab import identity, pki
from plugins import profile as profiles
from probes import testmail, whitelist
from probes.imap import ImapSession
from probes.tlsctx import client_context
from probes.whitelist import domain_key
from probes.whitelist_fetch import read_whitelist
from tests.labctl import REPO, SuiteRun, lab_secrets, run_suite

SUITE = "suites/mail"
SUB = "suites/mail/test_submission.py::"
MX = "suites/mail/test_mx.py::"
WL = "suites/mail/test_whitelist.py::"
IMAP = "suites/mail/test_imap.py::"
E2E = "suites/mail/test_end_to_end.py::"

LAB_PROFILE = profiles.ENV_DIR / "lab.toml"
LAB_WHITELIST = 'whitelist = "../../.lab/postfix/listeblanchemssante.xml"'


def explain(run: SuiteRun, expected: set[str]) -> str:
    failing = run.failing()
    return (f"should fail but did not: {sorted(expected - failing)}\n"
            f"failed but should not: {sorted(failing - expected)}\n{run.messages()}")


def assert_messages_deleted(run: SuiteRun) -> None:
    """No test message the run sent is left in a test mailbox."""
    markers = [m["value"] for r in run.results["results"] for m in r["measured"]
               if m["name"] == "test_message"]
    lab = profiles.load("lab")
    imap = lab.section("imap")
    for address, password in lab.mailboxes():
        session = ImapSession(imap["host"], imap["port"], 5, "check-clean-up", read_timeout=20)
        try:
            session.starttls(client_context(imap.path("ca_file")))
            session.login(address, password)
            left = [m for m in markers if session.find(testmail.by_marker(m))]
        finally:
            session.close()
        assert not left, f"test messages left in {address}: {left}"


def assert_transcripts_clean(run: SuiteRun) -> list[Path]:
    """Transcripts were written, and none holds a lab secret."""
    secrets = lab_secrets()
    folder = run.reports_dir.parent.parent / "evidence" / run.results["metadata"]["run_id"]
    transcripts = sorted((folder / "transcripts").glob("mail-*.txt"))
    assert transcripts, f"no mail transcripts under {folder}"
    for path in transcripts:
        text = path.read_text()
        leaked = [s[:3] + "…" for s in secrets if s in text]
        assert not leaked, f"{path.name} holds secrets {leaked}"
    return transcripts


def test_good_lab_passes(good_lab, tmp_path):
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert set(run.outcomes().values()) == {"passed"}, run.messages()
    assert len(run.outcomes()) == 28, run.messages()
    transcripts = assert_transcripts_clean(run)
    by_name = {p.name: p.read_text() for p in transcripts}
    auth = by_name["mail-test_auth_after_tls-auth.txt"]
    assert "C: AUTH PLAIN [REDACTED]" in auth and "235" in auth
    login = by_name["mail-test_login_after_starttls-login.txt"]
    assert "LOGIN medecin.test@lab.mssante.fr [REDACTED]" in login and "OK Logged in" in login
    assert any(p.startswith("whitelist/") for r in run.results["results"] for p in r["evidence"])
    assert_messages_deleted(run)


# --- broken input ----------------------------------------------------------------------------
def profile_variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The lab profile with lines replaced, written to tmp_path (relative paths made absolute)."""
    text = LAB_PROFILE.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} is not one line of {LAB_PROFILE}"
        text = text.replace(old, new)
    text = text.replace('"../', f'"{LAB_PROFILE.parent}/../')
    path = tmp_path / "variant.toml"
    path.write_text(text)
    return path


def whitelist_copy(tmp_path: Path, change) -> str:  # change: Whitelist -> Whitelist | bytes
    """A profile line naming a changed copy of the lab MTA's whitelist."""
    current = whitelist.parse((REPO / ".lab/postfix/listeblanchemssante.xml").read_bytes())
    changed = change(current)
    path = tmp_path / "listeblanche.xml"
    if isinstance(changed, bytes):
        path.write_bytes(changed)
    else:
        path.write_text(whitelist.render(changed), encoding="utf-8")
    return f'whitelist = "{path}"'


def without_own_domain(listed: whitelist.Whitelist) -> whitelist.Whitelist:
    return dataclasses.replace(listed, entries=[e for e in listed.entries
                                                if e.name != identity.DOMAIN])


def with_other_own_dn(listed: whitelist.Whitelist) -> whitelist.Whitelist:
    """Same CN (the MTA still works), another organisation unit: not the served subject."""
    return dataclasses.replace(listed, entries=[
        dataclasses.replace(e, operator_dn=e.operator_dn.replace(identity.OPERATOR_OU,
                                                                 "LAB 99999999999999"))
        if e.name == identity.DOMAIN else e for e in listed.entries])


WL_READ = {WL + "test_whitelist_parses", WL + "test_own_domains_listed",
           WL + "test_own_dn_matches_served_certificate", WL + "test_whitelist_fresh"}

# case -> (tests to run, profile edits as a function of tmp_path, expected failing)
BROKEN_INPUT = {
    "size-above-bounds": (SUB + "test_size_advertised_within_bounds",
                          lambda tmp: [("max_size = 52428800", "max_size = 1048576")],
                          {SUB + "test_size_advertised_within_bounds"}),
    "capability-missing": (IMAP + "test_required_capabilities",
                           lambda tmp: [('required_capabilities = ["IDLE", "UIDPLUS", "MOVE"]',
                                         'required_capabilities = ["IDLE", "X-NOT-OFFERED"]')],
                           {IMAP + "test_required_capabilities"}),
    "imaps-not-tls": (IMAP + "test_implicit_tls_login",
                      lambda tmp: [("port = 10993\n", "port = 10143\n")],
                      {IMAP + "test_implicit_tls_login"}),
    "whitelist-malformed": ("suites/mail/test_whitelist.py",
                            lambda tmp: [(LAB_WHITELIST, whitelist_copy(
                                tmp, lambda wl: b"<ListeBlanche xmlns="))],
                            WL_READ),
    "whitelist-without-own-domain": ("suites/mail/test_whitelist.py",
                                     lambda tmp: [(LAB_WHITELIST, whitelist_copy(
                                         tmp, without_own_domain))],
                                     {WL + "test_own_domains_listed",
                                      WL + "test_own_dn_matches_served_certificate"}),
    "whitelist-other-dn": ("suites/mail/test_whitelist.py",
                           lambda tmp: [(LAB_WHITELIST, whitelist_copy(tmp, with_other_own_dn))],
                           {WL + "test_own_dn_matches_served_certificate"}),
}


@pytest.mark.parametrize("case", sorted(BROKEN_INPUT))
def test_broken_input_fails_exactly_its_checks(good_lab, tmp_path, case):
    tests, edits, expected = BROKEN_INPUT[case]
    profile = profile_variant(tmp_path, *edits(tmp_path))
    run = run_suite(tests, "--env", str(profile), tmp_path=tmp_path)
    assert run.failing() == expected, explain(run, expected)


@pytest.fixture
def https_whitelist() -> Iterator[str]:
    """The lab MTA's whitelist served over HTTPS with the lab's IGC-like server certificate."""
    document = (REPO / ".lab/postfix/listeblanchemssante.xml").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.path("server/good/chain.pem"), pki.path("server/good/key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}/listeblanchemssante.xml"
    server.shutdown()
    server.server_close()


def test_whitelist_read_over_https(good_lab, tmp_path, https_whitelist):
    profile = profile_variant(tmp_path, (LAB_WHITELIST, f'whitelist = "{https_whitelist}"'))
    run = run_suite("suites/mail/test_whitelist.py", "--env", str(profile), tmp_path=tmp_path)
    assert run.with_outcome("passed") == WL_READ | {
        WL + "test_peer_certificate_not_matching_domain_refused"}, run.messages()


def test_whitelist_over_plain_http_refused(tmp_path):
    with pytest.raises(ValueError, match="not HTTPS"):
        read_whitelist("http://localhost/listeblanchemssante.xml", tmp_path, None, 1)


# --- a permissive submission server ------------------------------------------------------------
class _Sink:
    """Takes every recipient and every message, and keeps nothing."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        return "250 2.0.0 taken"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def permissive_submission() -> Iterator[int]:
    """STARTTLS with the lab's certificate, AUTH after TLS only — then any password, any
    recipient, no SIZE, no DSN: the submission checks the lab cannot break must fail here."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.path("server/good/chain.pem"), pki.path("server/good/key.pem"))
    controller = Controller(_Sink(), hostname="127.0.0.1", port=_free_port(),
                            tls_context=context, auth_require_tls=True, data_size_limit=None,
                            authenticator=lambda *args: AuthResult(success=True))
    controller.start()
    yield controller.port
    controller.stop()


def test_submission_checks_fail_on_permissive_server(good_lab, tmp_path, permissive_submission):
    profile = profile_variant(tmp_path, ("port = 10587\n",
                                                f"port = {permissive_submission}\n"))
    run = run_suite("suites/mail/test_submission.py", "--env", str(profile), tmp_path=tmp_path)
    expected = {SUB + "test_wrong_password_refused", SUB + "test_relay_without_auth_refused",
                SUB + "test_size_advertised_within_bounds",
                SUB + "test_message_above_size_refused", SUB + "test_dsn_advertised"}
    assert run.failing() == expected, explain(run, expected)
    report = json.dumps(run.results)
    assert "accepted without the right password" in report


def test_same_results_under_xdist(good_lab, tmp_path):
    run = run_suite(SUITE, "-n", "2", tmp_path=tmp_path)
    assert set(run.outcomes().values()) == {"passed"}, run.messages()
    assert len(run.outcomes()) == 28, run.messages()
    assert_messages_deleted(run)


def test_domains_compare_in_one_spelling():
    assert domain_key("Hôpital-Lab.MSSante.fr.") == domain_key("xn--hpital-lab-rbb.mssante.fr")
