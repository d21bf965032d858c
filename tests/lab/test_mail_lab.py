"""The lab's mail services (Postfix MX and submission, Dovecot IMAP), proven over real sockets.

The good lab must carry mail end to end (submission -> LMTP -> IMAP, peer MX -> IMAP) and
refuse what an MSSanté operator refuses; each mail fault must change exactly the behaviour it
names. Only Dovecot and Postfix are started (``control.up(..., only=SERVICES)``), and the lab
lock is held so that no other test session switches faults underneath.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import imaplib
import json
import os
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient

from lab import control, identity, mailpolicy, paths, pki, ports, secrets
from lab.process import pid_alive, port_open, read_pid, run
from lab.services.postfix import WHITELIST_FRESHNESS
from probes import whitelist
from tests import labctl

SERVICES = ["dovecot", "postfix"]
TIMEOUT = 10.0             # every socket operation
DELIVERY_DEADLINE = 10.0   # submission/MX -> mailbox
NOT_DELIVERED_AFTER = 3.0  # delivery-broken: still absent after this long
MEDECIN, SECRETARIAT = list(identity.MAILBOXES)[:2]
PEER_SENDER = f"cabinet@{identity.PEER_DOMAIN}"
ROGUE_SENDER = f"cabinet@{identity.ROGUE_DOMAIN}"
OUTSIDE = "someone@elsewhere.example"
HANDSHAKE_FAILED = -1
POSTFIX_DIR = paths.service_dir("postfix")

# The TLS 1.0/1.1 probes are deliberate: they prove which versions a port accepts.
legacy_probe = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


class Passwords(dict[str, str]):
    """Mailbox address -> password, never shown in a test report."""

    def __repr__(self) -> str:
        return f"<passwords of {len(self)} lab mailboxes>"


@pytest.fixture(scope="module")
def mail_lab() -> Iterator[Passwords]:
    labctl.hold_lab()
    control.up([], only=SERVICES)
    values = secrets.load()
    yield Passwords({address: values[var] for address, var in identity.MAILBOXES.items()})
    control.up([], only=SERVICES)


@contextmanager
def fault(*names: str) -> Iterator[None]:
    """The mail services broken in these ways for the block, then good again."""
    control.up(list(names), only=SERVICES)
    try:
        yield
    finally:
        control.up([], only=SERVICES)


def tls_context(client: str | None = None) -> ssl.SSLContext:
    """Trust only the lab's IGC-like TEST root; optionally present a lab client certificate."""
    context = ssl.create_default_context(cafile=str(pki.path("anchors-test.pem")))
    if client:
        context.load_cert_chain(pki.path("clients", client, "chain.pem"),
                                pki.path("clients", client, "key.pem"))
    return context


def message(sender: str, recipient: str) -> tuple[EmailMessage, str]:
    token = f"mssante-check-{uuid.uuid4().hex}"
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, recipient, token
    mail["Message-ID"] = make_msgid(domain=identity.DOMAIN)
    mail.set_content(f"Test message {token}\n")
    return mail, token


def queue_id(reply: bytes) -> str:
    """``250 2.0.0 Ok: queued as 4Xyz`` -> ``4Xyz``."""
    return reply.decode().rsplit(" ", 1)[-1]


def submit(sender: str, password: str, recipient: str) -> tuple[str, str]:
    """Send one message over submission (STARTTLS, AUTH); its subject token and queue id."""
    mail, token = message(sender, recipient)
    with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
        session.starttls(context=tls_context())
        session.login(sender, password)
        assert session.mail(sender)[0] == 250
        assert session.rcpt(recipient)[0] == 250
        code, reply = session.data(mail.as_bytes())
    assert code == 250, reply
    return token, queue_id(reply)


def mx_session(client: str | None, sender: str, recipient: str = MEDECIN,
               mail: EmailMessage | None = None) -> tuple[int, str]:
    """One transaction on the MX port as a peer operator would open it, with client
    certificate ``client``: the code and text of the first refused step (TLS handshake, EHLO,
    MAIL, RCPT, DATA), or of the last step when all pass. Without ``mail`` it stops at RCPT."""
    with smtplib.SMTP(ports.HOST, ports.MX, timeout=TIMEOUT,
                      local_hostname=identity.PEER_HOST) as session:
        session.ehlo()
        try:
            session.starttls(context=tls_context(client))
        except ssl.SSLError as exc:
            return HANDSHAKE_FAILED, str(exc)
        steps = [session.ehlo, lambda: session.mail(sender), lambda: session.rcpt(recipient)]
        if mail is not None:
            steps.append(lambda: session.data(mail.as_bytes()))
        try:
            for step in steps:
                code, reply = step()
                if code >= 400:
                    return code, reply.decode(errors="replace")
        except smtplib.SMTPServerDisconnected as exc:
            return 421, str(exc)
        if mail is None:
            session.rset()
        return code, reply.decode(errors="replace")


