"""The mssante-check pytest plugin: one module per concern.

- :mod:`plugins.run` — run identity and evidence folder, shared with xdist workers
- :mod:`plugins.environments` — ``--env``: the environment profile (:mod:`plugins.profile`)
- :mod:`plugins.requirements` — requirement catalogue and ``@pytest.mark.requirement``
- :mod:`plugins.outcomes` — warnings, measurements, ``wait_until``
- :mod:`plugins.reporting` — results JSON, markdown summary, JUnit/HTML defaults
- :mod:`plugins.redaction` — secrets masked in every report, log record and terminal line
- :mod:`plugins.targets` — thin client fixtures over the profile's targets
- :mod:`plugins.endpoints` — the profile's TLS endpoints and ``tls_endpoint`` parametrisation
- :mod:`plugins.tls_audit` — ``--tls-policy``, the profile's certificate files, one TLS scan
  per endpoint per run (shared by xdist workers), one test per (endpoint × policy rule)
- :mod:`plugins.waivers` — ``fixtures/waivers.toml`` / ``--waivers``: approved, expiring waivers
- :mod:`plugins.evidence` — ``--evidence``: evidence report, bundle and SHA-256 manifest
- :mod:`plugins.load` — ``--load``: the load suite run with locust, bounded and judged
  (:mod:`plugins.load_stats` reads and judges its output, :mod:`plugins.load_chart` draws it)
- :mod:`plugins.lifecycle` — ``--deploy VERSION``: pre-deploy checks, backup, deploy, automatic
  rollback, on the xdist controller; the ``deployment`` fixture; ``[[hosts]]`` validated up front

Not plugins: :mod:`plugins.healthcheck`, the seed's 5-minute health check as a command
(``python -m plugins.healthcheck --env NAME``); :mod:`plugins.backups`, backups as a library
and a command (``python -m plugins.backups --env NAME --list|--create|--restore ID``);
:mod:`plugins.hosts`, the profile's testinfra hosts; :mod:`plugins.deployment_report`.

``pytest_configure`` is centralised here because the order matters: the run identity first,
then the profile (a bad one stops the run), the catalogue, the waivers (checked against the
catalogue), and the report writers last (the evidence writer needs the Collector); the
lifecycle after them (its phases become results the Collector merges).
"""
from __future__ import annotations

import pytest

from plugins import environments, evidence, reporting, requirements, run, waivers

pytest_plugins = [
    "plugins.run",
    "plugins.environments",
    "plugins.requirements",
    "plugins.outcomes",
    "plugins.reporting",
    "plugins.targets",
    "plugins.endpoints",
    "plugins.tls_audit",
    "plugins.waivers",
    "plugins.evidence",
    "plugins.load",
    "plugins.lifecycle",
    "plugins.redaction",        # last: its report hooks run first (tryfirst), before any writer
]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "service(*names): platform services this test exercises")
    run.configure(config)
    environments.configure(config)
    requirements.configure(config)
    waivers.configure(config)
    reporting.configure(config)
    evidence.configure(config)
    # Imported here, not at the top: `python -m plugins.backups` imports this package first,
    # and the lifecycle imports plugins.backups (runpy warns when a -m module is pre-imported).
    from plugins import lifecycle

    lifecycle.configure(config)
