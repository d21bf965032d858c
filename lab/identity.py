"""Names the lab uses: its domain, hosts, mailboxes and the peers of its trust space.

All names are fake and carry a LAB marker so that nothing here can be mistaken for the real
MSSanté hierarchy.
"""
from __future__ import annotations

DOMAIN = "lab.mssante.fr"                 # the lab operator's own MSSanté domain
MAIL_HOST = "mail.lab.mssante.fr"
API_HOST = "api.lab.mssante.fr"
WEB_HOST = "www.lab.mssante.fr"
# Names every lab server certificate carries, so clients can verify against "localhost".
SERVER_NAMES = ("localhost", MAIL_HOST, API_HOST, WEB_HOST, DOMAIN)

OPERATOR_ORG = "LAB Operateur MSSante"
OPERATOR_OU = "LAB 00000000000000"        # SIRET/FINESS position in real DNs
OPERATOR_ST = "Paris (75)"

PEER_DOMAIN = "peer-lab.mssante.fr"       # whitelisted peer operator (valid client cert)
PEER_HOST = "mail.peer-lab.mssante.fr"
ROGUE_DOMAIN = "rogue-lab.mssante.fr"     # IGC-like cert, but not on the whitelist

# Mailboxes: address -> secrets.env variable holding its password.
MAILBOXES = {
    "medecin.test@lab.mssante.fr": "MSSANTE_LAB_MEDECIN_PASSWORD",
    "secretariat.test@lab.mssante.fr": "MSSANTE_LAB_SECRETARIAT_PASSWORD",
}
# API administrator (the seed logs in as admin@<domain>).
ADMIN_EMAIL = "admin@lab.mssante.fr"
ADMIN_PASSWORD_ENV = "MSSANTE_LAB_ADMIN_PASSWORD"
DB_PASSWORD_ENV = "MSSANTE_LAB_DB_PASSWORD"
REDIS_PASSWORD_ENV = "MSSANTE_LAB_REDIS_PASSWORD"
API_SECRET_ENV = "MSSANTE_LAB_API_SECRET"

DB_NAME = "mssante"
DB_USER = "mssante"
