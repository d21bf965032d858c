"""One sslyze scan of one TLS endpoint, as a typed result the policy engine judges.

Why sslyze as a library (not its CLI, not hand-written handshakes): it enumerates every
protocol version and suite, the groups, the certificate chain and the known implementation
flaws with one tool whose JSON output model is also our evidence format. We keep that JSON
verbatim (``TlsScan.raw``) and build the typed result *from the JSON*, so a scan read back
from the per-run cache goes through exactly the same parser as a live one.

Every network step is bounded: sslyze's per-connection timeout, a bounded number of
connection attempts, and an overall deadline on the whole scan (an endpoint that never
answers yields a failed ``TlsScan`` with ``error`` set, never a hang).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from probes.locks import acquire_flock

# The protocol versions sslyze can enumerate, oldest first, and the scan command for each.
PROTOCOLS: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PROTOCOL_COMMANDS: dict[str, str] = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}
# Everything the ANSSI rules and the certificate suite need; http_headers is added for HTTPS.
# session_resumption is left out: no rule reads it and it costs a dozen handshakes.
SCAN_COMMANDS: tuple[str, ...] = (
    *PROTOCOL_COMMANDS.values(),
    "elliptic_curves",
    "certificate_info",
    "tls_compression",
    "session_renegotiation",
    "tls_fallback_scsv",
    "heartbleed",
    "robot",
    "openssl_ccs_injection",
    "tls_extended_master_secret",
    "tls_1_3_early_data",
)
HTTP_COMMAND = "http_headers"
RECORD_FORMAT = "mssante-check/tls-scan/1"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class TlsEndpoint:
    """A TLS service to scan. ``name`` keys the cache and evidence files, so it is file-safe.

    ``starttls`` is the cleartext protocol that upgrades to TLS (SMTP, IMAP); ``http`` asks
    for the HTTP header check (HSTS), which only makes sense on an HTTPS endpoint.
    """

    name: str
    host: str
    port: int
    starttls: Literal[None, "smtp", "imap"] = None
    server_name: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    http: bool = False

    def __post_init__(self) -> None:
        if not _SAFE_NAME.match(self.name):
            raise ValueError(f"endpoint name {self.name!r}: use letters, digits, '.', '_', '-'")
        if self.starttls not in (None, "smtp", "imap"):
            raise ValueError(f"endpoint {self.name}: starttls must be smtp, imap or None")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError(f"endpoint {self.name}: client_cert and client_key go together")
        if self.http and self.starttls:
            raise ValueError(f"endpoint {self.name}: an HTTPS endpoint has no STARTTLS")

    @property
    def display(self) -> str:
        """How reports name the endpoint: ``smtp-mx (localhost:10025, STARTTLS smtp)``."""
        mode = f", STARTTLS {self.starttls}" if self.starttls else ""
        return f"{self.name} ({self.host}:{self.port}{mode})"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["client_cert"] = str(self.client_cert) if self.client_cert else None
        data["client_key"] = str(self.client_key) if self.client_key else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TlsEndpoint:
        paths = {k: Path(data[k]) if data.get(k) else None for k in ("client_cert", "client_key")}
        return cls(**{**data, **paths})


@dataclass(frozen=True)
class AcceptedSuite:
    """A cipher suite the server accepted, with the ephemeral key it sent (if any)."""

    name: str                      # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    openssl_name: str
    key_exchange: str | None       # "ECDH" or "DH" when the server sent an ephemeral key
    key_exchange_bits: int | None
    group: str | None              # IANA group of an ECDH key: x25519, secp256r1, …


@dataclass(frozen=True)
class CertificateFacts:
    """What the policy needs from one certificate, beside its PEM for the certificate suite."""

    pem: str
    subject: str
    issuer: str
    key_algorithm: str             # RSA | EC | Ed25519 | Ed448 | DSA | the class name otherwise
    key_bits: int | None
    curve: str | None
    signature_hash: str | None     # sha256, sha1, … None when the signature has no separate hash
    signature_algorithm: str       # e.g. sha256WithRSAEncryption
    not_after: datetime
    fingerprint_sha256: str        # hex, lower case

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer


@dataclass(frozen=True)
class Hsts:
    """The Strict-Transport-Security header as sslyze parsed it."""

    max_age: int | None
    include_subdomains: bool
    preload: bool


@dataclass(frozen=True)
class TlsScan:
    """The result of scanning one endpoint once.

    ``error`` set means the scan could not run at all (unreachable, bad client credentials,
    deadline); every other field is then empty. A ``None`` field means "not measured": its
    scan command failed (the reason is in ``command_errors``) or was not run.
    ``protocols`` holds only versions whose enumeration completed; an empty tuple there means
    the version is refused.
    """

    endpoint: TlsEndpoint
    started_at: datetime
    duration_s: float
    error: str | None = None
    command_errors: dict[str, str] = field(default_factory=dict)
    # DISABLED | OPTIONAL | REQUIRED, as sslyze detects it when *no* client certificate is
    # configured; with one, sslyze is never asked for it and reports DISABLED.
    client_auth: str | None = None
    protocols: dict[str, tuple[AcceptedSuite, ...]] = field(default_factory=dict)
    groups: tuple[str, ...] | None = None
    certificate_chains: tuple[tuple[CertificateFacts, ...], ...] = ()
    compression: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation: bool | None = None
    fallback_scsv: bool | None = None
    heartbleed: bool | None = None
    robot: str | None = None
    ccs_injection: bool | None = None
    extended_master_secret: bool | None = None
    early_data: bool | None = None
    hsts: Hsts | None = None
    http_error: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def accepted_protocols(self) -> tuple[str, ...]:
        return tuple(p for p in PROTOCOLS if self.protocols.get(p))

    @property
    def certificate_chain(self) -> tuple[str, ...]:
        """The chain (leaf first, as sent) a default client gets, as PEM strings."""
        return tuple(c.pem for c in self.certificate_chains[0]) if self.certificate_chains else ()

    def to_json(self) -> str:
        """The raw sslyze JSON document (``SslyzeOutputAsJson``), or ``{}`` if sslyze never ran."""
        return json.dumps(self.raw or {}, indent=1)

    def summary(self) -> dict[str, Any]:
        """Our parsed reading of the scan, JSON-ready, for people reading the evidence."""
        return {
            "endpoint": self.endpoint.display,
            "error": self.error,
            "command_errors": self.command_errors,
            "client_auth": self.client_auth,
            "protocols": {p: [s.name for s in suites] for p, suites in self.protocols.items()},
            "groups": list(self.groups) if self.groups is not None else None,
            "certificates": [[{"subject": c.subject, "issuer": c.issuer,
                               "key": f"{c.key_algorithm} {c.key_bits}",
                               "signature": c.signature_algorithm,
                               "not_after": c.not_after.isoformat(),
                               "sha256": c.fingerprint_sha256} for c in chain]
                             for chain in self.certificate_chains],
            "compression": self.compression,
            "secure_renegotiation": self.secure_renegotiation,
            "client_renegotiation": self.client_renegotiation,
            "fallback_scsv": self.fallback_scsv,
            "heartbleed": self.heartbleed,
            "robot": self.robot,
            "ccs_injection": self.ccs_injection,
            "extended_master_secret": self.extended_master_secret,
            "early_data": self.early_data,
            "hsts": asdict(self.hsts) if self.hsts else None,
            "http_error": self.http_error,
        }

    def to_record(self) -> dict[str, Any]:
        """The evidence/cache file content: enough to rebuild this object exactly."""
        return {
            "format": RECORD_FORMAT,
            "endpoint": self.endpoint.to_dict(),
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "error": self.error,
            "summary": self.summary(),
            "sslyze": self.raw,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TlsScan:
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"not a {RECORD_FORMAT} record")
        endpoint = TlsEndpoint.from_dict(record["endpoint"])
        started = datetime.fromisoformat(record["started_at"])
        if record.get("sslyze") is None:
            return cls(endpoint, started, record["duration_s"], error=record["error"])
        return from_sslyze_json(endpoint, record["sslyze"], started, record["duration_s"])


# --- scanning ---------------------------------------------------------------------------------

def scan(endpoint: TlsEndpoint, timeout_s: float = 5.0, deadline_s: float = 180.0,
         attempts: int = 2) -> TlsScan:
    """Scan ``endpoint`` with sslyze; never raises for network or credential problems.

    ``timeout_s`` bounds each connection (sslyze takes whole seconds), ``attempts`` how many
    times one is tried, ``deadline_s`` the whole scan: past it the scan is reported failed
    and its daemon thread abandoned (sslyze cannot be cancelled). The wait in the calling
    thread is what bounds a hostile server: sslyze's time-outs are per read, so a server that
    trickles its handshake or banner, or whose garbage crashes sslyze's connectivity worker
    (a STARTTLS reply that is not UTF-8), would otherwise keep the scan alive for ever.
    """
    started = datetime.now(UTC)
    clock = time.monotonic()
    outcome: dict[str, Any] = {}

    def run() -> None:
        from sslyze import Scanner

        try:
            # Inside the deadline: building the requests resolves the host name.
            requests = _requests(endpoint, timeout_s, attempts)
            scanner = Scanner()
            scanner.queue_scans(requests)
            by_uuid = {result.uuid: result for result in scanner.get_results()}
            outcome["results"] = [by_uuid[request.uuid] for request in requests]
        except Exception as exc:  # noqa: BLE001 - DNS, unusable client key, sslyze: all "error"
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"sslyze-{endpoint.name}", daemon=True)
    worker.start()
    worker.join(deadline_s)
    duration = time.monotonic() - clock
    if worker.is_alive():
        return TlsScan(endpoint, started, duration,
                       error=f"could not run: {endpoint.host}:{endpoint.port}: TLS scan: no "
                             f"complete answer within {deadline_s:g} s")
    if "error" in outcome:
        return TlsScan(endpoint, started, duration, error=_one_line(outcome["error"]))
    raw = _sslyze_document(outcome["results"], started)
    return from_sslyze_json(endpoint, raw, started, duration)


def _requests(endpoint: TlsEndpoint, timeout_s: float, attempts: int) -> list[Any]:
    """The sslyze requests for this endpoint; raises on unresolvable host or unusable key.

    With a client certificate, SSL 2.0 is enumerated by a second request *without* it: nassl's
    legacy client cannot load a certificate chain file for SSL 2.0 (every such scan fails), and
    an SSL 2.0 server shows itself before any client certificate is asked for.
    """
    from sslyze import (
        ClientAuthenticationCredentials,
        ProtocolWithOpportunisticTlsEnum,
        ScanCommand,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    starttls = {None: None, "smtp": ProtocolWithOpportunisticTlsEnum.SMTP,
                "imap": ProtocolWithOpportunisticTlsEnum.IMAP}[endpoint.starttls]
    location = ServerNetworkLocation(endpoint.host, endpoint.port)

    def config(credentials: Any) -> Any:
        return ServerNetworkConfiguration(
            tls_server_name_indication=endpoint.server_name or endpoint.host,
            tls_opportunistic_encryption=starttls,
            tls_client_auth_credentials=credentials,
            network_timeout=max(1, math.ceil(timeout_s)),
            network_max_retries=max(1, attempts),
        )

    commands = {ScanCommand(c) for c in expected_commands(endpoint)}
    if not (endpoint.client_cert and endpoint.client_key):
        return [ServerScanRequest(location, network_configuration=config(None),
                                  scan_commands=commands)]
    credentials = ClientAuthenticationCredentials(certificate_chain_path=endpoint.client_cert,
                                                  key_path=endpoint.client_key)
    sslv2 = {ScanCommand(PROTOCOL_COMMANDS["SSLv2"])}
    return [ServerScanRequest(location, network_configuration=config(credentials),
                              scan_commands=commands - sslv2),
            ServerScanRequest(location, network_configuration=config(None), scan_commands=sslv2)]


def expected_commands(endpoint: TlsEndpoint) -> tuple[str, ...]:
    """The sslyze scan commands a complete scan of this endpoint runs."""
    return SCAN_COMMANDS + ((HTTP_COMMAND,) if endpoint.http else ())


def _sslyze_document(results: list[Any], started: datetime) -> dict[str, Any]:
    """sslyze's own JSON output document (what ``sslyze --json_out`` writes), main result first."""
    from sslyze import ServerScanResultAsJson, SslyzeOutputAsJson

    document = SslyzeOutputAsJson(
        server_scan_results=[ServerScanResultAsJson.model_validate(r) for r in results],
        invalid_server_strings=[],
        date_scans_started=started,
        date_scans_completed=datetime.now(UTC),
    )
    decoded: dict[str, Any] = json.loads(document.model_dump_json())
    return decoded


