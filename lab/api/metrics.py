"""Prometheus metrics, named as the seed's reports query them.

``http_requests_total`` and ``http_request_duration_seconds`` carry the route template (never
the raw path, which would make one series per token or file name). The certificate expiry is
read from the served certificate file at each scrape, so Prometheus sees a renewal or a fault
switch without restarting anything.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("mssante.api")


class CertificateExpiry(Collector):
    """``mssante_certificate_expiry_timestamp_seconds{endpoint}`` from certificate files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("mssante_certificate_expiry_timestamp_seconds",
                                   "notAfter of the certificate served on an endpoint (Unix time)",
                                   labels=["endpoint"])
        for endpoint, path in self.files.items():
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError) as exc:
                log.warning("certificate of %s unreadable (%s): %s", endpoint, path, exc)
                continue
            family.add_metric([endpoint], cert.not_valid_after_utc.timestamp())
        yield family


class Metrics:
    def __init__(self, version: str, certificates: dict[str, Path]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests served",
                                ["method", "path", "status"], registry=self.registry)
        self.duration = Histogram("http_request_duration_seconds", "HTTP request duration",
                                  ["method", "path"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        Info("mssante_api_build", "Reference API release", registry=self.registry).info(
            {"version": version})
        self.registry.register(CertificateExpiry(certificates))

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.duration.labels(method, path).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
