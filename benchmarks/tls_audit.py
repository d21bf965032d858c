"""Wall time of a full ANSSI TLS audit of one endpoint vs a bare sslyze scan vs testssl.sh.

    .venv/bin/python benchmarks/tls_audit.py --host localhost --port 10443 --runs 5 --http

* audit: ``probes.tls_scan.scan`` + ``policy.tls.evaluate`` with the ANSSI policy + the evidence
  JSON written to disk — what the TLS suite pays per endpoint (cache off).
* bare sslyze: the same scan commands through sslyze's ``Scanner``, results discarded.
* testssl.sh: the closest equivalent run (protocols, suites per protocol, server defaults and
  certificate, forward secrecy, vulnerabilities, and headers for HTTPS), bounded by a timeout.

Targets (issue 4): audit within 1.2x of bare sslyze; at least 20x faster than testssl.sh.
Runs of the two sslyze-based tools alternate so drift on a busy machine hits both alike.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from policy.tls import evaluate, load_policy
from probes.testssl import run_testssl
from probes.tls_scan import TlsEndpoint, expected_commands, scan

TESTSSL_ARGS = ("--protocols", "--cipher-per-proto", "--server-defaults", "--fs", "--vulnerable")


def audit_once(endpoint: TlsEndpoint, policy_path: Path, evidence_dir: Path) -> None:
    result = scan(endpoint)
    if result.error:
        raise RuntimeError(f"audit scan failed: {result.error}")
    evaluate(load_policy(policy_path), result)
    (evidence_dir / f"{endpoint.name}.json").write_text(json.dumps(result.to_record()))


def bare_sslyze_once(endpoint: TlsEndpoint) -> None:
    from sslyze import (
        ProtocolWithOpportunisticTlsEnum,
        ScanCommand,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    commands = {ScanCommand(c) for c in expected_commands(endpoint)}
    starttls = {"smtp": ProtocolWithOpportunisticTlsEnum.SMTP,
                "imap": ProtocolWithOpportunisticTlsEnum.IMAP}.get(endpoint.starttls or "")
    config = ServerNetworkConfiguration(endpoint.server_name or endpoint.host,
                                        tls_opportunistic_encryption=starttls,
                                        network_timeout=5, network_max_retries=2)
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(ServerNetworkLocation(endpoint.host, endpoint.port),
                                           network_configuration=config,
                                           scan_commands=commands)])
    for result in scanner.get_results():
        if result.scan_result is None:
            raise RuntimeError("bare sslyze scan could not connect")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=5, help="runs of audit and bare sslyze")
    parser.add_argument("--testssl-runs", type=int, default=1,
                        help="runs of testssl.sh (about a minute each)")
    parser.add_argument("--starttls", choices=("smtp", "imap"))
    parser.add_argument("--server-name", help="SNI (default: --host)")
    parser.add_argument("--http", action="store_true", help="HTTPS endpoint: check headers (HSTS)")
    parser.add_argument("--policy", type=Path,
                        default=REPO / "fixtures" / "policies" / "anssi-tls.toml")
    parser.add_argument("--testssl-timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")       # sslyze's trust stores trip cryptography deprecations

    endpoint = TlsEndpoint("bench", args.host, args.port, starttls=args.starttls,
                           server_name=args.server_name, http=args.http)
    times: dict[str, list[float]] = {"audit (ANSSI)": [], "bare sslyze": [], "testssl.sh": []}
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as evidence:
        for run in range(args.runs):
            pair = [("audit (ANSSI)", lambda: audit_once(endpoint, args.policy, Path(evidence))),
                    ("bare sslyze", lambda: bare_sslyze_once(endpoint))]
            for name, action in pair if run % 2 == 0 else reversed(pair):
                times[name].append(timed(action))
    testssl_args = TESTSSL_ARGS + (("--headers",) if args.http else ())
    for _ in range(args.testssl_runs):
        findings = run_testssl(args.host, args.port, args.starttls, testssl_args,
                               timeout_s=args.testssl_timeout)
        if findings.error:
            print(f"testssl.sh: {findings.error}", file=sys.stderr)
        times["testssl.sh"].append(findings.duration_s)

    medians = {name: statistics.median(values) for name, values in times.items() if values}
    bare = medians["bare sslyze"]
    print(f"TLS audit benchmark — {endpoint.display}")
    print(f"{'tool':<16}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}{'× bare':>8}")
    for name, values in times.items():
        if values:
            print(f"{name:<16}{len(values):>5}{medians[name]:>10.2f}{min(values):>8.2f}"
                  f"{max(values):>8.2f}{medians[name] / bare:>8.2f}")
    overhead = medians["audit (ANSSI)"] / bare
    print(f"audit / bare sslyze = {overhead:.2f}x (target <= 1.2x): "
          f"{'OK' if overhead <= 1.2 else 'MISSED'}")
    if "testssl.sh" in medians:
        speedup = medians["testssl.sh"] / medians["audit (ANSSI)"]
        print(f"testssl.sh / audit = {speedup:.1f}x (target >= 20x): "
              f"{'OK' if speedup >= 20 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