# --- parsing sslyze's JSON --------------------------------------------------------------------

def from_sslyze_json(endpoint: TlsEndpoint, document: dict[str, Any], started_at: datetime,
                     duration_s: float) -> TlsScan:
    """Build the typed result from an sslyze JSON document for this endpoint.

    The first server result is the main scan; later ones (see ``_requests``) supply commands
    the main one did not run. A command expected but measured by none is a command error.
    """
    server, *extra = document["server_scan_results"]
    base: dict[str, Any] = {"endpoint": endpoint, "started_at": started_at,
                            "duration_s": duration_s, "raw": document}
    if server["connectivity_status"] != "COMPLETED" or server["scan_result"] is None:
        return TlsScan(**base, error=_connectivity_error(server))
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for part in (server, *extra):
        for command, attempt in (part["scan_result"] or {}).items():
            if command in results or command in errors:
                continue
            if attempt["status"] == "COMPLETED":
                results[command] = attempt["result"]
            elif attempt["status"] == "ERROR":
                reason = attempt.get("error_reason") or "ERROR"
                errors[command] = f"{reason}: {_trace_tail(attempt.get('error_trace'))}"
    unreachable = "; ".join(_connectivity_error(p) for p in extra if p["scan_result"] is None)
    for command in expected_commands(endpoint):
        if command not in results and command not in errors:
            errors[command] = f"not measured: {unreachable or 'not scheduled'}"

    http = results.get(HTTP_COMMAND)
    sts = http.get("strict_transport_security_header") if http else None
    return TlsScan(
        **base,
        command_errors=errors,
        client_auth=(server.get("connectivity_result") or {}).get("client_auth_requirement"),
        protocols={p: tuple(_suite(s) for s in results[c]["accepted_cipher_suites"])
                   for p, c in PROTOCOL_COMMANDS.items() if c in results},
        groups=_groups(results.get("elliptic_curves")),
        certificate_chains=_chains(results.get("certificate_info")),
        compression=_flag(results, "tls_compression", "supports_compression"),
        secure_renegotiation=_flag(results, "session_renegotiation",
                                   "supports_secure_renegotiation"),
        client_renegotiation=_flag(results, "session_renegotiation",
                                   "is_vulnerable_to_client_renegotiation_dos"),
        fallback_scsv=_flag(results, "tls_fallback_scsv", "supports_fallback_scsv"),
        heartbleed=_flag(results, "heartbleed", "is_vulnerable_to_heartbleed"),
        robot=results["robot"]["robot_result"] if "robot" in results else None,
        ccs_injection=_flag(results, "openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
        extended_master_secret=_flag(results, "tls_extended_master_secret",
                                     "supports_ems_extension"),
        early_data=_flag(results, "tls_1_3_early_data", "supports_early_data"),
        hsts=Hsts(sts["max_age"], sts["include_subdomains"], sts["preload"]) if sts else None,
        http_error=_trace_tail(http.get("http_error_trace")) if http else None,
    )


def _group_name(name: str) -> str:
    """IANA spelling of an sslyze/OpenSSL curve name (X25519 → x25519; SECG names unchanged)."""
    return {"X25519": "x25519", "X448": "x448", "prime256v1": "secp256r1",
            "prime192v1": "secp192r1"}.get(name, name)


def _suite(accepted: dict[str, Any]) -> AcceptedSuite:
    key = accepted.get("ephemeral_key")
    curve = key.get("curve_name") if key else None
    return AcceptedSuite(
        name=accepted["cipher_suite"]["name"],
        openssl_name=accepted["cipher_suite"]["openssl_name"],
        key_exchange=key["type_name"] if key else None,
        key_exchange_bits=key["size"] if key else None,
        group=_group_name(curve) if curve else None,
    )


def _groups(result: dict[str, Any] | None) -> tuple[str, ...] | None:
    if result is None:
        return None
    return tuple(_group_name(c["name"]) for c in result.get("supported_curves") or ())


def _chains(result: dict[str, Any] | None) -> tuple[tuple[CertificateFacts, ...], ...]:
    if result is None:
        return ()
    return tuple(tuple(_certificate(c) for c in deployment["received_certificate_chain"])
                 for deployment in result["certificate_deployments"])


_KEY_ALGORITHMS = {"RSAPublicKey": "RSA", "EllipticCurvePublicKey": "EC",
                   "Ed25519PublicKey": "Ed25519", "Ed448PublicKey": "Ed448",
                   "DSAPublicKey": "DSA"}


def _certificate(cert: dict[str, Any]) -> CertificateFacts:
    key = cert["public_key"]
    algorithm = next((v for k, v in _KEY_ALGORITHMS.items() if key["algorithm"].endswith(k)),
                     key["algorithm"])
    signature_hash = cert.get("signature_hash_algorithm")
    return CertificateFacts(
        pem=cert["as_pem"],
        subject=(cert.get("subject") or {}).get("rfc4514_string", ""),
        issuer=(cert.get("issuer") or {}).get("rfc4514_string", ""),
        key_algorithm=algorithm,
        key_bits=key.get("key_size"),
        curve=key.get("ec_curve_name"),
        signature_hash=signature_hash["name"] if signature_hash else None,
        signature_algorithm=cert["signature_algorithm_oid"]["name"],
        not_after=datetime.fromisoformat(cert["not_valid_after"]),
        fingerprint_sha256=_b64_to_hex(cert["fingerprint_sha256"]),
    )


def _flag(results: dict[str, Any], command: str, key: str) -> bool | None:
    return bool(results[command][key]) if command in results else None


def _b64_to_hex(value: str) -> str:
    import base64

    return base64.b64decode(value).hex()


def _connectivity_error(server: dict[str, Any]) -> str:
    return _trace_tail(server.get("connectivity_error_trace")) or "sslyze could not connect"


def _trace_tail(trace: str | None) -> str | None:
    """The exception line of a Python traceback string (the part a reader needs)."""
    if not trace:
        return None
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text}"


