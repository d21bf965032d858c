"""``python -m lab.api [serve|migrate]``: run the reference API, or only apply its migrations.

Settings come from ``MSSANTE_API_ENV_FILE`` and ``MSSANTE_API_*`` variables (see config.py).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

import psycopg

from lab.api import migrations
from lab.api.config import ConfigError, Settings
from lab.api.server import Api, make_server
from lab.api.store import Unavailable

log = logging.getLogger("mssante.api")


def serve(settings: Settings) -> None:
    api = Api(settings)
    server = make_server(api)          # listening from here: nginx's requests wait in backlog
    api.db.open()
    try:
        api.db.ensure_ready()
    except Unavailable as exc:         # keep serving: /health reports it, requests retry it
        log.warning("starting without the database: %s", exc)
    # SIGTERM (lab stop) ends serve_forever through SystemExit, so the pools close cleanly.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    log.info("reference API %s listening on %s:%d", api.version, settings.listen_host,
             settings.listen_port)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        api.db.close()


def migrate(settings: Settings) -> None:
    params: dict[str, Any] = {**settings.db, "connect_timeout": 5}
    with psycopg.connect(**params, autocommit=True) as conn:
        applied = migrations.apply_pending(conn, settings.migrations_dir)
        print(f"applied: {', '.join(applied) or 'nothing'}; schema: {migrations.current(conn)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.api", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings.load()
        if args.command == "migrate":
            migrate(settings)
        else:
            serve(settings)
    except (ConfigError, migrations.MigrationError, psycopg.Error) as exc:
        print(f"lab.api: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
