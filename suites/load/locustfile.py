"""Locust users of the load suite: the API, SMTP submission and IMAP, built on the shared probes.

plugins/load.py runs this file in locust's own processes (``python -m locust -f ...``) so
locust's gevent monkey-patching never enters pytest. Scaling past one machine is locust's own
distributed mode: a worker elsewhere runs

    locust -f suites/load/locustfile.py --worker --master-host CONTROLLER --master-port PORT

and receives the profile name, the message count and the run marker from the master
(``--mssante-*`` options); secrets come from that machine's environment, never the wire.

SMTP and IMAP have no locust client, so every step (connect, STARTTLS, AUTH, send; connect,
STARTTLS, login, select, fetch) is timed here and fired on locust's ``request`` event: the
percentiles locust computes are those of each real step, and a failing step is a failure of
that step, not of an opaque task.
"""
from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from ssl import SSLContext
from typing import Any

import gevent
from locust import FastHttpUser, User, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WorkerRunner

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))

from plugins import profile as profiles
from plugins.profile import Profile
from policy.api_contract import ApiContract
from probes import smtp
from probes.imap import ImapSession
from probes.secret import Mailbox
from probes.tlsctx import client_context

RECENT = 10                      # how many of the newest messages the IMAP user fetches
# Steps of one SMTP session in order; a session ends with a failure at one of them or at "send".
SMTP_STEPS = ("connect", "starttls", "auth", "send")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    """Custom options; locust forwards them from the master to every worker."""
    parser.add_argument("--mssante-env", env_var="MSSANTE_ENV", default="",
                        help="environment profile (name or .toml path, relative to the repo)")
    parser.add_argument("--mssante-messages", type=int, default=0,
                        help="SMTP messages for the whole run, shared by all workers (0: no limit)")
    parser.add_argument("--mssante-marker", default="mssante-check-load",
                        help="value of the marker header of every message sent (for cleanup)")


@dataclass
class Target:
    """What one locust process needs from the profile, read once per process."""

    profile: Profile
    messages: int
    marker: str
    accounts: list[Mailbox]
    contexts: dict[str, SSLContext] = field(default_factory=dict)
    _next: Iterator[int] = field(default_factory=itertools.count)
    _sent: int = 0

    @property
    def connect_timeout(self) -> float:
        return self.profile.threshold("connect_timeout_s")

    @property
    def http_timeout(self) -> float:
        return self.profile.threshold("http_timeout_s")

    def account(self) -> tuple[str, str]:
        """Test mailboxes in turn, one per virtual user."""
        return self.accounts[next(self._next) % len(self.accounts)]

    def tls(self, section: str) -> SSLContext:
        """One client context per target section, verifying against the profile's anchors."""
        if section not in self.contexts:
            self.contexts[section] = client_context(self.profile.section(section).path("ca_file"))
        return self.contexts[section]

    def take_message(self, share: int) -> bool:
        """One more message within this process's share of the run (0: no limit)."""
        if share and self._sent >= share:
            return False
        self._sent += 1
        return True


_target: list[Target] = []


def target(environment: Environment) -> Target:
    """This process's Target, built on first use (a worker only knows the options by then)."""
    if not _target:
        options = environment.parsed_options
        name = getattr(options, "mssante_env", "")
        if not name:
            raise RuntimeError("no environment profile: pass --mssante-env or set MSSANTE_ENV")
        if name.endswith(".toml") and not Path(name).is_absolute():
            name = str(REPO / name)
        loaded = profiles.load(name)
        _target.append(Target(loaded,
                              options.mssante_messages,  # type: ignore[union-attr]  # set by now
                              options.mssante_marker,  # type: ignore[union-attr]  # idem
                              _accounts(loaded)))
    return _target[0]


def _accounts(loaded: Profile) -> list[Mailbox]:
    """The profile's test mailboxes with their passwords (load users are test users only)."""
    accounts = loaded.mailboxes()
    if not accounts:
        raise RuntimeError(
            f"no [[mailboxes]] in {loaded.path.name}: load users need test mailboxes")
    return accounts


def message_share(total: int, environment: Environment) -> int:
    """This process's part of ``total`` messages: all of it alone, an even split among workers."""
    runner = environment.runner
    if not total or not isinstance(runner, WorkerRunner):
        return total
    workers = max(int(getattr(environment.parsed_options, "expect_workers", 1) or 1), 1)
    return total // workers + (1 if runner.worker_index < total % workers else 0)


class StepFailed(Exception):
    """A step failed and was reported to locust; the rest of the session is skipped."""


