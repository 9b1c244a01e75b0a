"""``python -m testbed up [--nodes N] [--no-alluxio] [--fuse] | down | status | fuse up|down``"""

from __future__ import annotations

import argparse
import sys

from . import bed, fuse
from .layout import Layout
from .procs import TestbedError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start N sshd nodes and Alluxio (stopping a stale testbed)")
    up.add_argument("--nodes", type=int, default=3, help="number of ssh nodes (default 3)")
    up.add_argument("--no-alluxio", action="store_true", help="only the ssh nodes")
    up.add_argument(
        "--fuse",
        action="store_true",
        help=f"also mount Alluxio's / with Alluxio FUSE at {Layout().fuse} (nodes' posix_root)",
    )
    fuse_cmd = sub.add_parser("fuse", help="mount or unmount Alluxio FUSE on the running testbed")
    fuse_cmd.add_argument("action", choices=("up", "down"))
    sub.add_parser("down", help="stop everything the testbed started (idempotent)")
    sub.add_parser("status", help="what runs, on which ports")
    args = parser.parse_args(argv)
    layout = Layout()
    try:
        if args.command == "up":
            state = bed.up(
                layout, nodes=args.nodes, with_alluxio=not args.no_alluxio, with_fuse=args.fuse
            )
            print(f"testbed: up in {state.seconds_to_up} s; inventory: {state.inventory}")
        elif args.command == "fuse" and args.action == "up":
            state = bed.fuse_up(layout)
            print(f"testbed: Alluxio FUSE mounted at {state.fuse}; inventory: {state.inventory}")
        elif args.command == "fuse":
            stopped = bed.fuse_down(layout)
            print("testbed: Alluxio FUSE unmounted" if stopped else "testbed: no FUSE mount")
        elif args.command == "down":
            stopped = bed.down(layout)
            print(
                f"testbed: stopped {', '.join(stopped)}"
                if stopped
                else "testbed: nothing was running"
            )
        else:
            state, procs = bed.status(layout)
            if not procs:
                print("testbed: down")
                return 1
            for name, pid in procs.items():
                print(f"{name:16} {'pid ' + str(pid) if pid else 'NOT RUNNING'}")
            if state:
                for node in state.nodes:
                    print(f"node {node['id']:11} 127.0.0.1:{node['port']}  {node['workdir']}")
                if state.alluxio:
                    print(f"alluxio proxy    127.0.0.1:{state.alluxio['proxy']}")
                if state.fuse:
                    print(f"alluxio fuse     {fuse.describe(layout)}")
                print(f"inventory        {state.inventory}")
            mount_ok = not state or not state.fuse or fuse.mounted(layout.fuse) is not None
            return 0 if all(procs.values()) and mount_ok else 1
    except TestbedError as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
