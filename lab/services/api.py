"""The reference API (``lab/api``) as a lab service: plain HTTP on loopback, behind nginx.

``configure`` writes ``.lab/api/api.env``, the API's only settings file. It names the
variables holding secrets (the API reads them from ``.lab/secrets.env``) rather than copying
them, so the file can be shown and edited freely. The API's own faults (``health-lies``,
``auth-broken``, ``api-health-shape``) are switches in that file, visible to whoever reads it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from lab import identity, paths, ports, tls
from lab.process import LabError, log_tail, pid_alive, port_open, spawn, write_if_changed
from lab.services.base import LabContext, PidfileService

START_TIMEOUT = 15
API_FAULTS = ("health-lies", "auth-broken", "api-health-shape")


def wait_listening(pid: int, port: int, timeout: float) -> bool:
    """Wait for the port, but give up as soon as the process has died (a settings error
    ends the API in a fraction of a second; waiting out the time-out would hide it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


def display_name(address: str) -> str:
    """'medecin.test@…' -> 'Medecin Test': the lab's mailboxes need a human-looking name."""
    return " ".join(part.capitalize() for part in address.split("@")[0].split("."))


class Api(PidfileService):
    name = "api"
    ports = {"api-backend": ports.API_BACKEND}

    @property
    def env_file(self) -> Path:
        return self.dir / "api.env"

    @property
    def pidfile(self) -> Path:
        return self.dir / "api.pid"

    @property
    def log(self) -> Path:
        return self.dir / "api.log"

    @property
    def maintenance_flag(self) -> Path:
        return self.dir / "maintenance"

    def wanted(self, ctx: LabContext) -> bool:
        return not ctx.has("api-down")

    def configure(self, ctx: LabContext) -> bool:
        mailboxes = ",".join(f"{address}:{display_name(address)}:{variable}"
                             for address, variable in identity.MAILBOXES.items())
        # Under redis-no-password Redis would reject an AUTH, so the API sends none.
        redis_password_env = "" if ctx.has("redis-no-password") else identity.REDIS_PASSWORD_ENV
        faults = ",".join(f for f in API_FAULTS if ctx.has(f))
        content = f"""\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` (restarts the API).
# Secrets are not here: *_ENV settings name variables looked up in the environment, then
# in MSSANTE_API_SECRETS_FILE.
MSSANTE_API_LISTEN={ports.HOST}:{ports.API_BACKEND}
MSSANTE_API_DB_HOST={ports.HOST}
MSSANTE_API_DB_PORT={ports.POSTGRES}
MSSANTE_API_DB_NAME={identity.DB_NAME}
MSSANTE_API_DB_USER={identity.DB_USER}
MSSANTE_API_DB_PASSWORD_ENV={identity.DB_PASSWORD_ENV}
MSSANTE_API_REDIS_HOST={ports.HOST}
MSSANTE_API_REDIS_PORT={ports.REDIS}
MSSANTE_API_REDIS_PASSWORD_ENV={redis_password_env}
MSSANTE_API_SECRETS_FILE={paths.secrets_file()}
MSSANTE_API_TOKEN_TTL=3600
MSSANTE_API_MAINTENANCE_FLAG={self.maintenance_flag}
# Certificate nginx serves on https-api, exported as its expiry metric.
MSSANTE_API_CERT_FILE={tls.served(ctx).cert}
# CRLs and CA certificates published at /crl/<ca>.crl and /aia/<ca>.cer.
MSSANTE_API_PKI_DIR={paths.pki_dir()}
MSSANTE_API_ADMIN={identity.ADMIN_EMAIL}:{identity.ADMIN_PASSWORD_ENV}
MSSANTE_API_MAILBOXES={mailboxes}
# Lab fault switches (health-lies, auth-broken); empty on a good lab.
MSSANTE_API_FAULTS={faults}
"""
        return write_if_changed(self.env_file, content, 0o644)

    def start(self, ctx: LabContext) -> None:
        pid = spawn([sys.executable, "-m", "lab.api", "serve"], self.log, self.pidfile,
                    env={"MSSANTE_API_ENV_FILE": str(self.env_file), "PYTHONUNBUFFERED": "1"},
                    cwd=paths.REPO_ROOT)
        if not wait_listening(pid, ports.API_BACKEND, START_TIMEOUT):
            self.stop()
            raise LabError(f"api did not open port {ports.API_BACKEND}: {log_tail(self.log)}")

    def reload(self) -> None:
        """The API reads api.env at start only: apply it with a restart."""
        self.stop()
        self.start(LabContext())
