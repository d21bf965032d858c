"""Registry of lab services, in start order (dependencies first).

Modules are imported lazily, so a service under construction or broken names itself
instead of breaking every command.
"""
from __future__ import annotations

import importlib

from lab.services.base import LabContext, Service

REGISTRY: dict[str, str] = {
    "postgres": "lab.services.postgres:Postgres",
    "redis": "lab.services.redis:Redis",
    "api": "lab.services.api:Api",
    "nginx": "lab.services.nginx:Nginx",
    "dovecot": "lab.services.dovecot:Dovecot",
    "postfix": "lab.services.postfix:Postfix",
    "prometheus": "lab.services.prometheus:Prometheus",
    "alertmanager": "lab.services.alertmanager:Alertmanager",
}


def load(name: str) -> Service:
    module, _, cls = REGISTRY[name].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except (ImportError, AttributeError) as exc:
        from lab.process import LabError

        raise LabError(f"lab service '{name}' cannot be loaded ({module}): {exc}") from exc


def selected(only: list[str] | None = None) -> list[Service]:
    """The services to act on, in start order (all of them unless ``only`` names some)."""
    names = [n for n in REGISTRY if not only or n in only]
    return [load(name) for name in names]


__all__ = ["LabContext", "Service", "REGISTRY", "load", "selected"]
