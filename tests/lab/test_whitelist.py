"""The whitelist format: what we write reads back identically, and what is not a whitelist
is refused with a reason (the mail suite relies on parse() to judge a real operator's copy).
"""
from __future__ import annotations

import datetime as dt

import pytest

from lab import identity, pki
from lab.whitelist import lab_whitelist
from probes.whitelist import NAMESPACE, Whitelist, WhitelistEntry, WhitelistError, parse, render

GENERATED = dt.datetime(2025, 3, 1, 6, 30, tzinfo=dt.UTC)


def minimal(date: str = "<DateDeGeneration>2025-03-01T06:30:00Z</DateDeGeneration>",
            domain: str = "<Nom>a.mssante.fr</Nom><DNCertificatOperateur>CN=mail.a"
                          "</DNCertificatOperateur>",
            namespace: str = NAMESPACE) -> str:
    return f'<ListeBlanche xmlns="{namespace}">{date}<Domaine>{domain}</Domaine></ListeBlanche>'


def test_round_trip_keeps_non_ascii() -> None:
    original = lab_whitelist(GENERATED)
    text = render(original)
    assert "hôpital-lab.mssante.fr" in text
    assert parse(text) == original
    assert parse(text.encode("utf-8")) == original


def test_rendered_document_shape() -> None:
    text = render(Whitelist(GENERATED, [WhitelistEntry("é.mssante.fr", "CN=x")]))
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<ListeBlanche xmlns="'
                           f'{NAMESPACE}">')
    assert "<DateDeGeneration>2025-03-01T06:30:00Z</DateDeGeneration>" in text
    assert "<Description>" not in text      # absent fields are not invented


def test_lab_whitelist_content() -> None:
    entries = {e.name: e for e in lab_whitelist(GENERATED).entries}
    assert entries[identity.DOMAIN].operator_dn == pki.server_subject_dn()
    assert entries[identity.PEER_DOMAIN].operator_dn == pki.client_subject_dn("peer")
    assert identity.ROGUE_DOMAIN not in entries
    assert any(not name.isascii() for name in entries)


def test_dates_are_timezone_aware() -> None:
    parsed = parse(minimal(date="<DateDeGeneration>2025-03-01T08:30:00+02:00"
                                "</DateDeGeneration>"))
    assert parsed.generated_at == GENERATED
    naive = parse(minimal(date="<DateDeGeneration>2025-03-01T06:30:00</DateDeGeneration>"))
    assert naive.generated_at == GENERATED   # no offset: read as UTC


def test_optional_elements_may_be_absent() -> None:
    entry = parse(minimal()).entries[0]
    assert entry == WhitelistEntry("a.mssante.fr", "CN=mail.a")


@pytest.mark.parametrize(("document", "message"), [
    (minimal(namespace="https://example.org/other"), "not in namespace"),
    (minimal(date=""), "missing <DateDeGeneration>"),
    (minimal(date="<DateDeGeneration>hier</DateDeGeneration>"), "not an ISO 8601 date"),
    (minimal(domain="<DNCertificatOperateur>CN=x</DNCertificatOperateur>"), "missing <Nom>"),
    (minimal(domain="<Nom>a</Nom><DNCertificatOperateur> </DNCertificatOperateur>"),
     "empty <DNCertificatOperateur>"),
    (minimal(domain="<Nom>a</Nom><DNCertificatOperateur>CN=x</DNCertificatOperateur>"
                    "<DateMAJ>2025-13-01</DateMAJ>"), "<DateMAJ>"),
    ("<ListeBlanche", "not well-formed"),
    ('<!DOCTYPE x [<!ENTITY a "b">]>' + minimal(), "document type"),
], ids=["namespace", "no-date", "bad-date", "no-name", "empty-dn", "bad-datemaj", "malformed",
        "doctype"])
def test_invalid_documents_are_refused(document: str, message: str) -> None:
    with pytest.raises(WhitelistError, match=message):
        parse(document)


def test_render_refuses_naive_datetime() -> None:
    with pytest.raises(WhitelistError, match="timezone"):
        render(Whitelist(dt.datetime(2025, 3, 1), []))
