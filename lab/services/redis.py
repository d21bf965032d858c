"""Redis: the API's token store, password-protected, with RDB snapshots a backup can copy.

It runs in the foreground as the ``redis`` system user (as Debian's unit does), so the lab
knows its pid directly. Persistence is RDB only (``dump.rdb`` under ``.lab/redis/data``):
the seed's backup copies that snapshot after a ``SAVE``/``BGSAVE`` and its rollback puts it
back, so ``appendonly`` stays off to keep one file the whole truth.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab import identity, ports
from lab.process import LabError, log_tail, spawn, wait_port, write_if_changed
from lab.services.base import LabContext, PidfileService

OS_USER = "redis"
START_TIMEOUT = 15
# process-impostor: Redis is not on its port, while a redis-server runs for something else
# here (no snapshot, its own folder), so a process named redis-server exists on the host.
IMPOSTOR_PORT = ports.REDIS + 1


class Redis(PidfileService):
    # Stopping with SIGTERM (PidfileService.stop) makes Redis write a final snapshot.
    name = "redis"
    ports = {"redis": ports.REDIS}
    packages = ("redis-server",)
    commands = ("redis-server",)

    @property
    def conf(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    def wanted(self, ctx: LabContext) -> bool:
        return not ctx.has("redis-down")

    def configure(self, ctx: LabContext) -> bool:
        password = ("" if ctx.has("redis-no-password")
                    else f"requirepass {ctx.secrets[identity.REDIS_PASSWORD_ENV]}\n")
        impostor = ctx.has("process-impostor")
        # RDB snapshots: after 15 min if 1 change, 5 min if 10, 1 min if 10000 (Redis
        # defaults); the impostor never snapshots over anything.
        save = '""' if impostor else "900 1 300 10 60 10000"
        content = f"""\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` (restarts Redis).
bind {ports.HOST}
port {IMPOSTOR_PORT if impostor else ports.REDIS}
protected-mode yes
daemonize no
logfile ""
dir {self._data_dir(impostor)}
dbfilename dump.rdb
save {save}
stop-writes-on-bgsave-error yes
appendonly no
{password}"""
        # The file holds the password: readable by the redis user only.
        changed = write_if_changed(self.conf, content, 0o600)
        shutil.chown(self.conf, OS_USER, OS_USER)
        return changed

    def _data_dir(self, impostor: bool) -> Path:
        return self.dir / ("impostor" if impostor else "data")

    def _rendered_port(self) -> int:
        """The port the configuration on disk names (the impostor's under process-impostor)."""
        for line in self.conf.read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
        return ports.REDIS

    def start(self, ctx: LabContext) -> None:
        port = self._rendered_port()
        data = self._data_dir(port == IMPOSTOR_PORT)
        data.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, OS_USER, OS_USER)
        os.chmod(data, 0o750)
        spawn(["redis-server", str(self.conf)], self.log, self.pidfile, user=OS_USER,
              cwd=data)
        if not wait_port(port, START_TIMEOUT):
            self.stop()
            raise LabError(f"redis did not open port {port}: {log_tail(self.log)}")

    def reload(self) -> None:
        """Redis cannot re-read its file: apply it with a restart (the snapshot survives)."""
        self.stop()
        self.start(LabContext())
