"""What a profile value must be, beyond its TOML type: ports, host names, URLs, commands.

Each check takes the value (already of the right type) and returns ``None`` when it is fine,
else the problem as the end of a sentence ("must be a port 1-65535, got 86036") that
:mod:`plugins.profile` prefixes with the file, the section and the key. A check never repeats
a value that may hold a secret: a URL with ``user:password@`` is refused without being shown.
"""
from __future__ import annotations

import ipaddress
import math
import re
import shlex
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

from policy.api_contract import pointer_problem

Check = Callable[[Any], "str | None"]

# The placeholders the programs fill in, as plugins/commands.py finds them inside each argument.
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
TESTINFRA_BACKENDS = ("local", "ssh", "safe-ssh", "paramiko", "salt", "docker", "podman",
                      "ansible", "kubectl", "winrm", "lxc", "openshift", "chroot")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EMAIL = re.compile(r"[^@\s\"'<>(),;:\\\[\]]+@(?P<domain>[^@\s]+)")


def shown(value: Any) -> str:
    """A value as a message shows it: repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_host(value: str) -> bool:
    """A DNS host name (RFC 1123 labels; ``_`` tolerated, as container names use it) or an
    IPv4/IPv6 address. No scheme, no port, no path, no spaces."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    return (0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())       # 1.2.3.999 is neither an address nor a name


def host(value: str) -> str | None:
    if is_host(value):
        return None
    return ("must be a host name or an IP address (no scheme, port, path or space), "
            f"got {shown(value)}")


def ip_address(value: str) -> str | None:
    """An IPv4 or IPv6 address (a local address to bind from: a name would be resolved)."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        return f"must be an IPv4 or IPv6 address, got {shown(value)}"


def json_pointer(value: str) -> str | None:
    """An RFC 6901 JSON pointer into an API answer (``/data/token``; ``''`` is the root)."""
    return pointer_problem(value)


def path(value: str) -> str | None:
    """An HTTP path on the section's URL: starts with '/', no scheme, host or space."""
    if value.startswith("/") and not value.startswith("//") and not any(
            c.isspace() for c in value):
        return None
    return f"must be a path starting with '/' (no scheme, host or space), got {shown(value)}"


def non_blank(value: str) -> str | None:
    return None if value.strip() else f"must not be empty, got {shown(value)}"


def non_empty(check: Check) -> Check:
    """A list that holds at least one item, each passing ``check``."""
    def check_list(values: list[str]) -> str | None:
        return "must list at least one value" if not values else check(values)
    return check_list


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"must be a port 1-65535, got {value}"


def positive(value: float) -> str | None:
    """Time-outs, deadlines and thresholds: 0 or less would mean "never" or "no limit"."""
    if math.isfinite(value) and value > 0:
        return None
    return f"must be a number greater than 0, got {shown(value)}"


