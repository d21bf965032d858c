"""The TLS policy engine: a policy file (ANSSI by default) judged against one ``TlsScan``.

The engine knows *how* to check each rule (the rule ids below); the policy file says *what* is
acceptable (versions, suites, groups, sizes) and which requirement each rule proves. A site
ships its own file with the same schema, and may relax a rule for one endpoint only
(``[endpoints.<name>.<rule>]`` overrides, ``[endpoints.<name>] disable = [...]``).

Verdicts: ``pass``; ``warn`` (a degraded but tolerated setting, e.g. an ANSSI annex A.2
suite; the caller turns it into a failure under ``--strict-warnings``); ``fail``; ``error``
(the scan could not measure it); ``not_applicable`` (HSTS on an SMTP port, a rule disabled
for this endpoint, no TLS 1.3 to judge). Every result carries what was measured and the
offending items, so a report can say *why* without re-reading the scan.
"""
from __future__ import annotations

import tomllib
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from probes.tls_scan import PROTOCOL_COMMANDS, PROTOCOLS, AcceptedSuite, TlsScan

Verdict = Literal["pass", "warn", "fail", "error", "not_applicable"]


class PolicyError(ValueError):
    """A malformed policy file; the message names the file and the offending key."""


@dataclass(frozen=True)
class RuleResult:
    """One rule judged on one endpoint."""

    rule_id: str
    requirement: str
    title: str
    verdict: Verdict
    measured: str
    offending: list[str] = field(default_factory=list)
    endpoint: str = ""

    def message(self) -> str:
        """One line for an assertion message or a report cell."""
        extra = f" — offending: {', '.join(self.offending)}" if self.offending else ""
        return f"[{self.requirement}] {self.title}: {self.verdict.upper()} — {self.measured}{extra}"


# --- rule parameters (one dataclass per kind of rule; field types drive validation) ----------

@dataclass(frozen=True)
class NoParams:
    """A yes/no property of the server (compression off, not vulnerable to X, …)."""


@dataclass(frozen=True)
class ProtocolParams:
    allowed: tuple[str, ...]
    degraded: tuple[str, ...] = ()       # accepted with a warning
    preferred: tuple[str, ...] = ()      # warn when none of these is accepted


@dataclass(frozen=True)
class SuiteParams:
    recommended: tuple[str, ...]
    degraded: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyExchangeParams:
    groups: tuple[str, ...]
    min_dh_bits: int


@dataclass(frozen=True)
class CertificateKeyParams:
    min_rsa_bits: int
    min_ec_bits: int


@dataclass(frozen=True)
class SignatureParams:
    allowed_hashes: tuple[str, ...]


@dataclass(frozen=True)
class HstsParams:
    min_max_age: int
    include_subdomains: bool = False


@dataclass(frozen=True)
class Rule:
    """A rule as the policy file configures it (for one endpoint, after overrides)."""

    id: str
    requirement: str
    title: str
    params: Any
    on_failure: Literal["fail", "warn"] = "fail"
    disabled: bool = False


@dataclass(frozen=True)
class TlsPolicy:
    """A loaded policy: its rules in file order (the report order), and a full adjusted rule
    set for each endpoint the file relaxes, so judging never re-reads the file."""

    path: Path
    name: str
    source: str
    rules: tuple[Rule, ...]
    endpoint_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)

    def rules_for(self, endpoint: str) -> tuple[Rule, ...]:
        """The rules as they apply to this endpoint (its overrides, if any, applied)."""
        return self.endpoint_rules.get(endpoint, self.rules)

    def rule(self, rule_id: str, endpoint: str = "") -> Rule:
        for rule in self.rules_for(endpoint):
            if rule.id == rule_id:
                return rule
        raise KeyError(f"{self.path}: no rule {rule_id!r}")


@dataclass(frozen=True)
class _Outcome:
    verdict: Verdict
    measured: str
    offending: list[str] = field(default_factory=list)


# --- evaluation ------------------------------------------------------------------------------

def evaluate(policy: TlsPolicy, scan: TlsScan) -> list[RuleResult]:
    """Every rule of the policy, as it applies to the scanned endpoint, judged on the scan."""
    return [judge(rule, scan) for rule in policy.rules_for(scan.endpoint.name)]


def evaluate_rule(policy: TlsPolicy, rule_id: str, scan: TlsScan) -> RuleResult:
    """One rule on one scan: what a suite test per (endpoint × rule) calls."""
    return judge(policy.rule(rule_id, scan.endpoint.name), scan)


