"""Fixtures of the mail suite: recorded sessions, the MX transaction, and test-message clean-up.

Every SMTP/IMAP session a test opens is kept as a transcript in the run's evidence folder
(AUTH/LOGIN masked at the source), whether the test passes or fails. Messages a test makes a
server accept go between the profile's test mailboxes, carry a unique marker header
(:mod:`probes.testmail`) and are deleted before the test ends — including those a broken
server accepted when it should have refused them.
"""
from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from plugins.outcomes import Recorder, WaitResult, wait_until
from plugins.profile import Profile, Section
from probes import smtp, testmail
from probes.imap import ImapSession
from probes.tlsctx import client_context
from probes.transcript import Transcript

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
        session.starttls(tls_context(section))
        session.login(*account)
        return session

    return open_


@dataclass
class _Expected:
    account: Account
    criteria: list[str]
    waited: bool = False


@dataclass
class Outbox:
    """Messages a server accepted during a test, until found and deleted.

    ``collect`` waits (bounded) for a message, returns its bytes and deletes it. Whatever a
    test expected but did not collect — a message a broken server accepted instead of
    refusing, or one that arrived after the deadline — is looked for and deleted at teardown.
    """

    mailbox: Callable[[Account, str], ImapSession]
    deadline: float
    expected: list[_Expected] = field(default_factory=list)
    sessions: dict[str, ImapSession] = field(default_factory=dict)

    def expect(self, account: Account, criteria: list[str]) -> None:
        self.expected.append(_Expected(account, criteria))

    def collect(self, account: Account, criteria: list[str],
                timeout: float | None = None) -> tuple[WaitResult, bytes | None]:
        """Wait for the message matching ``criteria`` in the account's INBOX, fetch, delete."""
        if account[0] not in self.sessions:
            self.sessions[account[0]] = self.mailbox(account, f"inbox-{account[0].split('@')[0]}")
        session = self.sessions[account[0]]
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
        for entry in list(self.expected):
            try:
                self.collect(entry.account, entry.criteria,
                             timeout=0 if entry.waited else CLEANUP_WAIT_S)
            except Exception:  # noqa: BLE001 - clean-up must not mask the test's own outcome
                pass


@pytest.fixture
def outbox(env_profile: Profile, mailbox) -> Iterator[Outbox]:
    box = Outbox(mailbox, env_profile.threshold("delivery_deadline_s"))
    yield box
    box.clean_up()


@pytest.fixture
def mx_attempt(target, open_smtp, outbox: Outbox, mailboxes: list[Account],
               record: Recorder) -> Callable[..., tuple[smtp.Attempt, str]]:
    """``mx_attempt(label, client, sender, recipient=None)``: one transaction on the MX port.

    ``client`` names the profile's client certificate to present (``"peer"``, ``"rogue"``,
    ``"foreign"``) or is None. The recipient defaults to the first test mailbox; then, once
    the envelope is accepted, a marked test message follows (so a refusal at DATA counts) and
    is deleted from the mailbox if the server took it. For any other recipient the attempt
    stops after RCPT and the envelope is reset: no data ever goes outside the test mailboxes.
    Returns the attempt and the message's marker (for tests that look for the message).
    """
    section = target("smtp.mx")

    def attempt(label: str, client: str | None, sender: str,
                recipient: str | None = None) -> tuple[smtp.Attempt, str]:
        account = mailboxes[0]
        marker = testmail.new_marker()
        data = None
        if recipient is None:
            recipient = account[0]
            message = testmail.marked_message(sender, recipient, marker, f"MX {label}")
            data = testmail.wire_bytes(message)
        session = open_smtp(section, label)
        result = smtp.attempt(session, tls_context(section, client), sender, recipient, data)
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
        smtp.ehlo_features(session)
        features = smtp.starttls(session, tls_context(section))
        session.login(*account)
        return session, features

    return open_