@contextmanager
def mailbox(address: str, password: str, implicit_tls: bool = True) -> Iterator[IMAPClient]:
    """A logged-in IMAP session on INBOX, over IMAPS or STARTTLS."""
    if implicit_tls:
        client = IMAPClient(ports.HOST, ports.IMAPS, ssl=True, ssl_context=tls_context(),
                            timeout=TIMEOUT)
    else:
        client = IMAPClient(ports.HOST, ports.IMAP, ssl=False, timeout=TIMEOUT)
        client.starttls(tls_context())
    try:
        client.login(address, password)
        client.select_folder("INBOX")
        yield client
    finally:
        client.logout()


def find(client: IMAPClient, token: str) -> list[int]:
    client.noop()
    return client.search(["HEADER", "Subject", token])


def read_back(client: IMAPClient, token: str) -> bytes:
    """Wait (bounded) for the message carrying token, return it and delete it."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while not (uids := find(client, token)):
        if time.monotonic() > deadline:
            pytest.fail(f"message {token} not in the mailbox after {DELIVERY_DEADLINE}s")
        time.sleep(0.2)
    body = client.fetch(uids, ["RFC822"])[uids[0]][b"RFC822"]
    client.delete_messages(uids)
    client.expunge()
    return body


def ehlo_features(port: int, starttls: bool = False) -> dict[str, str]:
    with smtplib.SMTP(ports.HOST, port, timeout=TIMEOUT) as session:
        session.ehlo()
        if starttls:
            session.starttls(context=tls_context())
            session.ehlo()
        return dict(session.esmtp_features)


def imap_greeting_capabilities() -> tuple[bytes, ...]:
    """Capabilities of the STARTTLS IMAP port before TLS."""
    client = IMAPClient(ports.HOST, ports.IMAP, ssl=False, timeout=TIMEOUT)
    try:
        return client.capabilities()
    finally:
        client.logout()


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, bytes | None]:
    """TLS version and server certificate (DER) negotiated on a mail port; (None, None) when
    the server refuses the handshake."""
    try:
        if port in (ports.MX, ports.SUBMISSION):
            # No QUIT: the MX answers anything after a certificate-less handshake with 421.
            session = smtplib.SMTP(ports.HOST, port, timeout=TIMEOUT)
            try:
                session.starttls(context=context)
                return session.sock.version(), session.sock.getpeercert(binary_form=True)
            finally:
                session.close()
        if port == ports.IMAP:
            imap = imaplib.IMAP4(ports.HOST, port, timeout=TIMEOUT)
            imap.starttls(context)
        else:
            imap = imaplib.IMAP4_SSL(ports.HOST, port, ssl_context=context, timeout=TIMEOUT)
        try:
            return imap.sock.version(), imap.sock.getpeercert(binary_form=True)
        finally:
            imap.logout()
    except (ssl.SSLError, ConnectionError):
        return None, None


def legacy_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """Only this version, any certificate (what is served is compared separately)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def postqueue() -> dict[str, dict]:
    """The lab instance's queue (``postqueue -j``), by queue id."""
    output = run(["postqueue", "-c", str(POSTFIX_DIR), "-j"]).stdout
    return {entry["queue_id"]: entry for entry in map(json.loads, output.splitlines())}


def delete_queued(*ids: str) -> None:
    for queued in ids:
        run(["postsuper", "-c", str(POSTFIX_DIR), "-d", queued], check=False)