def judge(rule: Rule, scan: TlsScan) -> RuleResult:
    """One rule on one scan; applicability comes first (HSTS on SMTP is n/a even if the scan
    failed), then a failed scan makes every remaining rule an error."""
    if rule.disabled:
        outcome = _Outcome("not_applicable", f"disabled for endpoint {scan.endpoint.name} "
                                             "by the policy")
    elif rule.id == "hsts" and not scan.endpoint.http:
        outcome = _Outcome("not_applicable", "not an HTTPS endpoint")
    elif scan.error:
        outcome = _Outcome("error", f"scan failed: {scan.error}")
    else:
        outcome = _RULES[rule.id][1](rule.params, scan)
        if outcome.verdict == "fail" and rule.on_failure == "warn":
            outcome = _Outcome("warn", outcome.measured, outcome.offending)
    return RuleResult(rule.id, rule.requirement, rule.title, outcome.verdict, outcome.measured,
                      outcome.offending, scan.endpoint.name)


def _unmeasured(scan: TlsScan, *commands: str) -> _Outcome | None:
    """An ``error`` outcome when a scan command this rule needs did not complete."""
    missing = [c for c in commands if c in scan.command_errors]
    if missing:
        return _Outcome("error", "; ".join(f"{c} failed: {scan.command_errors[c]}"
                                           for c in missing))
    return None


def _not_run(what: str) -> _Outcome:
    return _Outcome("error", f"{what} was not measured by the scan")


_LEGACY = PROTOCOLS[:-1]                     # every version that uses TLS ≤ 1.2 suite names


def _protocols(p: ProtocolParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, *PROTOCOL_COMMANDS.values()):
        return problem
    if len(scan.protocols) < len(PROTOCOLS):
        return _not_run("protocol enumeration")
    accepted = scan.accepted_protocols
    listing = f"accepted: {', '.join(accepted) or 'none'}"
    bad = [v for v in accepted if v not in p.allowed and v not in p.degraded]
    degraded = [v for v in accepted if v in p.degraded]
    if not accepted:
        return _Outcome("fail", "no protocol version accepted")
    if bad:
        return _Outcome("fail", f"{', '.join(bad)} accepted ({listing})", bad)
    if degraded:
        return _Outcome("warn", f"degraded {', '.join(degraded)} accepted ({listing})", degraded)
    if p.preferred and not any(v in accepted for v in p.preferred):
        return _Outcome("warn", f"none of the preferred {', '.join(p.preferred)} accepted "
                                f"({listing})", list(p.preferred))
    return _Outcome("pass", listing)


def _judge_suites(p: SuiteParams, by_version: dict[str, tuple[AcceptedSuite, ...]]) -> _Outcome:
    names = list(dict.fromkeys(s.name for suites in by_version.values() for s in suites))
    versions = ", ".join(v for v, suites in by_version.items() if suites)
    bad = [n for n in names if n not in p.recommended and n not in p.degraded]
    degraded = [n for n in names if n in p.degraded]
    counts = f"{len(names)} suite(s) accepted on {versions}"
    if bad:
        return _Outcome("fail", f"{counts}; {len(bad)} outside the policy", bad)
    if degraded:
        return _Outcome("warn", f"{counts}; {len(degraded)} degraded", degraded)
    return _Outcome("pass", f"{counts}, all recommended")


def _suites_tls12(p: SuiteParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, *(PROTOCOL_COMMANDS[v] for v in _LEGACY)):
        return problem
    by_version = {v: scan.protocols.get(v, ()) for v in _LEGACY}
    if not any(by_version.values()):
        return _Outcome("not_applicable", "no TLS 1.2 (or older) suite accepted")
    return _judge_suites(p, by_version)


def _suites_tls13(p: SuiteParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, PROTOCOL_COMMANDS["TLSv1.3"]):
        return problem
    if not scan.protocols.get("TLSv1.3"):
        return _Outcome("not_applicable", "TLS 1.3 not accepted")
    return _judge_suites(p, {"TLSv1.3": scan.protocols["TLSv1.3"]})


def _is_ephemeral(suite_name: str) -> bool:
    """Key exchange from the IANA name: TLS 1.3 suites and (EC)DHE(_anon) are ephemeral."""
    if "_WITH_" not in suite_name:
        return suite_name.startswith("TLS_")      # TLS 1.3 names carry no key exchange
    kex = suite_name.removeprefix("TLS_").split("_WITH_")[0]
    return kex.startswith(("ECDHE_", "DHE_")) or kex in ("DH_anon", "ECDH_anon")


