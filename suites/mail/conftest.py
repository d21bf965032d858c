"""Fixtures of the mail suite: recorded sessions, the MX transaction, and test-message clean-up.

Every SMTP/IMAP session a test opens is kept as a transcript in the run's evidence folder
(AUTH/LOGIN masked at the source), whether the test passes or fails. Messages a test makes a
server accept go between the profile's test mailboxes, carry a unique marker header
(:mod:`probes.testmail`) and are deleted before the test ends — including those a broken
server accepted when it should have refused them. A test that sends and reads back first
makes sure the receiving mailbox can be read (``outbox.ready``): where it cannot, nothing is
sent. A message that cannot be deleted is named (Message-ID, Subject, mailbox) in a warning.
"""
from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from plugins.outcomes import Recorder, WaitResult, wait_until
from plugins.profile import Profile, Section
from policy import refusal
from policy.refusal import Outcome
from probes import smtp, testmail
from probes.errors import Blocked
from probes.imap import ImapSession
from probes.tlsctx import client_context
from probes.transcript import Transcript
from suites.mail.sessions import endpoint, imap_reply, outcome, smtp_reply

CLEANUP_WAIT_S = 5.0        # how long teardown looks for a message no test collected
# Servers answer logins slowly on purpose after failures: Dovecot waits 2 s before refusing,
# and delays the next logins from the same address by up to 15 s (its auth penalty, which
# outlives a run). Sessions that log in ("patient" ones) allow that much for each reply; the
# connection itself stays bounded by the profile's connect_timeout_s.
PATIENT_TIMEOUT_S = 20.0
Account = tuple[str, str]   # (address, password) of a test mailbox
Features = tuple[smtp.RecordingSMTP, dict[str, str]]    # a session and its EHLO extensions


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fails_login: sends wrong credentials on purpose; run after the others, "
                   "because servers (Dovecot's auth penalty) slow the next logins from the "
                   "same address down")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("fails_login") is not None)


def tls_context(section: Section, client: str | None = None) -> ssl.SSLContext:
    """A context verifying the server against the section's anchors (else the profile's),
    presenting the section's ``<client>_cert``/``<client>_key`` when ``client`` is given."""
    anchors = section.path("ca_file") or section.profile.path_of("trust", "anchors")
    if client is None:
        return client_context(anchors)
    for key in (f"{client}_cert", f"{client}_key"):
        section[key]                    # raises NotConfigured (a skip) when the profile lacks it
    return client_context(anchors, section.path(f"{client}_cert"), section.path(f"{client}_key"))


def starttls_imap(section: Section, session: ImapSession) -> None:
    """STARTTLS on an IMAP session; not offered is *blocked* for what depends on it (a refused
    server certificate propagates: that is a failure of the platform)."""
    if "STARTTLS" not in session.capabilities():
        raise Blocked(endpoint(section), "STARTTLS", "not offered")
    session.starttls(tls_context(section))


def starttls_smtp(section: Section, session: smtp.RecordingSMTP) -> dict[str, str]:
    """EHLO, STARTTLS, EHLO on a submission session: the post-TLS extensions; STARTTLS not
    offered is *blocked* for what depends on it."""
    if "starttls" not in smtp.ehlo_features(session):
        raise Blocked(endpoint(section), "STARTTLS", "not offered")
    return smtp.starttls(session, tls_context(section))


@pytest.fixture
def mail_tls() -> Callable[..., ssl.SSLContext]:
    """``mail_tls(section, client=None)``: see :func:`tls_context`."""
    return tls_context


@pytest.fixture
def transcripts(request: pytest.FixtureRequest, evidence_path: Path,
                record: Recorder) -> Iterator[Callable[[Transcript], None]]:
    """``keep(transcript)``: saved under evidence/transcripts/ at teardown, linked to the test."""
    kept: list[Transcript] = []
    yield kept.append
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")[:100]
    for transcript in kept:
        transcript.name = f"mail-{prefix}-{transcript.name}"
        saved = transcript.save(evidence_path / "transcripts")
        record.evidence(f"transcripts/{saved.name}")


