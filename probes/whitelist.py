"""The MSSanté whitelist ("liste blanche") format: reading it and writing it.

The agency publishes the list of MSSanté domains as XML (DESIGN.md §8): namespace
``https://listeblanche.mssante.fr/schema``, a ``<DateDeGeneration>`` and one ``<Domaine>``
per domain with ``<Nom>``, ``<Description>``, ``<DNCertificatOperateur>``,
``<ResponsableContact>``, ``<SupportContact>``, ``<DateMAJ>``. :func:`parse` judges a real
operator's copy in the mail suite; the lab writes its own with :func:`render`
(``lab/whitelist.py``).

Only the elements the checks depend on are required (the generation date for freshness, each
domain's name and operator DN for the mTLS match): the official schema could not be read, so
the informative elements are accepted when absent rather than failing a real list on them.
"""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass

NAMESPACE = "https://listeblanche.mssante.fr/schema"
ROOT = "ListeBlanche"     # our name for the root element when we write one


class WhitelistError(ValueError):
    """The document is not a whitelist this module can read; the message says why."""


@dataclass(frozen=True)
class WhitelistEntry:
    """One ``<Domaine>``: an MSSanté domain and the certificate subject its operator uses."""

    name: str                                  # <Nom>, may contain non-ASCII characters
    operator_dn: str                           # <DNCertificatOperateur>, RFC 4514, CN first
    description: str | None = None             # <Description>
    responsible_contact: str | None = None     # <ResponsableContact>
    support_contact: str | None = None         # <SupportContact>
    updated_at: dt.datetime | None = None      # <DateMAJ>


@dataclass(frozen=True)
class Whitelist:
    generated_at: dt.datetime                  # <DateDeGeneration>, timezone-aware
    entries: list[WhitelistEntry]


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _format_date(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the way the agency's timestamps read."""
    if value.tzinfo is None:
        raise WhitelistError(f"naive datetime {value.isoformat()}: give a timezone")
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_date(text: str, where: str) -> dt.datetime:
    """ISO 8601 date or date-time; a value without offset is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise WhitelistError(f"{where}: {text!r} is not an ISO 8601 date") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# (dataclass field, element) in document order, DateMAJ aside (it is a date).
_FIELDS = (("name", "Nom"), ("description", "Description"),
           ("operator_dn", "DNCertificatOperateur"), ("responsible_contact", "ResponsableContact"),
           ("support_contact", "SupportContact"))


def domain_key(domain: str) -> str:
    """One spelling for comparing domains: lower-case IDNA (``hôpital`` = ``xn--hpital-…``)."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def render(whitelist: Whitelist) -> str:
    """The XML document (to be written UTF-8); optional elements absent when None."""
    root = ET.Element(_q(ROOT))
    ET.SubElement(root, _q("DateDeGeneration")).text = _format_date(whitelist.generated_at)
    for entry in whitelist.entries:
        domain = ET.SubElement(root, _q("Domaine"))
        for field, tag in _FIELDS:
            value = getattr(entry, field)
            if value is not None:
                ET.SubElement(domain, _q(tag)).text = value
        if entry.updated_at is not None:
            ET.SubElement(domain, _q("DateMAJ")).text = _format_date(entry.updated_at)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", default_namespace=NAMESPACE)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _text(parent: ET.Element, tag: str) -> str | None:
    """Stripped text of an optional child element; None when the element is absent."""
    element = parent.find(_q(tag))
    return None if element is None else (element.text or "").strip()


def _required(parent: ET.Element, tag: str, where: str) -> str:
    text = _text(parent, tag)
    if not text:
        raise WhitelistError(f"{where}: {'empty' if text == '' else 'missing'} <{tag}>")
    return text


def parse(document: str | bytes) -> Whitelist:
    """Read a whitelist document; raise WhitelistError naming the first problem found."""
    # The list comes from the network: no document type, hence no entity expansion.
    raw = document.encode() if isinstance(document, str) else document
    if b"<!DOCTYPE" in raw.upper():
        raise WhitelistError("document type declarations are not accepted")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise WhitelistError(f"not well-formed XML: {exc}") from None
    # The root's local name is not in any source we could read: judge its namespace only.
    if not root.tag.startswith(f"{{{NAMESPACE}}}"):
        raise WhitelistError(f"root element {root.tag!r} is not in namespace {NAMESPACE}")
    generated = _required(root, "DateDeGeneration", ROOT)
    entries = []
    for index, domain in enumerate(root.findall(_q("Domaine")), start=1):
        where = f"<Domaine> #{index}"
        updated = _text(domain, "DateMAJ")
        entries.append(WhitelistEntry(
            name=_required(domain, "Nom", where),
            operator_dn=_required(domain, "DNCertificatOperateur", where),
            description=_text(domain, "Description"),
            responsible_contact=_text(domain, "ResponsableContact"),
            support_contact=_text(domain, "SupportContact"),
            updated_at=_parse_date(updated, f"{where} <DateMAJ>") if updated else None))
    return Whitelist(_parse_date(generated, f"{ROOT} <DateDeGeneration>"), entries)