def _forward_secrecy(_: NoParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, *PROTOCOL_COMMANDS.values()):
        return problem
    suites = [s.name for v in _LEGACY for s in scan.protocols.get(v, ())]
    static = list(dict.fromkeys(n for n in suites if not _is_ephemeral(n)))
    if static:
        return _Outcome("fail", f"{len(static)} suite(s) without ephemeral key exchange", static)
    return _Outcome("pass", "every accepted suite uses an ephemeral key exchange")


def _key_exchange(p: KeyExchangeParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, "elliptic_curves", *PROTOCOL_COMMANDS.values()):
        return problem
    if scan.groups is None:
        return _not_run("elliptic curve enumeration")
    suites = [s for suites in scan.protocols.values() for s in suites]
    groups = list(dict.fromkeys([*scan.groups, *(s.group for s in suites if s.group)]))
    allowed = {g.casefold() for g in p.groups}
    offending = [g for g in groups if g.casefold() not in allowed]
    dh_sizes = sorted({s.key_exchange_bits for s in suites
                       if s.key_exchange == "DH" and s.key_exchange_bits})
    offending += [f"DHE {bits} bits" for bits in dh_sizes if bits < p.min_dh_bits]
    measured = (f"groups: {', '.join(groups) or 'none'}; "
                f"DHE: {', '.join(f'{b} bits' for b in dh_sizes) or 'none'}")
    return _Outcome("fail" if offending else "pass", measured, offending)


def _certificates(scan: TlsScan) -> _Outcome | list[Any]:
    if problem := _unmeasured(scan, "certificate_info"):
        return problem
    certs = list({c.fingerprint_sha256: c for chain in scan.certificate_chains
                  for c in chain}.values())
    return certs or _not_run("the certificate chain")


def _certificate_key(p: CertificateKeyParams, scan: TlsScan) -> _Outcome:
    certs = _certificates(scan)
    if isinstance(certs, _Outcome):
        return certs
    offending = []
    for cert in certs:
        minimum = {"RSA": p.min_rsa_bits, "EC": p.min_ec_bits}.get(cert.key_algorithm)
        if minimum is None or (cert.key_bits or 0) < minimum:
            offending.append(f"{cert.subject}: {cert.key_algorithm} {cert.key_bits} bits")
    leaf = certs[0]
    measured = f"leaf {leaf.key_algorithm} {leaf.key_bits} bits; {len(certs)} certificate(s)"
    return _Outcome("fail" if offending else "pass", measured, offending)


def _certificate_signature(p: SignatureParams, scan: TlsScan) -> _Outcome:
    certs = _certificates(scan)
    if isinstance(certs, _Outcome):
        return certs
    allowed = {h.casefold() for h in p.allowed_hashes}
    # A self-signed anchor's own signature is never verified by clients: not judged.
    judged = [c for c in certs if not c.self_signed] or certs[:1]
    offending = [f"{c.subject}: {c.signature_algorithm}" for c in judged
                 if (c.signature_hash or "").casefold() not in allowed]
    measured = "; ".join(sorted({c.signature_algorithm for c in judged}))
    return _Outcome("fail" if offending else "pass", measured, offending)


def _flag_rule(command: str, attribute: str, bad: bool, good_text: str,
               bad_text: str) -> Callable[[NoParams, TlsScan], _Outcome]:
    """A rule that fails when ``scan.<attribute>`` equals ``bad``."""
    def check(_: NoParams, scan: TlsScan) -> _Outcome:
        if problem := _unmeasured(scan, command):
            return problem
        value = getattr(scan, attribute)
        if value is None:
            return _not_run(command)
        return _Outcome("fail", bad_text) if value == bad else _Outcome("pass", good_text)
    return check


def _secure_renegotiation(_: NoParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, "session_renegotiation"):
        return problem
    if scan.secure_renegotiation is None:
        return _not_run("session_renegotiation")
    client = ("client-initiated renegotiation accepted" if scan.client_renegotiation
              else "client-initiated renegotiation refused")
    if not scan.secure_renegotiation:
        return _Outcome("fail", f"secure renegotiation (RFC 5746) not supported; {client}")
    return _Outcome("pass", f"secure renegotiation supported; {client}")


