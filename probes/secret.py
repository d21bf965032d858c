"""Secrets that cannot be printed by accident: a ``str`` whose ``repr`` is masked.

Passwords and tokens travel as :class:`Secret` from the moment they are read (environment,
``env_file``, an API's login answer). Everything that shows a value *for a human* goes through
``repr`` — assertion messages and pytest's assertion rewriting (``saferepr``, which truncates:
``('b@examp...1+Hq4/rT8yL3vN')``), tracebacks' arguments and ``--showlocals``, dataclass and
tuple reprs, ``%r`` and ``!r`` — and sees ``Secret('********')``.

``str()``, f-strings, ``%s``, ``json.dumps`` and ``.encode()`` still give the value: smtplib
builds AUTH PLAIN with ``%s``, imaplib quotes the password as text, psycopg writes it into a
conninfo string, redis-py and httpx encode it. Masking those would break every client, so a
string *built* from a secret is a plain ``str``; :mod:`probes.redaction` (every Secret
registers itself) masks it, its fragments and its encoded forms in whatever is written.
"""
from __future__ import annotations

from typing import NamedTuple

from probes import redaction

SHOWN = "Secret('********')"


class Secret(str):
    """A secret value; ``repr`` never shows it (``str`` does: libraries need it)."""

    __slots__ = ()

    def __new__(cls, value: str, user: str | None = None) -> Secret:
        secret = super().__new__(cls, value)
        redaction.register(secret, user)
        return secret

    def __repr__(self) -> str:
        return SHOWN


class Mailbox(NamedTuple):
    """A test mailbox: unpacks as ``(address, password)`` like the tuples it replaces."""

    address: str
    password: Secret
