"""policy/refusal.py on hand-built outcomes: a refusal passes only with its control through,
at a stage and with a reply class its property explains (pure units, no network)."""
from __future__ import annotations

import pytest

from policy import refusal
from policy.refusal import Outcome, enforce, judge
from probes.errors import Blocked, CouldNotRun

THROUGH = Outcome("accepted", 250, "2.1.5 Ok")
USER_UNKNOWN = Outcome("rcpt", 550, "5.1.1 <medecin@lab.mssante.fr>: Recipient address "
                                    "rejected: User unknown")
POLICY_AT_MAIL = Outcome("mail", 554, "5.7.1 <x@rogue.example>: Sender address rejected: "
                                      "sender domain rogue.example is not on the MSSante whitelist")
TLS_ALERT = Outcome("ehlo", None, "connection cut: SSLError: tlsv13 alert certificate required")


@pytest.mark.parametrize(("rule", "attempt", "control", "kind"), [
    # the four inter-operator checks on a good MX
    (refusal.CLIENT_CERTIFICATE, TLS_ALERT, THROUGH, "passed"),
    (refusal.CLIENT_CERTIFICATE, Outcome("starttls", None, "handshake failure"), THROUGH,
     "passed"),
    (refusal.CLIENT_CERTIFICATE, Outcome("mail", 554, "5.7.1 a verified IGC Sante client "
                                                      "certificate is required"), THROUGH,
     "passed"),
    (refusal.WHITELISTED_SENDER, POLICY_AT_MAIL, THROUGH, "passed"),
    (refusal.WHITELISTED_SENDER, Outcome("rcpt", 554, "5.7.1 <x@r.example>: Sender address "
                                                      "rejected: not whitelisted"), THROUGH,
     "passed"),
    (refusal.OPERATOR_CERTIFICATE, POLICY_AT_MAIL, THROUGH, "passed"),
    # the third-party MX: 550 5.1.1 to every recipient, whatever the certificate
    (refusal.CLIENT_CERTIFICATE, USER_UNKNOWN, USER_UNKNOWN, "blocked"),
    (refusal.WHITELISTED_SENDER, USER_UNKNOWN, USER_UNKNOWN, "blocked"),
    (refusal.OPERATOR_CERTIFICATE, USER_UNKNOWN, USER_UNKNOWN, "blocked"),
    # control through, but the refusal is about the mailbox, not the certificate or sender
    (refusal.CLIENT_CERTIFICATE, USER_UNKNOWN, THROUGH, "failed"),
    (refusal.WHITELISTED_SENDER, USER_UNKNOWN, THROUGH, "failed"),
    (refusal.WHITELISTED_SENDER, TLS_ALERT, THROUGH, "failed"),
    (refusal.CLIENT_CERTIFICATE, Outcome("data", 554, "5.7.1 rejected"), THROUGH, "failed"),
    (refusal.CLIENT_CERTIFICATE, Outcome("rcpt", 550, "no such user here"), THROUGH, "failed"),
    # accepted, or only deferred
    (refusal.CLIENT_CERTIFICATE, Outcome("accepted", 250, "2.0.0 Ok: queued"), THROUGH,
     "failed"),
    (refusal.CLIENT_CERTIFICATE, Outcome("accepted", 250, "queued"), USER_UNKNOWN, "failed"),
    (refusal.WHITELISTED_SENDER, Outcome("mail", 450, "4.7.1 try later", final=False), THROUGH,
     "failed"),
    (refusal.WHITELISTED_SENDER, Outcome("mail", 451, "4.7.0 whitelist unavailable",
                                         final=False),
     Outcome("mail", 451, "4.7.0 whitelist unavailable", final=False), "blocked"),
    # the control refused later than the attempt under test still shows the stage passed
    (refusal.MX_TLS_FIRST, Outcome("mail", 530, "5.7.0 Must issue a STARTTLS command first"),
     USER_UNKNOWN, "passed"),
    (refusal.MX_TLS_FIRST, Outcome("rcpt", 554, "5.7.1 no"), THROUGH, "failed"),
    (refusal.OWN_RECIPIENT, Outcome("rcpt", 554, "5.7.1 Relay access denied"), THROUGH, "passed"),
    (refusal.OWN_RECIPIENT, Outcome("rcpt", 554, "5.7.1 Relay access denied"), USER_UNKNOWN,
     "blocked"),
    (refusal.AUTHENTICATED_RELAY, Outcome("rcpt", 554, "5.7.1 Relay access denied"), THROUGH,
     "passed"),
    (refusal.AUTHENTICATED_RELAY, Outcome("rcpt", 554, "5.7.1 Relay access denied"),
     Outcome("auth", 535, "5.7.8 Error: authentication failed"), "blocked"),
    # passwords: the server that refuses every password
    (refusal.SMTP_PASSWORD, Outcome("auth", 535, "5.7.8 authentication failed"),
     Outcome("accepted", 235, "2.7.0 Authentication successful"), "passed"),
    (refusal.SMTP_PASSWORD, Outcome("auth", 535, "5.7.8 authentication failed"),
     Outcome("auth", 535, "5.7.8 authentication failed"), "blocked"),
    (refusal.SMTP_PASSWORD, Outcome("auth", 454, "4.7.0 temporary failure", final=False),
     Outcome("accepted", 235, "ok"), "failed"),
    (refusal.SMTP_PASSWORD, Outcome("auth", 504, "5.5.4 unrecognized"),
     Outcome("accepted", 235, "ok"), "failed"),
    (refusal.MESSAGE_SIZE, Outcome("mail", 552, "5.3.4 Message size exceeds fixed limit"),
     Outcome("accepted", 250, "2.1.0 Ok"), "passed"),
    (refusal.MESSAGE_SIZE, Outcome("mail", 552, "5.3.4 Message size exceeds fixed limit"),
     Outcome("mail", 552, "5.3.4 Message size exceeds fixed limit"), "blocked"),
    (refusal.MESSAGE_SIZE, Outcome("mail", 550, "5.7.1 no"), Outcome("accepted", 250, "ok"),
     "failed"),
    (refusal.IMAP_PASSWORD, Outcome("login", None, "[AUTHENTICATIONFAILED] Authentication "
                                                   "failed."), Outcome("accepted", None, "OK"),
     "passed"),
    (refusal.IMAP_PASSWORD, Outcome("login", None, "Login failed"), Outcome("accepted", None, ""),
     "passed"),
    (refusal.IMAP_PASSWORD, Outcome("login", None, "[UNAVAILABLE] Temporary failure"),
     Outcome("accepted", None, ""), "failed"),
    (refusal.IMAP_PASSWORD, Outcome("login", None, "[AUTHENTICATIONFAILED] failed"),
     Outcome("login", None, "[AUTHENTICATIONFAILED] failed"), "blocked"),
    (refusal.API_PASSWORD, Outcome("request", 401, "invalid credentials"),
     Outcome("accepted", 200, "token"), "passed"),
    (refusal.API_PASSWORD, Outcome("request", 401, "invalid credentials"),
     Outcome("request", 401, "invalid credentials"), "blocked"),
    (refusal.API_PASSWORD, Outcome("request", 500, "boom"), Outcome("accepted", 200, ""),
     "failed"),
    (refusal.API_TOKEN, Outcome("request", 403, "forbidden"), Outcome("accepted", 200, ""),
     "failed"),
])
def test_judge(rule: refusal.Rule, attempt: Outcome, control: Outcome, kind: str) -> None:
    verdict = judge(rule, attempt, control)
    assert verdict.kind == kind, verdict.message
    # Both replies are evidence in every verdict.
    assert attempt.reply.strip() in verdict.message and control.reply.strip() in verdict.message