# --- the MX policy's decision (pure: no daemon) ---------------------------------------------
ISSUER = str(pki.CAS["test-ca"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
RULES = mailpolicy.Rules(
    operators={mailpolicy.domain_key(identity.PEER_DOMAIN): identity.PEER_HOST,
               mailpolicy.domain_key("hôpital-lab.mssante.fr"): "mail.hopital-lab.mssante.fr"},
    issuer_cn=ISSUER, require_certificate=True)
PEER_CERT = {"ccert_subject": identity.PEER_HOST, "ccert_issuer": ISSUER.replace(" ", "+20")}


@pytest.mark.parametrize(("request_", "require", "accepted"), [
    ({"sender": PEER_SENDER, **PEER_CERT}, True, True),
    ({"sender": "a@HÔPITAL-lab.mssante.fr", "ccert_subject": "mail.hopital-lab.mssante.fr",
      "ccert_issuer": ISSUER}, True, True),
    ({"sender": "a@xn--hpital-lab-rbb.mssante.fr",
      "ccert_subject": "mail.hopital-lab.mssante.fr", "ccert_issuer": ISSUER}, True, True),
    ({"sender": "", **PEER_CERT}, True, True),
    ({"sender": ROGUE_SENDER, **PEER_CERT}, True, False),
    ({"sender": PEER_SENDER, "ccert_subject": "mail.hopital-lab.mssante.fr",
      "ccert_issuer": ISSUER}, True, False),
    ({"sender": PEER_SENDER, "ccert_subject": identity.PEER_HOST,
      "ccert_issuer": "LAB AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"}, True, False),
    ({"sender": PEER_SENDER}, True, False),
    ({"sender": PEER_SENDER}, False, True),
    ({"sender": ROGUE_SENDER}, False, False),
    ({"sender": "", "ccert_subject": "mail.rogue-lab.mssante.fr", "ccert_issuer": ISSUER},
     True, False),
], ids=["peer", "idn-unicode", "idn-ascii", "bounce-from-peer", "unlisted-domain",
        "other-operator-cn", "other-issuer", "no-cert", "no-cert-optional",
        "no-cert-optional-unlisted", "bounce-from-unlisted"])
def test_mx_policy_decision(request_: dict[str, str], require: bool, accepted: bool) -> None:
    rules = dataclasses.replace(RULES, require_certificate=require)
    action = mailpolicy.decide(request_, rules)
    assert (action == "DUNNO") is accepted, action
    assert accepted or action.startswith("REJECT 5.7.1 ")


def test_mx_policy_reads_lab_files(mail_lab: Passwords) -> None:
    """The rules Postfix uses come from the whitelist XML and the TEST intermediate."""
    rules = mailpolicy.load_rules(POSTFIX_DIR / "mxpolicy.cf")
    assert rules.issuer_cn == ISSUER
    assert rules.operators[identity.PEER_DOMAIN] == identity.PEER_HOST
    assert identity.ROGUE_DOMAIN not in rules.operators
    assert rules.require_certificate


# --- the good lab -------------------------------------------------------------------------
def test_up_twice_restarts_nothing(mail_lab: Passwords) -> None:
    assert control.up([], only=SERVICES) == ["dovecot: up", "postfix: up"]


def test_submission_to_imap_round_trip(mail_lab: Passwords) -> None:
    """AUTH over STARTTLS on submission, LMTP to Dovecot, read back over IMAP STARTTLS."""
    token, _ = submit(MEDECIN, mail_lab[MEDECIN], SECRETARIAT)
    with mailbox(SECRETARIAT, mail_lab[SECRETARIAT],
                 implicit_tls=False) as client:
        body = read_back(client, token)
    assert f"Test message {token}".encode() in body
    assert f"From: {MEDECIN}".encode() in body


def test_peer_mail_over_mx_is_delivered(mail_lab: Passwords) -> None:
    """The whitelisted peer, with its IGC TEST client certificate, reaches a lab mailbox."""
    mail, token = message(PEER_SENDER, MEDECIN)
    code, reply = mx_session("peer", PEER_SENDER, MEDECIN, mail)
    assert code == 250, reply
    with mailbox(MEDECIN, mail_lab[MEDECIN]) as client:
        body = read_back(client, token)
    # Postfix records the verified peer certificate in its (folded) Received header.
    received = re.sub(rb"\r?\n[ \t]+", b" ", body)
    assert f'Client CN "{identity.PEER_HOST}", Issuer "{ISSUER}" (verified OK)'.encode() \
        in received


def test_mx_refuses_mail_before_starttls(mail_lab: Passwords) -> None:
    with smtplib.SMTP(ports.HOST, ports.MX, timeout=TIMEOUT) as session:
        session.ehlo()
        assert "starttls" in session.esmtp_features
        assert "auth" not in session.esmtp_features
        code, reply = session.mail(PEER_SENDER)
    assert code == 530, reply


@pytest.mark.parametrize("client", [None, "foreign"], ids=["no-cert", "foreign-ca-cert"])
def test_mx_refuses_peer_without_igc_certificate(mail_lab: Passwords,
                                                 client: str | None) -> None:
    code, reply = mx_session(client, PEER_SENDER)
    assert code in (421, HANDSHAKE_FAILED), reply


@pytest.mark.parametrize(("client", "sender"), [("rogue", ROGUE_SENDER), ("peer", ROGUE_SENDER),
                                                ("rogue", PEER_SENDER)],
                         ids=["rogue-domain", "listed-cert-unlisted-domain", "cn-mismatch"])
def test_mx_refuses_sender_not_matching_whitelist(mail_lab: Passwords, client: str,
                                                  sender: str) -> None:
    code, reply = mx_session(client, sender)
    assert code == 554, reply
    assert "5.7.1" in reply


def test_mx_takes_mail_only_for_lab_domain(mail_lab: Passwords) -> None:
    code, reply = mx_session("peer", PEER_SENDER, OUTSIDE)
    assert code == 554 and "Relay access denied" in reply, reply
    code, reply = mx_session("peer", PEER_SENDER, f"nobody@{identity.DOMAIN}")
    assert code == 550, reply


def test_mx_offers_no_auth(mail_lab: Passwords) -> None:
    with smtplib.SMTP(ports.HOST, ports.MX, timeout=TIMEOUT) as session:
        session.starttls(context=tls_context("peer"))
        session.ehlo()
        assert "auth" not in session.esmtp_features


def test_submission_auth_only_after_starttls(mail_lab: Passwords) -> None:
    before = ehlo_features(ports.SUBMISSION)
    assert "starttls" in before and "auth" not in before
    after = ehlo_features(ports.SUBMISSION, starttls=True)
    assert "PLAIN" in after["auth"].split()
    assert after["size"] == str(20 * 1024 * 1024)
    assert "dsn" in after


def test_submission_relays_only_for_authenticated_users(mail_lab: Passwords) -> None:
    with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
        assert session.mail(MEDECIN)[0] == 530          # no transaction before STARTTLS
        session.starttls(context=tls_context())
        assert session.mail(MEDECIN)[0] == 250
        for recipient in (OUTSIDE, SECRETARIAT):
            assert session.rcpt(recipient)[0] == 554
        session.rset()
        session.login(MEDECIN, mail_lab[MEDECIN])
        assert session.mail(MEDECIN)[0] == 250
        assert session.rcpt(OUTSIDE)[0] == 250          # never sent: RSET, and no smtp client
        session.rset()


def test_submission_wrong_password_535(mail_lab: Passwords) -> None:
    with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
        session.starttls(context=tls_context())
        session.ehlo()
        session.user, session.password = MEDECIN, "not-" + mail_lab[MEDECIN]
        # One mechanism, one attempt (login() would retry with every mechanism offered).
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            session.auth("PLAIN", session.auth_plain)
    assert refused.value.smtp_code == 535


def test_imap_login_disabled_before_starttls(mail_lab: Passwords) -> None:
    capabilities = imap_greeting_capabilities()
    assert b"STARTTLS" in capabilities and b"LOGINDISABLED" in capabilities
    client = IMAPClient(ports.HOST, ports.IMAP, ssl=False, timeout=TIMEOUT)
    try:
        with pytest.raises(IMAPClient.Error):
            client.login(MEDECIN, mail_lab[MEDECIN])
    finally:
        client.logout()


@legacy_probe
@pytest.mark.parametrize("port", [ports.MX, ports.SUBMISSION, ports.IMAP, ports.IMAPS],
                         ids=["mx", "submission", "imap", "imaps"])
def test_mail_ports_serve_lab_chain_tls12_13_only(mail_lab: Passwords, port: int) -> None:
    version, der = handshake(port, tls_context())
    assert version == "TLSv1.3"
    good = x509.load_pem_x509_certificate(pki.path("server", "good", "cert.pem").read_bytes())
    assert der == good.public_bytes(Encoding.DER)
    tls12 = tls_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(port, tls12)[0] == "TLSv1.2"
    assert handshake(port, legacy_context(ssl.TLSVersion.TLSv1_1)) == (None, None)


def test_whitelist_copy_is_fresh_and_excludes_rogue(mail_lab: Passwords) -> None:
    listed = whitelist.parse((POSTFIX_DIR / "listeblanchemssante.xml").read_bytes())
    age = dt.datetime.now(dt.UTC) - listed.generated_at
    assert dt.timedelta(0) <= age < WHITELIST_FRESHNESS
    names = {entry.name for entry in listed.entries}
    assert {identity.DOMAIN, identity.PEER_DOMAIN} <= names
    assert identity.ROGUE_DOMAIN not in names


# --- each fault changes the behaviour it names ------------------------------------------------
def test_fault_smtp_no_starttls(mail_lab: Passwords) -> None:
    with fault("smtp-no-starttls"):
        assert "starttls" not in ehlo_features(ports.SUBMISSION)
        assert "starttls" in ehlo_features(ports.MX)          # only submission is broken
    assert "starttls" in ehlo_features(ports.SUBMISSION)


def test_fault_smtp_auth_before_tls(mail_lab: Passwords) -> None:
    password = mail_lab[MEDECIN]
    with fault("smtp-auth-before-tls"):
        assert "auth" in ehlo_features(ports.SUBMISSION)
        with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
            assert session.login(MEDECIN, password)[0] == 235     # credentials in clear
    assert "auth" not in ehlo_features(ports.SUBMISSION)


def test_fault_open_relay(mail_lab: Passwords) -> None:
    with fault("open-relay"):
        code, reply = mx_session("peer", PEER_SENDER, OUTSIDE)
        assert code == 250, reply
    assert mx_session("peer", PEER_SENDER, OUTSIDE)[0] == 554


def test_fault_mx_no_client_cert(mail_lab: Passwords) -> None:
    with fault("mx-no-client-cert"):
        code, reply = mx_session(None, PEER_SENDER)
        assert code == 250, reply
        # The whitelist still applies to the sender's domain.
        assert mx_session(None, ROGUE_SENDER)[0] == 554
    assert mx_session(None, PEER_SENDER)[0] in (421, HANDSHAKE_FAILED)


def test_fault_mx_any_sender(mail_lab: Passwords) -> None:
    with fault("mx-any-sender"):
        code, reply = mx_session("rogue", ROGUE_SENDER)
        assert code == 250, reply
    assert mx_session("rogue", ROGUE_SENDER)[0] == 554


def test_fault_mx_rcpt_refuses_all(mail_lab: Passwords) -> None:
    """The third-party MX of issue 13: 550 5.1.1 for every recipient, whatever the certificate,
    because it asks for none and has no whitelist (a rogue sender gets past MAIL)."""
    with fault("mx-rcpt-refuses-all"):
        for client, sender in ((None, PEER_SENDER), ("foreign", PEER_SENDER),
                               ("peer", PEER_SENDER), ("rogue", ROGUE_SENDER)):
            code, reply = mx_session(client, sender)
            assert code == 550 and reply.startswith("5.1.1 ") and "User unknown" in reply, (
                client, sender, reply)
        with smtplib.SMTP(ports.HOST, ports.MX, timeout=TIMEOUT) as session:
            session.ehlo()
            assert session.mail(PEER_SENDER)[0] == 530      # TLS is still required
    assert mx_session("peer", PEER_SENDER)[0] == 250
    assert mx_session(None, PEER_SENDER)[0] in (421, HANDSHAKE_FAILED)
    assert mx_session("peer", ROGUE_SENDER)[0] == 554


def test_fault_auth_refuses_all(mail_lab: Passwords) -> None:
    """The right password is refused by IMAP (NO [AUTHENTICATIONFAILED]) and by submission
    (535), the way a wrong one is; mail is still delivered (LMTP does not authenticate)."""
    password = mail_lab[MEDECIN]
    with fault("auth-refuses-all"):
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            with mailbox(MEDECIN, password):
                pass
        with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
            session.starttls(context=tls_context())
            session.ehlo()
            session.user, session.password = MEDECIN, password
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                session.auth("PLAIN", session.auth_plain)
        assert refused.value.smtp_code == 535
        mail, token = message(PEER_SENDER, MEDECIN)
        assert mx_session("peer", PEER_SENDER, MEDECIN, mail)[0] == 250
    with mailbox(MEDECIN, password) as client:
        read_back(client, token)
    with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as session:
        session.starttls(context=tls_context())
        assert session.login(MEDECIN, password)[0] == 235


def test_fault_imap_plaintext_login(mail_lab: Passwords) -> None:
    password = mail_lab[MEDECIN]
    with fault("imap-plaintext-login"):
        assert b"LOGINDISABLED" not in imap_greeting_capabilities()
        client = IMAPClient(ports.HOST, ports.IMAP, ssl=False, timeout=TIMEOUT)
        try:
            client.login(MEDECIN, password)                        # in clear
        finally:
            client.logout()
    assert b"LOGINDISABLED" in imap_greeting_capabilities()


def test_fault_imap_any_password(mail_lab: Passwords) -> None:
    wrong = f"wrong-{uuid.uuid4()}"
    with fault("imap-any-password"):
        with mailbox(MEDECIN, wrong):                                 # IMAP takes it
            pass
        with smtplib.SMTP(ports.HOST, ports.SUBMISSION, timeout=TIMEOUT) as smtp:
            smtp.starttls(context=tls_context())
            smtp.login(MEDECIN, wrong)                               # and so does submission
    with pytest.raises(imaplib.IMAP4.error), mailbox(MEDECIN, wrong):
        pass


def test_fault_imap_no_idle(mail_lab: Passwords) -> None:
    with fault("imap-no-idle"), mailbox(MEDECIN, mail_lab[MEDECIN]) as client:
        assert b"IDLE" not in client.capabilities()
        assert b"UIDPLUS" in client.capabilities()
    with mailbox(MEDECIN, mail_lab[MEDECIN]) as client:
        assert b"IDLE" in client.capabilities()


def test_fault_imap_store_unavailable(mail_lab: Passwords) -> None:
    with fault("imap-store-unavailable"):
        client = IMAPClient(ports.HOST, ports.IMAPS, ssl=True, ssl_context=tls_context(),
                            timeout=TIMEOUT)
        try:
            client.login(MEDECIN, mail_lab[MEDECIN])                  # login still works
            with pytest.raises(imaplib.IMAP4.error, match="SERVERBUG"):
                client.select_folder("INBOX", readonly=True)
        finally:
            client.logout()
    with mailbox(MEDECIN, mail_lab[MEDECIN]):                          # selects INBOX again
        pass


def test_fault_delivery_broken(mail_lab: Passwords) -> None:
    password = mail_lab[MEDECIN]
    with fault("delivery-broken"):
        token, queued = submit(MEDECIN, password, MEDECIN)
        try:
            with mailbox(MEDECIN, password) as client:
                deadline = time.monotonic() + NOT_DELIVERED_AFTER
                while time.monotonic() < deadline:
                    assert not find(client, token), "delivered despite delivery-broken"
                    time.sleep(0.25)
            entry = postqueue().get(queued)
            assert entry is not None, "accepted message is not in the queue"
            assert entry["queue_name"] in ("deferred", "active", "incoming")
        finally:
            delete_queued(queued)


def test_fault_whitelist_stale(mail_lab: Passwords) -> None:
    path = POSTFIX_DIR / "listeblanchemssante.xml"
    with fault("whitelist-stale"):
        generated = whitelist.parse(path.read_bytes()).generated_at
        assert dt.datetime.now(dt.UTC) - generated > WHITELIST_FRESHNESS
    generated = whitelist.parse(path.read_bytes()).generated_at
    assert dt.datetime.now(dt.UTC) - generated < WHITELIST_FRESHNESS


@legacy_probe
def test_fault_tls_and_cert_faults_reach_mail_ports(mail_lab: Passwords) -> None:
    """lab/tls.py drives the mail ports too: a TLS 1.0 handshake and the expired certificate."""
    expired = x509.load_pem_x509_certificate(pki.path("server", "expired", "cert.pem").read_bytes())
    with fault("tls-legacy", "cert-expired"):
        for port in (ports.SUBMISSION, ports.IMAP, ports.IMAPS):
            version, der = handshake(port, legacy_context(ssl.TLSVersion.TLSv1))
            assert version == "TLSv1", port
            assert der == expired.public_bytes(Encoding.DER), port


# --- stopping ---------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="the lab runs daemons as their own users")
def test_stop_leaves_no_process(mail_lab: Passwords) -> None:
    from lab.services import load
    pidfiles = [paths.service_dir("dovecot") / "run" / "master.pid",
                paths.service_dir("dovecot") / "relay.pid",
                POSTFIX_DIR / "queue" / "pid" / "master.pid",
                POSTFIX_DIR / "run" / "mxpolicy.pid"]
    pids = [read_pid(pidfile) for pidfile in pidfiles]
    assert None not in pids, pidfiles
    family = set().union(*(labctl.descendants(pid) for pid in pids if pid is not None))
    try:
        for name in reversed(SERVICES):
            load(name).stop()
        assert not [pid for pid in family if pid_alive(pid)]
        assert not [port for port in (ports.MX, ports.SUBMISSION, ports.IMAP, ports.IMAPS,
                                      ports.LMTP) if port_open(port)]
    finally:
        control.up([], only=SERVICES)
