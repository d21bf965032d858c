"""The lab's port map: every service on 127.0.0.1, fixed unprivileged ports.

The role each port plays on a real operator is in the comment; the README shows this table.
"""
from __future__ import annotations

HOST = "127.0.0.1"

MX = 10025            # inter-operator SMTP ("port 25"): TLS + client certificate required
SUBMISSION = 10587    # SMTP submission ("587"): STARTTLS, AUTH after TLS
IMAP = 10143          # IMAP with STARTTLS ("143")
IMAPS = 10993         # IMAP over implicit TLS ("993")
LMTP = 10024          # Dovecot LMTP, Postfix delivers local mail here
HTTPS_API = 10443     # nginx TLS in front of the reference API
HTTPS_FRONT = 10444   # nginx TLS serving the front-end page
API_BACKEND = 10080   # reference API, plain HTTP, loopback only (behind nginx)
POSTGRES = 10432
REDIS = 10379
PROMETHEUS = 10090
ALERTMANAGER = 10093

ALL: dict[str, int] = {
    "mx": MX,
    "submission": SUBMISSION,
    "imap": IMAP,
    "imaps": IMAPS,
    "lmtp": LMTP,
    "https-api": HTTPS_API,
    "https-front": HTTPS_FRONT,
    "api-backend": API_BACKEND,
    "postgres": POSTGRES,
    "redis": REDIS,
    "prometheus": PROMETHEUS,
    "alertmanager": ALERTMANAGER,
}