def test_blocked_message_names_the_control() -> None:
    verdict = judge(refusal.CLIENT_CERTIFICATE, USER_UNKNOWN, USER_UNKNOWN)
    assert verdict.message.startswith("cannot tell whether a client certificate")
    assert "the control attempt was refused too: refused at RCPT (550 5.1.1" in verdict.message
    assert refusal.CLIENT_CERTIFICATE.control in verdict.message


@pytest.mark.parametrize(("reply", "code"), [("5.7.1 no", (5, 7, 1)), ("  4.1.1 x", (4, 1, 1)),
                                             ("Relay access denied", None), ("550 5.1.1", None)])
def test_enhanced_code(reply: str, code: tuple[int, int, int] | None) -> None:
    assert refusal.enhanced_code(reply) == code


def test_outcome_text() -> None:
    assert str(USER_UNKNOWN).startswith("refused at RCPT (550 5.1.1 ")
    assert str(Outcome("mail", 451, "4.7.0 later", final=False)) == "deferred at MAIL (451 4.7.0 later)"
    assert str(Outcome("accepted", None, "")) == "accepted"


def test_enforce_raises_blocked_naming_the_endpoint_and_the_control() -> None:
    with pytest.raises(Blocked) as blocked:
        enforce(refusal.SMTP_PASSWORD, Outcome("auth", 535, "5.7.8 no"),
                Outcome("auth", 535, "5.7.8 no"), "[smtp.submission] mail.example:587")
    assert isinstance(blocked.value, CouldNotRun)          # reported as *error*
    assert str(blocked.value).startswith(
        "blocked: control attempt to [smtp.submission] mail.example:587 failed: cannot tell")
    assert enforce(refusal.SMTP_PASSWORD, Outcome("auth", 535, "5.7.8 no"),
                   Outcome("accepted", 235, "ok"), "x").kind == "passed"
