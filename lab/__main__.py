"""``python -m lab {install,up,down,status,reload,faults,env}``."""
from __future__ import annotations

import argparse
import sys
import time

from lab import control, paths
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
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
