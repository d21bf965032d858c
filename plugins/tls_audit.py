"""The TLS and certificate audit's shared machinery (``suites/tls`` and ``suites/certs``).

- ``--tls-policy PATH``: the TLS policy file. Precedence as for every setting: command line >
  the profile's ``[policy] tls`` > the shipped ANSSI policy. It is loaded at configure time, so
  a malformed file is one usage-error line ("file: key: problem") before any test runs.
- The profile's ``[[certificates.files]]``: certificate/key files on disk (validated with the
  profile).
- One sslyze scan per TLS endpoint per run, shared by every rule test and by the certificate
  suite: the ``tls_scanner`` fixture reads or fills the run's scan cache
  (``reports/evidence/<run>/tls/<endpoint>.json``, which is also the evidence file). xdist
  workers share that folder; a per-endpoint file lock makes the first worker scan and the
  others read its result, and a scan older than the run's start is never reused.
- ``tls_check`` parametrisation: one test per (endpoint × policy rule), ids like
  ``test_anssi[imap-starttls-protocols]``, each marked with the rule's requirement.
- :func:`report_verdict`: one mapping of verdicts to outcomes for both suites.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plugins import environments
from plugins.endpoints import Endpoint, tls_endpoints
from plugins.outcomes import Recorder
from plugins.profile import Profile
from plugins.run import RunInfo
from policy.tls import PolicyError, TlsPolicy, load_policy
from probes.tls_scan import TlsEndpoint, TlsScan, scan_cached

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "fixtures" / "policies" / "anssi-tls.toml"
POLICY_KEY = pytest.StashKey[TlsPolicy]()
POLICY_ORIGIN_KEY = pytest.StashKey[str]()
FILES_KEY = pytest.StashKey[list["CertificateFile"]]()
SCAN_FOLDER = "tls"                 # under the run's evidence folder
MAX_PARALLEL_SCANS = 8              # endpoints scanned side by side (a profile has a handful)
# A whole scan (usually < 10 s); each connection is bounded by the profile.
SCAN_DEADLINE_S = 60.0


class NotMeasured(ConnectionError):
    """The check could not measure what it judges (scan failed, a scan command failed).

    A ``ConnectionError`` because that is what :mod:`plugins.reporting` reports as *error*
    ("could not run"), distinct from a failed check.
    """


# --- options and configuration ---------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mssante").addoption(
        "--tls-policy", dest="mssante_tls_policy", metavar="PATH", default=None,
        help="TLS policy file (default: the profile's [policy] tls, else the shipped ANSSI "
             "policy fixtures/policies/anssi-tls.toml)")


def policy_path(config: pytest.Config) -> tuple[Path, str] | None:
    """The policy file this run uses and where that choice came from (None: no profile and
    no ``--tls-policy``, i.e. the suite's own tests)."""
    option = config.getoption("mssante_tls_policy", None)
    if option:
        return Path(option).resolve(), "command line (--tls-policy)"
    profile = environments.get_profile(config)
    if profile is None:
        return None
    from_profile = profile.path_of("policy", "tls")
    if from_profile is not None:
        return from_profile, f"profile {profile.path.name} [policy] tls"
    return DEFAULT_POLICY, "default"


def pytest_configure(config: pytest.Config) -> None:
    """Runs after the centralised configure (plugins/__init__.py), so the profile is loaded."""
    chosen = policy_path(config)
    if chosen is not None:
        try:
            config.stash[POLICY_KEY] = load_policy(chosen[0])
        except PolicyError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[POLICY_ORIGIN_KEY] = chosen[1]
    profile = environments.get_profile(config)
    if profile is not None:
        config.stash[FILES_KEY] = certificate_files(profile)


def get_policy(config: pytest.Config) -> TlsPolicy | None:
    return config.stash.get(POLICY_KEY, None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    policy = get_policy(config)
    if policy is None:
        return []
    return [f"TLS policy: {policy.name} from {policy.path} [{config.stash[POLICY_ORIGIN_KEY]}]"]


# --- certificate files declared by the profile -----------------------------------------------

@dataclass(frozen=True)
class CertificateFile:
    """One ``[[certificates.files]]`` entry: a certificate (leaf first, intermediates may
    follow), its private key, optionally a separate chain file, the host names clients use
    for it, and whether it also authenticates us as a client (the MX's certificate does)."""

    name: str
    cert: Path
    key: Path
    chain: Path | None = None
    hosts: tuple[str, ...] = ()
    client_auth: bool = False


def certificate_files(profile: Profile) -> list[CertificateFile]:
    """The profile's ``[[certificates.files]]`` (validated when the profile loads:
    plugins/profile.py ARRAYS), paths resolved against the profile's folder."""
    base = profile.path.parent
    return [CertificateFile(
        entry["name"], (base / entry["cert"]).resolve(), (base / entry["key"]).resolve(),
        (base / entry["chain"]).resolve() if "chain" in entry else None,
        tuple(entry.get("hosts", ())), entry.get("client_auth", False))
        for entry in (profile.data.get("certificates") or {}).get("files", [])]


def get_certificate_files(config: pytest.Config) -> list[CertificateFile]:
    return config.stash.get(FILES_KEY, [])


# --- one test per (endpoint × rule) ----------------------------------------------------------

@dataclass(frozen=True)
class TlsCheck:
    """One rule of the policy on one endpoint."""

    endpoint: Endpoint
    rule_id: str


def service_of(endpoint: Endpoint) -> str:
    """The service name reports group by (``smtp.mx`` → ``smtp-mx``), as other suites use."""
    return endpoint.section.replace(".", "-")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tls_check" not in metafunc.fixturenames:
        return
    profile = environments.get_profile(metafunc.config)
    policy = get_policy(metafunc.config)
    if profile is None or policy is None:
        return
    endpoints = tls_endpoints(profile)
    if not endpoints:
        # Still one (skipped) test, carrying every requirement the policy would have proved,
        # so the report lists them as not verified.
        requirements = sorted({rule.requirement for rule in policy.rules})
        metafunc.parametrize("tls_check", [pytest.param(None, marks=[
            pytest.mark.skip(reason=f"not configured in {profile.name}: no TLS endpoint"),
            pytest.mark.requirement(*requirements)])])
        return
    metafunc.parametrize("tls_check", [
        pytest.param(TlsCheck(endpoint, rule.id), id=f"{endpoint.name}-{rule.id}",
                     marks=[pytest.mark.requirement(rule.requirement),
                            pytest.mark.service(service_of(endpoint))])
        for endpoint in endpoints for rule in policy.rules_for(endpoint.name)])


# --- the shared scans ------------------------------------------------------------------------

def scan_target(endpoint: Endpoint) -> TlsEndpoint:
    """What sslyze scans for a profile endpoint: STARTTLS where the protocol upgrades, the
    HTTP header check on HTTPS, and the MX's client certificate (the inter-operator port
    requires one, so a scan without it would see nothing)."""
    return TlsEndpoint(endpoint.name, endpoint.host, endpoint.port,
                       starttls=endpoint.starttls,  # type: ignore[arg-type]  # checked by TlsEndpoint
                       client_cert=endpoint.client_cert, client_key=endpoint.client_key,
                       http=endpoint.mode == "https")


def scan_evidence(endpoint: Endpoint) -> str:
    """The scan's evidence file, relative to the run's evidence folder."""
    return f"{SCAN_FOLDER}/{endpoint.name}.json"


@pytest.fixture(scope="session")
def tls_policy(pytestconfig: pytest.Config) -> TlsPolicy:
    policy = get_policy(pytestconfig)
    if policy is None:
        pytest.skip("no TLS policy (no --env and no --tls-policy)")
    return policy


def endpoints_under_test(items: list[pytest.Item]) -> dict[str, Endpoint]:
    """The endpoints this session's tests will ask scans of (``tls_check`` and ``wire``
    certificate sources), by name."""
    found: dict[str, Endpoint] = {}
    for item in items:
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            candidates = value if isinstance(value, tuple) else (value,)
            for candidate in candidates:
                endpoint = candidate.endpoint if isinstance(candidate, TlsCheck) else candidate
                if isinstance(endpoint, Endpoint):
                    found[endpoint.name] = endpoint
    return found


@pytest.fixture(scope="session")
def tls_scanner(request: pytest.FixtureRequest, env_profile: Profile, evidence_path: Path,
                run_info: RunInfo) -> Iterator[Callable[[Endpoint], TlsScan]]:
    """``tls_scanner(endpoint)`` → this run's scan of it (scanned once per run, see module doc).

    The first call starts the scans of every endpoint the session's tests need, side by side:
    a scan mostly waits on the server (Dovecot takes seconds per handshake batch), so the run
    waits for the slowest scan instead of their sum. Each scan still takes its endpoint's lock,
    so xdist workers never scan one endpoint twice.
    """
    cache = evidence_path / SCAN_FOLDER
    fresh_after = datetime.fromtimestamp(run_info.started, UTC)
    timeout = env_profile.threshold("connect_timeout_s")
    pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL_SCANS, thread_name_prefix="tls-scan")
    scans: dict[str, Future[TlsScan]] = {}

    def start(endpoint: Endpoint) -> None:
        if endpoint.name not in scans:
            scans[endpoint.name] = pool.submit(
                scan_cached, scan_target(endpoint), cache, timeout_s=timeout,
                deadline_s=SCAN_DEADLINE_S, fresh_after=fresh_after)

    def scan_of(endpoint: Endpoint) -> TlsScan:
        if not scans:
            for wanted in endpoints_under_test(request.session.items).values():
                start(wanted)
        start(endpoint)
        return scans[endpoint.name].result()

    yield scan_of
    pool.shutdown(wait=True, cancel_futures=True)


# --- verdict → outcome -----------------------------------------------------------------------

def report_verdict(record: Recorder, verdict: str, message: str, measured: Any = None,
                   measure_name: str = "") -> None:
    """pass → passed; warn → a warning (a failure under ``--strict-warnings``);
    not_applicable → skipped; error → *error* (could not run); fail → failed with ``message``.
    ``measured`` is recorded beside the verdict whatever it is."""
    if measured is not None:
        record.measure(measure_name, measured)
    if verdict == "pass":
        return
    if verdict == "warn":
        record.warn(message)
    elif verdict == "not_applicable":
        pytest.skip(f"not applicable: {message}")
    elif verdict == "error":
        raise NotMeasured(message)
    else:
        pytest.fail(message, pytrace=False)
