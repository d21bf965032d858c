"""PostgreSQL: the lab's own cluster under ``.lab/postgres``, owned by the ``postgres`` user.

PostgreSQL refuses to run as root, so the data directory, socket directory and log belong to
the ``postgres`` system user and every server command runs as that user. The configuration
(``postgresql.conf``, ``pg_hba.conf``, ``pg_ident.conf``) lives beside the data directory, not
in it, so an operator reads and edits plain files and ``configure`` can render them before the
cluster exists. TCP clients must use scram-sha-256 passwords; the local socket admits only the
OS users ``postgres`` and ``root`` as the ``postgres`` superuser (peer authentication with a
map), which lets the lab create the application role without any superuser password.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from lab import identity, ports
from lab.process import LabError, log_tail, read_pid, run, terminate, write_if_changed
from lab.services.base import LabContext, Service

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
START_TIMEOUT = 15


class Postgres(Service):
    name = "postgres"
    ports = {"postgres": ports.POSTGRES}
    packages = ("postgresql",)
    commands = (str(BIN / "pg_ctl"),)

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log(self) -> Path:
        return self.dir / "log" / "postgres.log"

    @property
    def conf(self) -> Path:
        return self.dir / "postgresql.conf"

    def wanted(self, ctx: LabContext) -> bool:
        # health-lies is only a lie if the database it claims to check is really down.
        return not (ctx.has("db-down") or ctx.has("health-lies"))

    def configure(self, ctx: LabContext) -> bool:
        changed = write_if_changed(self.conf, self._postgresql_conf(), 0o644)
        changed |= write_if_changed(self.dir / "pg_hba.conf", _PG_HBA, 0o644)
        changed |= write_if_changed(self.dir / "pg_ident.conf", _PG_IDENT, 0o644)
        return changed

    def _postgresql_conf(self) -> str:
        return f"""\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` to apply.
data_directory = '{self.data}'
hba_file = '{self.dir / "pg_hba.conf"}'
ident_file = '{self.dir / "pg_ident.conf"}'
listen_addresses = '{ports.HOST}'
port = {ports.POSTGRES}
unix_socket_directories = '{self.run_dir}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
max_connections = 50
shared_buffers = 32MB
# Never write statements to the log: ALTER ROLE ... PASSWORD would land there.
log_statement = 'none'
log_min_error_statement = panic
log_connections = off
log_line_prefix = '%m [%p] %q%u@%d '
"""

    def _prepare_dirs(self) -> None:
        """Directories the server writes to must belong to the postgres user."""
        for folder, mode in ((self.run_dir, 0o700), (self.log.parent, 0o700)):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, OS_USER, OS_USER)
            os.chmod(folder, mode)

    def _initdb(self) -> None:
        """Create the cluster once; an existing one (PG_VERSION present) is kept as it is."""
        if (self.data / "PG_VERSION").exists():
            return
        if self.data.exists():
            shutil.rmtree(self.data)          # a half-made cluster from an interrupted initdb
        self.data.mkdir(parents=True, mode=0o700)
        shutil.chown(self.data, OS_USER, OS_USER)
        # --no-sync: a lab cluster can be recreated, and fsyncing every file costs seconds.
        run([str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256",
             "--no-sync", "--no-instructions"], timeout=60, user=OS_USER)

    def start(self, ctx: LabContext) -> None:
        self._prepare_dirs()
        self._initdb()
        result = run([str(BIN / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
                      "-o", f"-c config_file={self.conf}", "-w", "-t", str(START_TIMEOUT)],
                     timeout=START_TIMEOUT + 5, user=OS_USER, check=False)
        if result.returncode != 0:
            raise LabError(f"postgres did not start: {log_tail(self.log)}")
        self._ensure_application_role(ctx)

    def _ensure_application_role(self, ctx: LabContext) -> None:
        """Create (or re-password) the API's role and database, as the socket superuser."""
        password = ctx.secrets[identity.DB_PASSWORD_ENV]
        role = sql.Identifier(identity.DB_USER)
        try:
            with psycopg.connect(host=str(self.run_dir), port=ports.POSTGRES, user="postgres",
                                 dbname="postgres", connect_timeout=5, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                      (identity.DB_USER,)).fetchone()
                verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
                conn.execute(sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                    verb, role, sql.Literal(password)))
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                    (identity.DB_NAME,)).fetchone():
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(identity.DB_NAME), role))
        except psycopg.Error as exc:
            raise LabError(f"postgres: could not create the application role: "
                           f"{str(exc).strip().splitlines()[0]}") from exc

    def stop(self) -> None:
        if self.is_running():
            run([str(BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w",
                 "-t", str(START_TIMEOUT)], timeout=START_TIMEOUT + 5, user=OS_USER, check=False)
        pid = self._pid()
        if pid is not None:                 # fast shutdown did not finish: no process may remain
            terminate(pid, timeout=5)

    def reload(self) -> None:
        """Re-read postgresql.conf and pg_hba.conf (settings that need a restart are logged)."""
        run([str(BIN / "pg_ctl"), "reload", "-D", str(self.data)], timeout=15, user=OS_USER)

    def _pid(self) -> int | None:
        return read_pid(self.data / "postmaster.pid")

    def is_running(self) -> bool:
        return self._pid() is not None


_PG_HBA = """\
# Rendered by `python -m lab up`. TCP: passwords (scram-sha-256) only, loopback only.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer map=lab
host    all       all       127.0.0.1/32   scram-sha-256
"""

_PG_IDENT = """\
# Rendered by `python -m lab up`: the OS users allowed to act as the postgres superuser locally.
# MAP  SYSTEM-USER  PG-USER
lab    postgres     postgres
lab    root         postgres
"""
