"""The lab's fault catalogue: one named, realistic way to be broken each.

Services read the active set from :class:`lab.services.base.LabContext` and render their
configuration accordingly; faults combine.
"""
from __future__ import annotations

FAULTS: dict[str, str] = {
    "tls-legacy": "every TLS endpoint also accepts TLS 1.0 and TLS 1.1",
    "weak-ciphers": "every TLS endpoint also offers CBC and static-RSA TLS 1.2 suites",
    "cert-expiring": "served server certificate expires in 5 days",
    "cert-expired": "served server certificate expired yesterday",
    "cert-untrusted": "served chain leads to a foreign CA, not IGC Santé",
    "cert-prod-root": "served chain is the PRODUCTION one where TEST is expected",
    "smtp-no-starttls": "submission port does not offer STARTTLS",
    "smtp-auth-before-tls": "submission port offers AUTH before STARTTLS",
    "open-relay": "MX port relays mail for any recipient domain",
    "mx-no-client-cert": "MX port accepts peers without a client certificate",
    "mx-any-sender": "MX port does not enforce the whitelist (any sender domain, any DN)",
    "mx-rcpt-refuses-all": "MX port asks no client certificate, enforces no whitelist, and "
                           "answers every recipient 550 5.1.1 User unknown",
    "imap-plaintext-login": "IMAP allows LOGIN before STARTTLS (no LOGINDISABLED)",
    "imap-any-password": "IMAP and submission accept any password for a known mailbox",
    "auth-refuses-all": "IMAP and submission refuse every password, the right one too",
    "imap-no-idle": "IMAP does not offer IDLE (clients can only poll for new mail)",
    "imap-store-unavailable": "IMAP logs in but cannot open the mail store (INBOX unusable)",
    "api-down": "reference API process not running (nginx answers 502)",
    "health-lies": "API /health says ok without asking the database (and the database is down)",
    "auth-broken": "API login refuses every password",
    "api-health-shape": "API /health answers readiness as {\"status\": \"ready\", \"checks\": "
                        "{\"db\": \"ok\", \"redis\": \"ok\"}} (a healthy platform, another "
                        "contract)",
    "db-down": "PostgreSQL not running",
    "redis-down": "Redis not running",
    "redis-no-password": "Redis accepts commands without a password",
    "process-impostor": "Redis is stopped on its port while another redis-server, holding "
                        "an unrelated port, runs on the host",
    "prometheus-down": "Prometheus not running",
    "alertmanager-down": "Alertmanager not running (Prometheus still lists it and sends to it)",
    "delivery-broken": "mail is accepted by Postfix but never reaches the mailbox",
    "whitelist-stale": "the MTA's whitelist copy is older than its freshness bound",
}


def validate(names: list[str] | tuple[str, ...] | set[str]) -> frozenset[str]:
    """Check fault names; an unknown one is an error naming it and the valid ones."""
    unknown = sorted(set(names) - FAULTS.keys())
    if unknown:
        from lab.process import LabError

        raise LabError(f"unknown fault(s) {', '.join(unknown)}; see `python -m lab faults`")
    return frozenset(names)