def _robot(_: NoParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, "robot"):
        return problem
    if scan.robot is None:
        return _not_run("robot")
    if scan.robot.startswith("VULNERABLE"):
        return _Outcome("fail", scan.robot, [scan.robot])
    rsa = [s.name for v in _LEGACY for s in scan.protocols.get(v, ())
           if s.name.startswith("TLS_RSA_")]
    if scan.robot == "NOT_VULNERABLE_RSA_NOT_SUPPORTED" and rsa:
        # The probe's handshakes failed (e.g. a client certificate is required), yet the suite
        # enumeration saw RSA key exchange accepted: ROBOT was not measured, never a pass.
        return _Outcome("error", f"ROBOT probe saw no RSA key exchange, but {rsa[0]} is "
                                 "accepted: not measurable on this endpoint")
    if scan.robot.startswith("NOT_VULNERABLE"):
        return _Outcome("pass", scan.robot)
    return _Outcome("warn", f"inconclusive: {scan.robot}")


def _hsts(p: HstsParams, scan: TlsScan) -> _Outcome:
    if problem := _unmeasured(scan, "http_headers"):
        return problem
    if scan.http_error:
        return _Outcome("error", f"no valid HTTP response: {scan.http_error}")
    if scan.hsts is None:
        return _Outcome("fail", "no Strict-Transport-Security header")
    measured = (f"max-age={scan.hsts.max_age}"
                f"{'; includeSubDomains' if scan.hsts.include_subdomains else ''}"
                f"{'; preload' if scan.hsts.preload else ''}")
    offending = []
    if (scan.hsts.max_age or 0) < p.min_max_age:
        offending.append(f"max-age below {p.min_max_age}")
    if p.include_subdomains and not scan.hsts.include_subdomains:
        offending.append("includeSubDomains missing")
    return _Outcome("fail" if offending else "pass", measured, offending)


# What the engine can check: rule id -> (parameter type, check). A policy picks among them.
_RULES: dict[str, tuple[type, Callable[[Any, TlsScan], _Outcome]]] = {
    "protocols": (ProtocolParams, _protocols),
    "cipher_suites_tls12": (SuiteParams, _suites_tls12),
    "cipher_suites_tls13": (SuiteParams, _suites_tls13),
    "forward_secrecy": (NoParams, _forward_secrecy),
    "key_exchange": (KeyExchangeParams, _key_exchange),
    "certificate_key": (CertificateKeyParams, _certificate_key),
    "certificate_signature": (SignatureParams, _certificate_signature),
    "compression": (NoParams, _flag_rule("tls_compression", "compression", True,
                                         "TLS compression refused",
                                         "TLS compression accepted (CRIME)")),
    "secure_renegotiation": (NoParams, _secure_renegotiation),
    "extended_master_secret": (NoParams, _flag_rule(
        "tls_extended_master_secret", "extended_master_secret", False,
        "extended master secret (RFC 7627) supported", "extended master secret not supported")),
    "fallback_scsv": (NoParams, _flag_rule("tls_fallback_scsv", "fallback_scsv", False,
                                           "TLS_FALLBACK_SCSV honoured (downgrade refused)",
                                           "TLS_FALLBACK_SCSV ignored (downgrade possible)")),
    "early_data": (NoParams, _flag_rule("tls_1_3_early_data", "early_data", True,
                                        "TLS 1.3 early data (0-RTT) refused",
                                        "TLS 1.3 early data (0-RTT) accepted")),
    "heartbleed": (NoParams, _flag_rule("heartbleed", "heartbleed", True,
                                        "not vulnerable to Heartbleed",
                                        "VULNERABLE to Heartbleed (CVE-2014-0160)")),
    "robot": (NoParams, _robot),
    "ccs_injection": (NoParams, _flag_rule("openssl_ccs_injection", "ccs_injection", True,
                                           "not vulnerable to OpenSSL CCS injection",
                                           "VULNERABLE to OpenSSL CCS injection "
                                           "(CVE-2014-0224)")),
    "hsts": (HstsParams, _hsts),
}
RULE_IDS: tuple[str, ...] = tuple(_RULES)


# --- loading ---------------------------------------------------------------------------------