@pytest.fixture
def open_smtp(timeouts: dict[str, float], transcripts: Callable[[Transcript], None]
              ) -> Iterator[Callable[..., smtp.RecordingSMTP]]:
    """``open_smtp(section, label, patient=False)``: a recorded SMTP session (banner read),
    closed at teardown."""
    sessions: list[smtp.RecordingSMTP] = []

    def open_(section: Section, label: str, patient: bool = False) -> smtp.RecordingSMTP:
        session = smtp.connect(section["host"], section["port"], timeouts["connect"], label,
                               read_timeout=PATIENT_TIMEOUT_S if patient else None)
        sessions.append(session)
        transcripts(session.transcript)
        return session

    yield open_
    for session in sessions:
        smtp.close(session)


@pytest.fixture
def open_imap(timeouts: dict[str, float], transcripts: Callable[[Transcript], None]
              ) -> Iterator[Callable[..., ImapSession]]:
    """``open_imap(section, label, implicit_tls=False, patient=False)``: a recorded IMAP
    session, logged out at teardown; implicit TLS verifies the server against the section's
    anchors."""
    sessions: list[ImapSession] = []

    def open_(section: Section, label: str, implicit_tls: bool = False,
              patient: bool = False) -> ImapSession:
        session = ImapSession(section["host"], section["port"], timeouts["connect"], label,
                              implicit_tls=implicit_tls,
                              context=tls_context(section) if implicit_tls else None,
                              read_timeout=PATIENT_TIMEOUT_S if patient else None)
        sessions.append(session)
        transcripts(session.transcript)
        return session

    yield open_
    for session in sessions:
        session.close()


@pytest.fixture
def mailbox(target, open_imap) -> Callable[[Account, str], ImapSession]:
    """``mailbox(account, label)``: logged in on the [imap] port after STARTTLS."""

    def open_(account: Account, label: str) -> ImapSession:
        section = target("imap")
        session = open_imap(section, label, patient=True)
        starttls_imap(section, session)
        try:
            session.login(*account)
        except LoginError as exc:
            raise Blocked(endpoint(section), "login", f"{account[0]}: {imap_reply(exc)}") from exc
        return session

    return open_


@dataclass
class _Expected:
    account: Account
    criteria: list[str]
    about: str = ""         # how the report names the message if it stays behind
    waited: bool = False

    def named(self) -> str:
        return f"{self.about or ' '.join(self.criteria)}, mailbox {self.account[0]} (INBOX)"


@dataclass
class Outbox:
    """Messages a server accepted during a test, until found and deleted.

    ``collect`` waits (bounded) for a message, returns its bytes and deletes it. Whatever a
    test expected but did not collect — a message a broken server accepted instead of
    refusing, or one that arrived after the deadline — is looked for and deleted at teardown;
    one still there (or that cannot be deleted) is named in a warning and a measured value.
    """

    mailbox: Callable[[Account, str], ImapSession]
    deadline: float
    record: Recorder
    where: Callable[[], str]            # the [imap] endpoint, for a blocked message
    expected: list[_Expected] = field(default_factory=list)
    sessions: dict[str, ImapSession] = field(default_factory=dict)

    def ready(self, account: Account) -> None:
        """Log in to the account's mailbox and open its INBOX, *before* sending anything: a
        message sent where it cannot be read back could not be deleted either. Raises
        Blocked (an *error*: nothing was measured, nothing sent)."""
        session = self._session(account)        # a refused LOGIN is Blocked there
        try:
            session.client.select_folder("INBOX")
        except IMAPClientError as exc:
            raise Blocked(self.where(), "IMAP SELECT INBOX",
                          f"{account[0]}: {imap_reply(exc)}") from exc

    def expect(self, account: Account, criteria: list[str], about: str = "") -> None:
        """The server accepted a message for ``account`` that ``criteria`` find; ``about``
        names it (Message-ID, Subject) should it stay behind."""
        self.expected.append(_Expected(account, criteria, about))

    def _session(self, account: Account) -> ImapSession:
        if account[0] not in self.sessions:
            self.sessions[account[0]] = self.mailbox(account, f"inbox-{account[0].split('@')[0]}")
        return self.sessions[account[0]]

    def collect(self, account: Account, criteria: list[str],
                timeout: float | None = None) -> tuple[WaitResult, bytes | None]:
        """Wait for the message matching ``criteria`` in the account's INBOX, fetch, delete."""
        session = self._session(account)
        waited = wait_until(lambda: session.find(criteria),
                            timeout=self.deadline if timeout is None else timeout, interval=0.25)
        mine = [e for e in self.expected if e.account == account and e.criteria == criteria]
        if not waited.ok:
            for entry in mine:
                entry.waited = True
            return waited, None
        raw = session.fetch_message(waited.value[0])
        session.delete(waited.value)
        self.expected = [e for e in self.expected if e not in mine]
        return waited, raw

    def clean_up(self) -> None:
        left: list[str] = []
        for entry in list(self.expected):
            try:
                waited, _ = self.collect(entry.account, entry.criteria,
                                         timeout=0 if entry.waited else CLEANUP_WAIT_S)
                problem = None if waited.ok else "not found to delete"
            except Exception as exc:  # noqa: BLE001 - clean-up must not mask the test's outcome
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                left.append(f"test message not deleted: {entry.named()}: {problem}")
        for message in left:        # after every attempt: --strict-warnings fails on the first
            self.record.measure("undeleted_test_message", message)
        for message in left:
            self.record.warn(message)


