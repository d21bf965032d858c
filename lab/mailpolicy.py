"""Postfix policy service for the MX port: only whitelisted operators, with their own certificate.

An MSSanté operator accepts inter-operator mail only from domains on the agency's whitelist,
and only from the operator whose certificate subject is that domain's
``<DNCertificatOperateur>`` (DESIGN.md §8). Postfix cannot express that with its own tables,
so its MX listener asks this service (``check_policy_service``) at ``MAIL FROM``.

Limit, by construction: Postfix's policy delegation protocol passes only the client
certificate's subject **CN** (``ccert_subject``), its issuer's **CN** (``ccert_issuer``) and
fingerprints -- never the full DN. So the check is: the sender's domain is on the whitelist,
the verified certificate's CN equals the CN of that domain's ``DNCertificatOperateur``, and the
issuer's CN is the CN of the IGC Santé TEST intermediate (read from its certificate file).
O, OU, ST and C of the whitelist DN cannot be compared through Postfix; the chain itself is
verified by Postfix against ``smtpd_tls_CAfile`` before any of this runs.

The rules live in a small ``key = value`` file (``.lab/postfix/mxpolicy.cf``) naming the
whitelist XML, the issuer certificate and whether a client certificate is required; the
service re-reads it and the whitelist whenever either changes on disk, so an operator's edit
applies at the next SMTP transaction. A null sender (a bounce) names no domain: it is accepted
when the certificate belongs to any whitelisted operator.

Run as ``python -m lab.mailpolicy --config FILE --socket PATH --user NAME``: the unix socket
is created as root, handed to Postfix's ``mail_owner``, then the service drops to ``--user``.
"""
from __future__ import annotations

import argparse
import os
import pwd
import re
import socketserver
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from probes import whitelist
from probes.whitelist import domain_key

IDLE_TIMEOUT = 330.0     # Postfix drops idle policy connections after 300 s (max_idle)
MAX_REQUEST = 64 * 1024  # a policy request is a few hundred bytes; refuse anything absurd


@dataclass(frozen=True)
class Rules:
    """What the MX accepts, as read from the policy file and the whitelist it names."""

    operators: dict[str, str]      # domain key (IDNA, lower case) -> expected certificate CN
    issuer_cn: str                 # CN of the only issuer accepted for client certificates
    require_certificate: bool


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def dn_common_name(dn: str) -> str:
    """CN of an RFC 4514 DN such as a whitelist's ``DNCertificatOperateur`` ("" if none)."""
    try:
        return _cn(x509.Name.from_rfc4514_string(dn))
    except ValueError:
        return ""


def read_settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def load_rules(config: Path) -> Rules:
    """Build the rules from the policy file; ValueError/OSError when something is unusable."""
    settings = read_settings(config)
    listed = whitelist.parse(Path(settings["whitelist"]).read_bytes())
    issuer = x509.load_pem_x509_certificate(Path(settings["issuer_certificate"]).read_bytes())
    return Rules(
        operators={domain_key(e.name): dn_common_name(e.operator_dn) for e in listed.entries},
        issuer_cn=_cn(issuer.subject),
        require_certificate=settings.get("require_client_certificate", "yes") == "yes")


