"""The lab's own whitelist ("liste blanche"), in the agency's format (probes/whitelist.py)."""
from __future__ import annotations

import datetime as dt

from lab import identity, pki
from probes.whitelist import Whitelist, WhitelistEntry


def lab_whitelist(generated_at: dt.datetime) -> Whitelist:
    """The lab's own whitelist: itself, its peer, a non-ASCII domain — never the rogue one."""
    def entry(name: str, dn: str, description: str, contact: str) -> WhitelistEntry:
        return WhitelistEntry(name=name, operator_dn=dn, description=description,
                              responsible_contact=f"responsable@{contact}",
                              support_contact=f"support@{contact}", updated_at=generated_at)

    return Whitelist(generated_at, [
        entry(identity.DOMAIN, pki.server_subject_dn(), "LAB operateur de reference",
              identity.DOMAIN),
        entry(identity.PEER_DOMAIN, pki.client_subject_dn("peer"), "LAB operateur voisin",
              identity.PEER_DOMAIN),
        entry("hôpital-lab.mssante.fr",
              "CN=mail.hopital-lab.mssante.fr,OU=LAB 33333333333333,O=LAB Hôpital Sud,"
              "ST=Gironde (33),C=FR", "LAB établissement au nom accentué",
              "hôpital-lab.mssante.fr"),
    ])