# --- per-run cache shared by pytest-xdist workers ---------------------------------------------

def scan_cached(endpoint: TlsEndpoint, cache_dir: Path, timeout_s: float = 5.0,
                deadline_s: float = 180.0, fresh_after: datetime | None = None) -> TlsScan:
    """One scan per endpoint per run, whichever worker asks first.

    ``cache_dir`` should belong to the run (e.g. the run's evidence folder);
    ``cache_dir/<name>.json`` is the evidence file (``TlsScan.to_record()``). A per-endpoint
    ``flock`` makes concurrent workers wait for the first one's scan and read its file instead
    of scanning again. A file for the same name but another endpoint (host, port, …), or one
    from a scan started before ``fresh_after`` (the run's start), is rescanned and replaced.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{endpoint.name}.json"
    with _exclusive(_lock_path(cache_dir, endpoint.name), wait_s=deadline_s + 30.0):
        cached = _read_record(path, endpoint)
        if cached is not None and (fresh_after is None or cached.started_at >= fresh_after):
            return cached
        result = scan(endpoint, timeout_s=timeout_s, deadline_s=deadline_s)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result.to_record(), indent=1))
        os.replace(tmp, path)
        return result


def _read_record(path: Path, endpoint: TlsEndpoint) -> TlsScan | None:
    try:
        record = json.loads(path.read_text())
        cached = TlsScan.from_record(record)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return cached if cached.endpoint == endpoint else None


def _lock_path(cache_dir: Path, name: str) -> Path:
    """Lock files live outside the cache folder: it is evidence, and a lock is not."""
    digest = hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "mssante-check-locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{digest}-{name}.lock"


@contextmanager
def _exclusive(lock_path: Path, wait_s: float) -> Iterator[None]:
    """Hold an exclusive flock on lock_path, waiting at most wait_s for it."""
    with open(lock_path, "a+") as handle:
        acquire_flock(handle, wait_s, f"TLS scan lock {lock_path}")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