def xtext_decode(value: str) -> str:
    """Undo Postfix's xtext encoding of certificate names (``LAB+20TEST`` is ``LAB TEST``)."""
    raw = re.sub(rb"\+([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 value.encode("utf-8"))
    return raw.decode("utf-8", "replace")


def decide(request: dict[str, str], rules: Rules) -> str:
    """The policy answer (``action=...`` value) for one Postfix request."""
    sender = request.get("sender", "")
    subject = xtext_decode(request.get("ccert_subject", ""))
    issuer = xtext_decode(request.get("ccert_issuer", ""))
    if not subject:
        # Postfix fills ccert_* only for a certificate that verified against smtpd_tls_CAfile.
        if rules.require_certificate:
            return "REJECT 5.7.1 a verified IGC Sante client certificate is required"
        certificate_checked = False
    elif issuer != rules.issuer_cn:
        return f"REJECT 5.7.1 client certificate issued by {issuer!r}, not by {rules.issuer_cn!r}"
    else:
        certificate_checked = True
    if not sender:
        if certificate_checked and subject not in rules.operators.values():
            return f"REJECT 5.7.1 certificate CN {subject!r} is no whitelisted operator's"
        return "DUNNO"
    domain = domain_key(sender.rpartition("@")[2])
    expected = rules.operators.get(domain)
    if expected is None:
        return f"REJECT 5.7.1 sender domain {domain} is not on the MSSante whitelist"
    if certificate_checked and subject != expected:
        return (f"REJECT 5.7.1 certificate CN {subject!r} is not the whitelisted operator of "
                f"{domain} ({expected!r})")
    return "DUNNO"


class _RulesCache:
    """Rules re-read when the policy file or the whitelist changes (size or mtime)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._rules: Rules | None = None

    def _signature(self) -> tuple[object, ...]:
        files = [self.config]
        try:
            files += [Path(v) for k, v in read_settings(self.config).items()
                      if k in ("whitelist", "issuer_certificate")]
        except OSError:
            pass
        stamp: list[object] = []
        for path in files:
            try:
                info = path.stat()
                stamp.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append((str(path), None))
        return tuple(stamp)

    def get(self) -> Rules:
        with self._lock:
            stamp = self._signature()
            if self._rules is None or stamp != self._stamp:
                self._rules, self._stamp = load_rules(self.config), stamp
            return self._rules


class _Handler(socketserver.StreamRequestHandler):
    """One Postfix connection: any number of requests, each ``name=value`` lines + blank line."""

    timeout = IDLE_TIMEOUT
    server: _Server

    def handle(self) -> None:
        try:
            self._serve()
        except (TimeoutError, ConnectionError):
            pass                    # Postfix closed or forgot an idle connection

    def _serve(self) -> None:
        request: dict[str, str] = {}
        size = 0
        for raw in self.rfile:
            size += len(raw)
            if size > MAX_REQUEST:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                name, _, value = line.partition("=")
                request[name] = value
                continue
            self.wfile.write(f"action={self._answer(request)}\n\n".encode())
            self.wfile.flush()
            request, size = {}, 0

    def _answer(self, request: dict[str, str]) -> str:
        try:
            rules = self.server.rules.get()
        except (OSError, ValueError, KeyError) as exc:
            # Fail closed, but temporarily: the peer retries once the whitelist is readable.
            print(f"mxpolicy: cannot load rules: {exc}", flush=True)
            return "DEFER_IF_PERMIT 4.7.0 MSSante whitelist unavailable"
        action = decide(request, rules)
        print(f"mxpolicy: sender=<{request.get('sender', '')}> "
              f"ccert_subject={request.get('ccert_subject', '')!r} -> {action}", flush=True)
        return action


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, socket_path: Path, rules: _RulesCache) -> None:
        socket_path.unlink(missing_ok=True)
        super().__init__(str(socket_path), _Handler)
        self.rules = rules


def _drop_privileges(user: str) -> None:
    account = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.mailpolicy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="policy file (key = value)")
    parser.add_argument("--socket", type=Path, required=True, help="unix socket to listen on")
    parser.add_argument("--owner", default="postfix", help="who may connect (Postfix mail_owner)")
    parser.add_argument("--user", default="nobody", help="unprivileged user to run as")
    args = parser.parse_args(argv)
    cache = _RulesCache(args.config)
    cache.get()                     # a broken policy file fails here, visibly, at start
    server = _Server(args.socket, cache)
    owner = pwd.getpwnam(args.owner)
    os.chown(args.socket, owner.pw_uid, owner.pw_gid)
    os.chmod(args.socket, 0o600)
    if os.geteuid() == 0:
        _drop_privileges(args.user)
    print(f"mxpolicy: listening on {args.socket}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