def ratio(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be a ratio between 0 and 1, got {shown(value)}"


def name(value: str) -> str | None:
    """A name used as a file or folder name (the environment's: reports/runs/<run>-<name>)."""
    if _NAME.fullmatch(value) and value not in (".", ".."):
        return None
    return ("must use only letters, digits, '.', '_', '-' (and not be '.' or '..'), "
            f"got {shown(value)}")


def env_var(value: str) -> str | None:
    if _ENV_VAR.fullmatch(value):
        return None
    return f"must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got {shown(value)}"


def email(value: str) -> str | None:
    match = _EMAIL.fullmatch(value)
    if match and is_host(match["domain"]):
        return None
    return f"must be an e-mail address (local@domain), got {shown(value)}"


def one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        if value in allowed:
            return None
        return f"must be one of {', '.join(allowed)}, got {shown(value)}"
    return check


def each(check: Check, what: str) -> Check:
    """A list whose every item passes ``check`` (items are already known to be strings)."""
    def check_all(values: list[str]) -> str | None:
        for index, value in enumerate(values, 1):
            if check(value) is not None:
                return f"must be a list of {what}; item {index} is {shown(value)}"
        return None
    return check_all


def url(value: str) -> str | None:
    """``https://`` or ``http://``, a valid host, an optional port 1-65535, never credentials
    (a password in a URL ends up in every report: it belongs in an environment variable)."""
    authority = value.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return ("must not carry credentials (user:password@host; the URL is not shown): put the "
                "secret in an environment variable named by a '*_env' key")
    if any(c.isspace() for c in value):
        return f"must be a URL without spaces, got {shown(value)}"
    try:
        parts = urlsplit(value)
        number, hostname = parts.port, parts.hostname
    except ValueError:          # bad brackets, a port that is not 0-65535 digits
        if value.startswith(("https://", "http://")):
            return f"must have a host and a port 1-65535 after the scheme, got {shown(value)}"
        return f"must be an https:// or http:// URL, got {shown(value)}"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return f"must be an https:// or http:// URL, got {shown(value)}"
    if number == 0 or (number is None and ":" in parts.netloc.rsplit("]", 1)[-1]):
        return f"must have a host and a port 1-65535 after the scheme, got {shown(value)}"
    bracketed = parts.netloc.startswith("[")
    if not hostname or not is_host(hostname) or (bracketed and ":" not in hostname):
        return f"must have a host name or an IP address after {parts.scheme}://, got {shown(value)}"
    return None


def connection(value: str) -> str | None:
    """A testinfra host spec (``local://``, ``ssh://user@host``...), never with a password."""
    backend, sep, rest = value.partition("://")
    if not sep or backend not in TESTINFRA_BACKENDS:
        return (f"must be a testinfra connection <backend>://... ({', '.join(TESTINFRA_BACKENDS)}),"
                f" got {shown(value)}")
    if ":" in rest.split("/", 1)[0].rpartition("@")[0]:
        return "must not carry a password (user:password@host; not shown): use SSH keys"
    return None


def command(placeholders: Collection[str]) -> Check:
    """A command template: it splits with shlex, uses no shell operator (it runs without a
    shell), names only known placeholders, and no placeholder sits inside quotes (each is
    always passed as one whole argument, so quoting it buys nothing, and quoted it could be
    parsed again by a shell)."""
    expected = ", ".join(f"{{{p}}}" for p in placeholders) or "none"

    def check(value: str) -> str | None:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            return f"must be a command line that splits with shlex ({exc}), got {shown(value)}"
        if not words:
            return "must be a non-empty command"
        operator = shell_operator(value)
        if operator:
            return (f"uses shell syntax ({operator!r}) but is run without a shell: wrap it as "
                    "sh -c '<script>' sh {placeholder}..., the script reading them as \"$1\"...")
        for match in PLACEHOLDER.finditer(value):
            if match[1] not in placeholders:
                return f"has unknown placeholder {match[0]} (expected: {expected})"
        quoted = quoted_placeholder(value)
        if quoted:
            return (f"must not quote a placeholder ({quoted} inside quotes): write it bare, "
                    "it is always passed as one argument")
        return None
    return check


def shell_operator(template: str) -> str | None:
    """The first unquoted shell operator (``&&``, ``;``, ``|``, ``>``...): commands are run as
    argument lists, so it would reach the program as a literal argument."""
    lexer = shlex.shlex(template, posix=True, punctuation_chars=True)
    return next((token for token in lexer if token and set(token) <= set("();<>|&")), None)


def quoted_placeholder(template: str) -> str | None:
    """The first ``{name}`` that sits inside single or double quotes (POSIX shell rules)."""
    quote: str | None = None
    index = 0
    while index < len(template):
        char = template[index]
        if quote is not None:
            match = PLACEHOLDER.match(template, index)
            if match:
                return match[0]
        if char == "\\" and quote != "'":
            index += 2
            continue
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
        index += 1
    return None