@pytest.fixture
def outbox(env_profile: Profile, mailbox, target, record: Recorder) -> Iterator[Outbox]:
    box = Outbox(mailbox, env_profile.threshold("delivery_deadline_s"), record,
                 lambda: endpoint(target("imap")))
    yield box
    box.clean_up()


@pytest.fixture
def mx_attempt(target, open_smtp, outbox: Outbox, mailboxes: list[Account],
               record: Recorder) -> Callable[..., tuple[smtp.Attempt, str]]:
    """``mx_attempt(label, client, sender, recipient=None)``: one transaction on the MX port.

    ``client`` names the profile's client certificate to present (``"peer"``, ``"rogue"``,
    ``"foreign"``) or is None; ``starttls=False`` stays in clear. The recipient defaults to
    the first test mailbox; then, once the envelope is accepted, a marked test message follows
    (so a refusal at DATA counts) and is deleted from the mailbox if the server took it. For
    any other recipient the attempt stops after RCPT and the envelope is reset: no data ever
    goes outside the test mailboxes.
    Returns the attempt and the message's marker (for tests that look for the message).
    """
    section = target("smtp.mx")

    def attempt(label: str, client: str | None, sender: str, recipient: str | None = None,
                starttls: bool = True) -> tuple[smtp.Attempt, str]:
        account = mailboxes[0]
        marker = testmail.new_marker()
        data = None
        if recipient is None:
            recipient = account[0]
            message = testmail.marked_message(sender, recipient, marker, f"MX {label}")
            data = testmail.wire_bytes(message)
        session = open_smtp(section, label)
        context = tls_context(section, client) if starttls else None
        result = smtp.attempt(session, context, sender, recipient, data)
        if data is not None and result.accepted:
            record.measure("test_message", marker)
            outbox.expect(account, testmail.by_marker(marker))
        return result, marker

    return attempt


@pytest.fixture
def client_features(target, open_smtp) -> Callable[[str], Features]:
    """``client_features(label)``: a submission session and the extensions a client relies on:
    those announced after STARTTLS when it is offered (RFC 3207 discards the earlier ones),
    else the plain ones — so SIZE, DSN or relaying are judged even where TLS is broken."""

    def open_(label: str) -> Features:
        section = target("smtp.submission")
        session = open_smtp(section, label)
        features = smtp.ehlo_features(session)
        if "starttls" in features:
            features = smtp.starttls(session, tls_context(section))
        return session, features

    return open_


@pytest.fixture
def submit_session(target, open_smtp) -> Callable[[Account, str], Features]:
    """``submit_session(account, label)``: a submission session after STARTTLS and AUTH, the
    way a mail client sends; returns it with the post-TLS extensions."""

    def open_(account: Account, label: str) -> Features:
        section = target("smtp.submission")
        session = open_smtp(section, label, patient=True)
        features = starttls_smtp(section, session)
        try:
            session.login(*account)
        except smtplib.SMTPException as exc:
            reply = (f"{exc.smtp_code} {smtp_reply(exc)}"
                     if isinstance(exc, smtplib.SMTPResponseException) else str(exc))
            raise Blocked(endpoint(section), "login", f"{account[0]}: {reply}") from exc
        return session, features

    return open_


