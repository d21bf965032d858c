"""Secret redaction: the registry of secrets and :func:`redact`, for every text the suite writes.

A secret is registered when it is read (:class:`probes.secret.Secret` registers itself; the
profile loader registers every secret the profile names, in every process, so an xdist
controller can mask what a worker's failure text carries). :func:`redact` then masks:

- the secret itself, whatever its length (a 1-character secret masks that character
  everywhere: short secrets cost readability, never confidentiality);
- any 8-character fragment of it, so a repr that cut the front or back off a secret
  (pytest's ``'b@examp...1+Hq4/rT8yL3vN'``) is masked too;
- its base64 forms, as SMTP AUTH PLAIN/LOGIN and IMAP AUTHENTICATE send them: the secret is
  encoded at the three byte alignments and the characters that depend only on its bytes are
  masked (4 characters or more), plus the whole ``\\0user\\0password`` when the user is known;
- its URL-encoded forms (``quote``, ``quote_plus``) and the escaped forms repr(), JSON, HTML
  and XML give it, so a writer that escapes before redacting still masks it.

Patterns also catch what was never registered (AUTH lines, Bearer tokens, passwords in JSON
or ``key=value``, the password of a URL's ``user:password@``). Registered forms become one
compiled regex, rebuilt only when a secret is added, so a run's reports stay fast to redact.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
FRAGMENT = 8            # any run of this many characters of a secret is masked
MIN_BASE64 = 4          # shorter base64 pieces are too common to mask (the secret itself is)
_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s'\"]+"),
    re.compile(r"(?i)(\"(?:password|token|secret)\"\s*:\s*\")[^\"]*"),
    re.compile(r"(?m)((?:^|C:\s*)AUTH\s+(?:PLAIN|LOGIN|XOAUTH2)\s+)\S+"),  # SMTP client
    re.compile(r"(?m)(^\s*(?:C:\s*)?[A-Za-z0-9.]+\s+LOGIN\s+\S+\s+)\S+"),  # IMAP "tag LOGIN u p"
    re.compile(r"(?i)((?:password|passwd|pwd)=)[^\s&;]+"),
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/?#@:'\"<>]*:)[^\s/?#@'\"<>]+(?=@)"),  # user:pass@
)


class _Registry:
    """Registered secrets (with the user names they log in with) and their compiled forms."""

    def __init__(self) -> None:
        self.secrets: dict[str, set[str]] = {}
        self._regex: re.Pattern[str] | None = None

    def add(self, value: str, user: str | None) -> None:
        users = self.secrets.get(value)
        if users is None:
            self.secrets[value] = users = set()
        elif user is None or user in users:
            return
        if user:
            users.add(user)
        self._regex = None

    def regex(self) -> re.Pattern[str] | None:
        if self._regex is None and self.secrets:
            tokens: set[str] = set()
            for value, users in self.secrets.items():
                for form in forms(value, users):
                    if len(form) < FRAGMENT:
                        tokens.add(form)
                    else:
                        tokens.update(form[i:i + FRAGMENT]
                                      for i in range(len(form) - FRAGMENT + 1))
            # A lookahead finds every start position, overlapping ones included, so a run of
            # secret characters is covered whole however windows overlap.
            self._regex = re.compile(f"(?=({_trie(tokens)}))")
        return self._regex


_registry = _Registry()


def register(value: str | None, user: str | None = None) -> None:
    """Remember a secret (any length >= 1) and, when given, the user name it logs in with
    (so the base64 of the whole AUTH PLAIN string is masked too)."""
    if value:
        _registry.add(str(value), user)


def known() -> frozenset[str]:
    return frozenset(_registry.secrets)


def forms(value: str, users: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every spelling of ``value`` output can carry (see the module docstring)."""
    spellings = {value, *_escaped(value)}
    for text in list(spellings):
        for encoded in (quote(text, safe=""), quote(text), quote_plus(text)):
            spellings.add(encoded)
            spellings.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    raw = value.encode("utf-8")
    encoded_forms = {base64.b64encode(raw).decode()}
    encoded_forms |= {base64.b64encode(f"\0{user}\0{value}".encode()).decode() for user in users}
    encoded_forms |= {_stable_base64(raw, align) for align in range(3)}
    spellings |= {f for f in encoded_forms if len(f) >= MIN_BASE64}
    spellings.discard("")
    return spellings


def _escaped(value: str) -> set[str]:
    """How repr(), json.dumps(), html.escape() and XML writers spell the value."""
    return {repr(value)[1:-1], repr(value.encode("utf-8"))[2:-1],
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
            html.escape(value), html.escape(value, quote=False),
            html.escape(value, quote=False).replace('"', "&quot;")}


def _stable_base64(raw: bytes, align: int) -> str:
    """The base64 characters that depend only on ``raw`` when it starts ``align`` bytes into
    the encoded data (whatever comes before or after it)."""
    encoded = base64.b64encode(b"\0" * align + raw).decode()
    first = -(-8 * align // 6)                      # ceil: first sextet wholly inside raw
    end = 8 * (align + len(raw)) // 6               # floor: sextets ending inside raw
    return encoded[first:end]


# A trie node: one child per next character, "" marking the end of a token.
_Trie = dict[str, "_Trie"]


def _trie(tokens: set[str]) -> str:
    """One regex alternative per token, as a trie: linear in the text, not in the tokens."""
    root: _Trie = {}
    for token in tokens:
        node = root
        for char in token:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            body = f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return emit(root)


def redact(text: str) -> str:
    """Mask every registered secret (and its fragments and encoded forms) and every
    secret-shaped pattern. Idempotent: text already masked is left as it is."""
    if not text:
        return text
    return MASK.join(_redact_part(part) for part in text.split(MASK))


def _redact_part(text: str) -> str:
    regex = _registry.regex()
    if regex is not None:
        spans: list[list[int]] = []
        for match in regex.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        for start, end in reversed(spans):
            text = text[:start] + MASK + text[end:]
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter: the message, and any traceback the record carries, are rendered and
    redacted before a handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