def load_policy(path: str | Path) -> TlsPolicy:
    """Read and validate a TLS policy file; any problem is a ``PolicyError`` naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the TLS policy ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    where = _Where(path)
    where.only_keys(data, "", {"policy", "rules", "endpoints"})
    head = where.table(data, "policy")
    where.only_keys(head, "policy", {"name", "source"})
    rules_table = where.table(data, "rules")
    if not rules_table:
        raise PolicyError(f"{path}: [rules]: the policy defines no rule")
    rules = tuple(_rule(where, rule_id, where.table(rules_table, rule_id, "rules"))
                  for rule_id in rules_table)
    endpoints = where.table(data, "endpoints") if "endpoints" in data else {}
    endpoint_rules = {name: _endpoint_rules(where, name, where.table(endpoints, name, "endpoints"),
                                            rules_table)
                      for name in endpoints}
    source = head.get("source", "")
    if not isinstance(source, str):
        where.fail("policy.source", "expected a string")
    return TlsPolicy(path, where.string(head, "name", "policy"), source, rules, endpoint_rules)


def _endpoint_rules(where: _Where, endpoint: str, table: dict[str, Any],
                    rules_table: dict[str, Any]) -> tuple[Rule, ...]:
    key = f"endpoints.{endpoint}"
    disable = where.strings(table, "disable", key) if "disable" in table else ()
    for rule_id in [*disable, *(k for k in table if k != "disable")]:
        if rule_id not in rules_table:
            where.fail(f"{key}.{rule_id}" if rule_id in table else f"{key}.disable",
                       f"no rule {rule_id!r} in [rules] to adjust")
    adjusted = []
    for rule_id, base in rules_table.items():
        override = where.table(table, rule_id, key) if rule_id in table else {}
        rule = _rule(where, rule_id, {**base, **override},
                     f"{key}.{rule_id}" if override else f"rules.{rule_id}")
        adjusted.append(Rule(rule.id, rule.requirement, rule.title, rule.params,
                             rule.on_failure, rule_id in disable))
    return tuple(adjusted)


def _rule(where: _Where, rule_id: str, table: dict[str, Any], key: str = "") -> Rule:
    key = key or f"rules.{rule_id}"
    if rule_id not in _RULES:
        where.fail(key, f"unknown rule; known rules: {', '.join(_RULES)}")
    params_type = _RULES[rule_id][0]
    hints = typing.get_type_hints(params_type)
    param_fields = {f.name: f for f in fields(params_type)}
    where.only_keys(table, key, {"requirement", "title", "on_failure", *param_fields})
    values: dict[str, Any] = {}
    for name, spec in param_fields.items():
        if name in table:
            values[name] = where.typed(table, name, key, hints[name])
        elif spec.default is MISSING:
            where.fail(f"{key}.{name}", "missing")
    if params_type is ProtocolParams:       # a typo here would silently fail every endpoint
        for name in ("allowed", "degraded", "preferred"):
            for version in values.get(name, ()):
                if version not in PROTOCOLS:
                    where.fail(f"{key}.{name}", f"unknown protocol {version!r}; use one of "
                                                f"{', '.join(PROTOCOLS)}")
    on_failure = table.get("on_failure", "fail")
    if on_failure not in ("fail", "warn"):
        where.fail(f"{key}.on_failure", "expected \"fail\" or \"warn\"")
    return Rule(rule_id, where.string(table, "requirement", key), where.string(table, "title", key),
                params_type(**values), on_failure)


@dataclass(frozen=True)
class _Where:
    """Validation helpers that raise ``PolicyError`` with ``file: key: problem``."""

    path: Path

    def fail(self, key: str, problem: str) -> typing.NoReturn:
        raise PolicyError(f"{self.path}: {key}: {problem}")

    def only_keys(self, table: dict[str, Any], key: str, allowed: set[str]) -> None:
        for name in table:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else name,
                          f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def table(self, parent: dict[str, Any], name: str, key: str = "") -> dict[str, Any]:
        full = f"{key}.{name}" if key else name
        if name not in parent:
            self.fail(full, "missing table")
        if not isinstance(parent[name], dict):
            self.fail(full, "expected a table")
        table: dict[str, Any] = parent[name]
        return table

    def string(self, table: dict[str, Any], name: str, key: str) -> str:
        value = table.get(name)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{key}.{name}", "missing or not a non-empty string")
        return value

    def strings(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = table[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{key}.{name}", "expected a list of strings")
        return tuple(value)

    def typed(self, table: dict[str, Any], name: str, key: str, hint: Any) -> Any:
        value = table[name]
        if hint == tuple[str, ...]:
            return self.strings(table, name, key)
        if hint is bool and isinstance(value, bool):
            return value
        if hint is int and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        expected = "a non-negative integer" if hint is int else "true or false"
        self.fail(f"{key}.{name}", f"expected {expected}")
