"""Getting the whitelist ("liste blanche") an MTA uses, wherever the profile says it is.

A profile names it as a file path (the copy on the MTA's host, relative to the profile) or an
HTTPS URL (the agency's publication, or the operator's mirror). Over HTTPS the server must
prove itself with a chain to the profile's trust anchors; plain HTTP is refused, because a list
that decides who may send health mail must not be replaceable in transit.
"""
from __future__ import annotations

from pathlib import Path

from probes.http import BoundedClient
from probes.tlsctx import client_context


def is_url(source: str) -> bool:
    return "://" in source


def read_whitelist(source: str, base: Path, ca_file: Path | None, timeout: float) -> bytes:
    """The document's bytes from a path (relative to ``base``) or an ``https://`` URL (one
    exchange under a deadline of ``timeout``: :class:`~probes.errors.CouldNotRun` when the
    server cannot be reached or does not finish answering)."""
    if not is_url(source):
        return (base / source).read_bytes()
    if not source.startswith("https://"):
        raise ValueError(f"whitelist URL {source!r} is not HTTPS")
    with BoundedClient(verify=client_context(ca_file), deadline_s=timeout) as client:
        response = client.get(source)
    response.raise_for_status()
    return response.content