@contextmanager
def step(user: User, kind: str, name: str) -> Iterator[None]:
    """Time the block and fire it on locust's request event as step ``name`` of ``kind``."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        _fire(user, kind, name, started, exc)
        raise StepFailed(name) from exc
    _fire(user, kind, name, started, None)


def _fire(user: User, kind: str, name: str, started: float, exc: Exception | None) -> None:
    user.environment.events.request.fire(
        request_type=kind, name=name, response_time=(time.perf_counter() - started) * 1000,
        response_length=0, exception=exc, context={})


class ApiUser(FastHttpUser):
    """Logs in once (a test mailbox's credentials), then lists mailboxes as fast as it can."""

    wait_time = constant(0)
    insecure = False

    def __init__(self, environment: Environment) -> None:
        self.target = target(environment)
        section = self.target.profile.section("api")
        self.contract = ApiContract.from_section(section)
        self.host = section["url"]
        self.network_timeout = self.target.http_timeout
        self.connection_timeout = self.target.connect_timeout
        context = self.target.tls("api")
        self.ssl_context_factory = lambda **_: context
        super().__init__(environment)
        self.headers: dict[str, str] | None = None

    def on_start(self) -> None:
        self.login()

    def login(self) -> None:
        email, password = self.target.account()
        contract = self.contract
        with self.client.post(contract.login_path, json=contract.login_body(email, password),
                              catch_response=True) as response:
            token = contract.token(_json(response)) if response.status_code == 200 else None
            if token:
                self.headers = {"Authorization": f"Bearer {token}"}
            else:
                response.failure(f"login answered {response.status_code} without a token at "
                                 f"{contract.token_pointer}")

    @task
    def list_mailboxes(self) -> None:
        if self.headers is None:
            self.login()           # a failed login is retried, and counted, every iteration
            return
        with self.client.get(self.contract.mailboxes_path, headers=self.headers,
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"answered {response.status_code}")
            elif self.contract.mailboxes(_json(response)) is None:
                response.failure(
                    f"answered 200 without a list at {self.contract.mailboxes_pointer}")


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SmtpUser(User):
    """One submission session per message: connect, STARTTLS, AUTH, send, then QUIT."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.target = target(self.environment)
        self.share = message_share(self.target.messages, self.environment)
        self.section = self.target.profile.section("smtp.submission")
        self.sender, self.password = self.target.accounts[0]
        self.recipient = self.target.accounts[-1][0]

    @task
    def submit(self) -> None:
        if not self.target.take_message(self.share):
            raise StopUser()
        message = smtp.marked_message(self.sender, self.recipient, self.target.marker, "load")
        try:
            with step(self, "SMTP", "connect"):
                session = smtp.connect(self.section["host"], self.section["port"],
                                       self.target.connect_timeout, "load-smtp")
        except StepFailed:
            return
        try:
            with step(self, "SMTP", "starttls"):
                smtp.ehlo_features(session)
                smtp.starttls(session, self.target.tls("smtp.submission"))
            with step(self, "SMTP", "auth"):
                session.login(self.sender, self.password)
            with step(self, "SMTP", "send"):
                refused = session.send_message(message)
                if refused:
                    raise RuntimeError(f"recipients refused: {refused}")
        except StepFailed:
            pass
        finally:
            smtp.close(session)


class ImapUser(User):
    """Logs in once (connect, STARTTLS, login), then selects INBOX and fetches the newest mail."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.target = target(self.environment)
        self.section = self.target.profile.section("imap")
        self.account = self.target.account()
        self.session: ImapSession | None = None

    def login(self) -> ImapSession:
        with step(self, "IMAP", "connect"):
            session = ImapSession(self.section["host"], self.section["port"],
                                  self.target.connect_timeout, "load-imap")
        try:
            with step(self, "IMAP", "starttls"):
                session.starttls(self.target.tls("imap"))
            with step(self, "IMAP", "login"):
                session.login(*self.account)
        except StepFailed:
            session.close()
            raise
        return session

    @task
    def read_recent(self) -> None:
        try:
            if self.session is None:
                self.session = self.login()
            client = self.session.client
            with step(self, "IMAP", "select"):
                client.select_folder("INBOX", readonly=True)
            with step(self, "IMAP", "fetch"):
                newest = client.search(["ALL"])[-RECENT:]
                if newest:
                    client.fetch(newest, ["ENVELOPE", "RFC822.SIZE"])
            # A long-lived session would grow its wire transcript without bound; load runs keep
            # locust's statistics as evidence, not transcripts.
            self.session.transcript.lines.clear()
        except StepFailed:
            self.on_stop()         # the next iteration logs in again

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def finished_sessions(stats: Any) -> int:
    """SMTP sessions that are over: each ends with a failure at one step, or at ``send``."""
    entries = [stats.entries.get((name, "SMTP")) for name in SMTP_STEPS]
    sent = entries[-1].num_requests if entries[-1] else 0
    return sent + sum(entry.num_failures for entry in entries[:-1] if entry)


@events.test_start.add_listener
def _stop_after_messages(environment: Environment, **_: Any) -> None:
    """On the master (or a lone process): quit once the run's messages are all sent."""
    total = getattr(environment.parsed_options, "mssante_messages", 0)
    if not total or isinstance(environment.runner, WorkerRunner):
        return

    def watch() -> None:
        runner = environment.runner
        assert runner is not None, "test_start fires on a process with a runner"
        while finished_sessions(runner.stats) < total:
            gevent.sleep(0.2)
        runner.quit()

    gevent.spawn(watch)
