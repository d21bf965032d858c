"""When a refusal proves a control: the attempt under test against its positive control.

A refusal alone proves little: an MX that answers ``550 5.1.1 User unknown`` to every
recipient "refuses" a peer without a client certificate, and a server that refuses every
password "refuses" a wrong one. So every refusal check runs two attempts in the same run:
the *control*, which differs only in the property under test (the whitelisted peer's own
certificate, the right password, a whitelisted sender, a valid token), and the attempt under
test. The check passes only when

1. the attempt under test was refused (a 4xx "try again later" is no refusal: a peer retries);
2. the control got *past* the stage where the attempt under test was stopped; otherwise the
   server refuses the legitimate attempt too and nothing can be told (*blocked*, an error);
3. the refusal happened at a stage, and with a reply class, that the property explains (a
   missing client certificate explains a TLS alert or a policy reply at MAIL, never "user
   unknown" at RCPT).

Pure: no sockets. Callers turn their protocol's result into an :class:`Outcome`;
:func:`enforce` raises ``probes.errors.Blocked`` on a blocked verdict.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from probes.errors import Blocked

# How far an attempt can get, in protocol order ("connect" and "starttls" are SMTP's and
# IMAP's too, "auth"/"login" the credential step, "request" an HTTP call).
STAGES = ("connect", "ehlo", "starttls", "auth", "login", "mail", "rcpt", "data", "request",
          "accepted")
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNKNOWN_USER = re.compile(r"user unknown|unknown user|no such user|mailbox unavailable|"
                           r"recipient address rejected: user", re.IGNORECASE)
_IMAP_CODE = re.compile(r"\[([A-Z-]+)[^\]]*\]")


@dataclass(frozen=True)
class Outcome:
    """How far one attempt got: ``stage`` is where it stopped (``"accepted"`` when it got
    through), ``code`` the stopping reply's code (None for a cut connection or a protocol
    without codes), ``reply`` its text; ``final`` says a stop is for good (a 5xx, 421, a TLS
    alert, an IMAP NO), not a "try again later"."""

    stage: str
    code: int | None
    reply: str
    final: bool = True

    @property
    def accepted(self) -> bool:
        return self.stage == "accepted"

    def __str__(self) -> str:
        if self.accepted:
            verdict = "accepted"
        else:
            verdict = f"{'refused' if self.final else 'deferred'} at {self.stage.upper()}"
        answer = f"{self.code} {self.reply}" if self.code is not None else self.reply
        return f"{verdict} ({answer.strip()})" if answer.strip() else verdict


# Reply classes: each returns None when the refusal is of this class, else why not.
Explains = Callable[[Outcome], "str | None"]


def enhanced_code(reply: str) -> tuple[int, int, int] | None:
    """RFC 3463 enhanced status code at the start of an SMTP reply text (``5.7.1 ...``)."""
    match = _ENHANCED.match(reply)
    if match is None:
        return None
    first, second, third = (int(g) for g in match.groups())  # the pattern has three groups
    return first, second, third


def recipient_error(outcome: Outcome) -> bool:
    """A reply about the recipient mailbox (5.1.x, "user unknown"): it says nothing about the
    client's certificate or the sender."""
    code = enhanced_code(outcome.reply)
    if code is not None:
        return code[1] == 1 and outcome.stage == "rcpt"
    return outcome.stage == "rcpt" and bool(_UNKNOWN_USER.search(outcome.reply))


def any_refusal(outcome: Outcome) -> str | None:
    return None


def not_recipient_error(outcome: Outcome) -> str | None:
    if recipient_error(outcome):
        return "a recipient error (the mailbox), not a refusal of the client"
    return None


def policy_reply(outcome: Outcome) -> str | None:
    """A security/policy refusal: enhanced code x.7.x, what Postfix's access and policy
    restrictions answer (``554 5.7.1``)."""
    code = enhanced_code(outcome.reply)
    if code is None or code[1] != 7:
        return "not a security or policy reply (enhanced code 5.7.x)"
    return None


def smtp_535(outcome: Outcome) -> str | None:
    if outcome.code != 535:
        return "not 535 (authentication credentials invalid, RFC 4954)"
    return None


def smtp_552(outcome: Outcome) -> str | None:
    if outcome.code != 552:
        return "not 552 (message size exceeds fixed limit, RFC 1870)"
    return None


def imap_authentication_failed(outcome: Outcome) -> str | None:
    """``NO [AUTHENTICATIONFAILED]`` (RFC 5530), or a NO without response code from a server
    that has none; another code (UNAVAILABLE, SERVERBUG, ...) says the server could not check."""
    codes = _IMAP_CODE.findall(outcome.reply)
    if codes and codes[0] != "AUTHENTICATIONFAILED":
        return f"NO [{codes[0]}], not NO [AUTHENTICATIONFAILED]"
    return None


def http_unauthorized(outcome: Outcome) -> str | None:
    if outcome.code not in (400, 401, 403):
        return "not 400, 401 or 403"
    return None


def http_401(outcome: Outcome) -> str | None:
    return None if outcome.code == 401 else "not 401"