# --- refusal checks and their positive controls (policy/refusal.py) --------------------------
def _peer_sender(section: Section) -> str:
    return f"mssante-check@{section['peer_domain']}"


@pytest.fixture
def peer_sender(target) -> str:
    """An address of the whitelisted peer operator (``[smtp.mx] peer_domain``)."""
    return _peer_sender(target("smtp.mx"))


@pytest.fixture
def judge_refusal(record: Recorder) -> Callable[[refusal.Rule, Outcome, Outcome, str], None]:
    """``judge_refusal(rule, attempt, control, endpoint)``: both replies recorded; passes, fails
    (not refused, or not for the rule's reason), or raises Blocked (the control was refused
    too: nothing measured, an *error*)."""

    def judge(rule: refusal.Rule, attempt: Outcome, control: Outcome, where: str,
              note: str = "") -> None:
        record.measure("refusal_attempt", str(attempt))
        record.measure("control_attempt", f"{control} ({rule.control})")
        verdict = refusal.enforce(rule, attempt, control, where)
        if verdict.kind == "failed":
            pytest.fail(verdict.message + note, pytrace=False)

    return judge


@pytest.fixture
def mx_refusal(target, open_smtp, mx_attempt, mailboxes: list[Account],
               judge_refusal) -> Callable[..., None]:
    """``mx_refusal(rule, label, client, sender, recipient=None, starttls=True, note="")``
    (``note`` ends a failure's message: the vantage, for the relay check): the control
    first — the whitelisted peer's own certificate and a sender of its domain, to the first
    test mailbox, stopped after RCPT (no message is sent) — then the attempt under test
    (:func:`mx_attempt`), judged by ``rule``."""
    section = target("smtp.mx")

    def run(rule: refusal.Rule, label: str, client: str | None, sender: str,
            recipient: str | None = None, starttls: bool = True, note: str = "") -> None:
        session = open_smtp(section, f"{label}-control")
        control = smtp.attempt(session, tls_context(section, "peer"), _peer_sender(section),
                               mailboxes[0][0])
        attempt, _ = mx_attempt(label, client, sender, recipient, starttls=starttls)
        judge_refusal(rule, outcome(attempt), outcome(control), endpoint(section), note)

    return run


@pytest.fixture
def submission_auth(target, open_smtp) -> Callable[[str, str, str],
                                                   tuple[smtp.RecordingSMTP, Outcome]]:
    """``submission_auth(label, user, password)``: a new submission session, STARTTLS, then one
    AUTH with one mechanism (PLAIN, else LOGIN: smtplib's login() would retry with each);
    returns the session and how the AUTH ended (``accepted`` on 235)."""
    section = target("smtp.submission")

    def auth(label: str, user: str, password: str) -> tuple[smtp.RecordingSMTP, Outcome]:
        session = open_smtp(section, label, patient=True)
        features = starttls_smtp(section, session)
        mechanisms = features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in mechanisms), None)
        if mechanism is None:
            raise Blocked(endpoint(section), "AUTH",
                          f"no PLAIN or LOGIN among the mechanisms offered after STARTTLS: "
                          f"{mechanisms}")
        session.user, session.password = user, password
        authobject = session.auth_plain if mechanism == "PLAIN" else session.auth_login
        try:
            code, reply = session.auth(mechanism, authobject)
        except smtplib.SMTPResponseException as exc:
            return session, Outcome("auth", exc.smtp_code, smtp_reply(exc),
                                    final=exc.smtp_code >= 500)
        return session, Outcome("accepted", code, reply.decode("utf-8", "replace"))

    return auth


@pytest.fixture
def imap_login(target, open_imap) -> Callable[[str, str, str], Outcome]:
    """``imap_login(label, user, password)``: a new IMAP session, STARTTLS, one LOGIN; how it
    ended (``accepted`` on OK, else the server's NO/BAD text with its response code)."""
    section = target("imap")

    def login(label: str, user: str, password: str) -> Outcome:
        session = open_imap(section, label, patient=True)
        starttls_imap(section, session)
        try:
            session.login(user, password)
        except LoginError as exc:
            return Outcome("login", None, imap_reply(exc))
        return Outcome("accepted", None, "OK")

    return login
