"""``python -m lab {install,up,down,status,reload,faults,env,releases,deploy,rollback,maintenance,
restore-redis}``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lab import control, deploy, paths
from lab.faults import FAULTS
from lab.process import LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="apt-get install the daemons the lab needs")
    up = commands.add_parser("up", help="start the lab (idempotent)")
    up.add_argument("--fault", action="append", default=[], metavar="NAME",
                    help="start broken in this way (repeatable; see `faults`)")
    up.add_argument("--only", action="append", default=None, metavar="SERVICE",
                    help="start only these services (development aid)")
    commands.add_parser("down", help="stop everything the lab started")
    commands.add_parser("status", help="each service up/down with its ports")
    commands.add_parser("reload", help="apply the edited configuration files under .lab/")
    commands.add_parser("faults", help="list the faults the lab can be started with")
    commands.add_parser("env", help="print the path of the environment profile for the lab")
    commands.add_parser("releases", help="list the reference API's releases and the deployed one")
    deploy_cmd = commands.add_parser("deploy", help="deploy a release: stop the API, check out "
                                     "its tag, migrate, start (no health wait, no rollback)")
    deploy_cmd.add_argument("version", help="a release, e.g. 1.1.0 (see `releases`)")
    rollback = commands.add_parser("rollback", help="check out an earlier release and restart "
                                   "the API (data: python -m plugins.backups --restore)")
    rollback.add_argument("version", nargs="?", default=None,
                          help="release to go back to (default: the previous tag)")
    rollback.add_argument("-f", "--force", action="store_true",
                          help="no confirmation (also with ROLLBACK_AUTO=true)")
    maintenance = commands.add_parser("maintenance", help="switch the API's maintenance mode")
    maintenance.add_argument("state", choices=("on", "off"))
    restore_redis = commands.add_parser("restore-redis", help="stop Redis, put an RDB snapshot "
                                        "back, start it")
    restore_redis.add_argument("rdb", type=Path, help="the snapshot (redis.rdb of a backup)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(control.install())
        elif args.command == "up":
            started = time.monotonic()
            for line in control.up(args.fault, args.only):
                print(line)
            print(f"lab ready in {time.monotonic() - started:.1f}s "
                  f"(faults: {', '.join(args.fault) or 'none'})")
        elif args.command == "down":
            print("\n".join(control.down()))
        elif args.command == "status":
            print("\n".join(control.status()))
        elif args.command == "reload":
            print("\n".join(control.reload()) or "lab: nothing running")
        elif args.command == "faults":
            width = max(map(len, FAULTS))
            for name, description in FAULTS.items():
                print(f"{name:<{width}}  {description}")
        elif args.command == "env":
            print(paths.profile_path())
        elif args.command == "releases":
            print("\n".join([*deploy.ensure_platform(), *deploy.releases_table()]))
        elif args.command == "deploy":
            print("\n".join(deploy.deploy(args.version)))
        elif args.command == "rollback":
            print("\n".join(deploy.rollback(args.version, args.force)))
        elif args.command == "maintenance":
            print(deploy.maintenance(args.state == "on"))
        elif args.command == "restore-redis":
            print("\n".join(deploy.restore_redis(args.rdb.resolve())))
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