@dataclass(frozen=True)
class Rule:
    """What one refusal check proves: the property (``"a client certificate"``), the control
    that differs only in it, and, per stage where this property may stop an attempt, the
    reply class it explains there."""

    property: str
    control: str
    stages: dict[str, Explains]

    def explained(self, outcome: Outcome) -> str | None:
        """None when this property explains the refusal, else why it does not."""
        check = self.stages.get(outcome.stage)
        if check is None:
            allowed = ", ".join(s.upper() for s in self.stages)
            return f"refused at {outcome.stage.upper()}, where {self.property} is not checked " \
                   f"(expected at {allowed})"
        reason = check(outcome)
        return None if reason is None else f"{reason}"


# --- the rules of the mail and API suites ---------------------------------------------------
# A certificate is judged at the handshake (an alert, often read at the first command after
# it under TLS 1.3: EHLO), or by a policy at MAIL (or at RCPT with Postfix's default
# smtpd_delay_reject=yes, then only with a 5.7.x policy reply); DATA is too late: the message
# has already crossed from an unauthenticated peer.
CLIENT_CERTIFICATE = Rule(
    "a client certificate chaining to the IGC Santé anchors",
    "the whitelisted peer's own certificate, same sender and recipient",
    {"starttls": any_refusal, "ehlo": any_refusal, "mail": not_recipient_error,
     "rcpt": policy_reply})
OPERATOR_CERTIFICATE = Rule(
    "the certificate of the sender domain's whitelisted operator",
    "the whitelisted peer's own certificate, same sender and recipient",
    CLIENT_CERTIFICATE.stages)
# The sender is known at MAIL: a whitelist refusal is a policy reply there or at RCPT.
WHITELISTED_SENDER = Rule(
    "a sender domain on the MSSanté whitelist",
    "a sender of the whitelisted peer's domain, same certificate and recipient",
    {"mail": not_recipient_error, "rcpt": policy_reply})
OWN_RECIPIENT = Rule(
    "a recipient in the operator's own domains",
    "a recipient that is the operator's own test mailbox, same certificate and sender",
    {"rcpt": any_refusal})
MX_TLS_FIRST = Rule(
    "STARTTLS before the transaction",
    "the same transaction after STARTTLS with the whitelisted peer's certificate",
    {"ehlo": any_refusal, "mail": any_refusal})
AUTHENTICATED_RELAY = Rule(
    "an authenticated client",
    "the same transaction after AUTH with the test mailbox's password",
    {"mail": not_recipient_error, "rcpt": not_recipient_error})
MESSAGE_SIZE = Rule(
    "a declared SIZE within the advertised limit",
    "the same MAIL declaring a size within the limit, on the same session",
    {"mail": smtp_552})
SMTP_PASSWORD = Rule(
    "the right password", "the same AUTH with the test mailbox's right password",
    {"auth": smtp_535})
IMAP_PASSWORD = Rule(
    "the right password", "the same LOGIN with the test mailbox's right password",
    {"login": imap_authentication_failed})
API_PASSWORD = Rule(
    "the right password", "the same login with the profile's admin password",
    {"request": http_unauthorized})
API_TOKEN = Rule(
    "a bearer token", "the same request with a token from a successful login",
    {"request": http_401})


@dataclass(frozen=True)
class Verdict:
    """``passed``, ``failed`` (the property is not enforced, or the refusal is not its), or
    ``blocked`` (the control was refused too: nothing measured)."""

    kind: Literal["passed", "failed", "blocked"]
    message: str


def _reached(control: Outcome, stage: str) -> bool:
    """The control got past ``stage`` (an unknown stage is never passed)."""
    if stage not in STAGES or control.stage not in STAGES:
        return control.accepted
    return STAGES.index(control.stage) > STAGES.index(stage)


def judge(rule: Rule, attempt: Outcome, control: Outcome) -> Verdict:
    """The verdict of one refusal check; every message names both attempts."""
    both = f"attempt: {attempt}; control ({rule.control}): {control}"
    if attempt.accepted:
        return Verdict("failed", f"accepted without {rule.property}: {both}")
    if not _reached(control, attempt.stage):
        return Verdict("blocked", f"cannot tell whether {rule.property} is required: the "
                                  f"control attempt was refused too: {control} ({rule.control}); "
                                  f"attempt under test: {attempt}")
    if not attempt.final:
        return Verdict("failed", f"only deferred (a peer would retry) without {rule.property}: "
                                 f"{both}")
    reason = rule.explained(attempt)
    if reason is not None:
        return Verdict("failed", f"refused for another reason than {rule.property}: {reason}: "
                                 f"{both}")
    return Verdict("passed", f"refused without {rule.property} while the control got through: "
                             f"{both}")


def enforce(rule: Rule, attempt: Outcome, control: Outcome, endpoint: str) -> Verdict:
    """:func:`judge`, raising :class:`~probes.errors.Blocked` (an *error*: nothing measured)
    when the control was refused too; the caller fails the check on a ``failed`` verdict."""
    verdict = judge(rule, attempt, control)
    if verdict.kind == "blocked":
        raise Blocked(endpoint, "control attempt", verdict.message)
    return verdict
