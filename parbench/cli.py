"""The ``parbench`` command: fab's program with parbench's tasks built in, so that it runs
from any directory (no fabfile is looked for), chains tasks (``parbench write read
verify``) and reads Fabric's config layers (``bench.*`` keys, ``FABRIC_BENCH_*``, ``-f``).

Its one core option of its own: ``-i/--inventory FILE`` (the config key
``bench.inventory``); fab's ``-i`` (an SSH key) stays as ``--identity``, which the tasks
refuse (parbench's keys come from the inventory).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Optional

import fabric
from fabric.main import Fab
from invoke import Argument

from . import tasks

NAME = "parbench"
INVENTORY_HELP = "inventory file (default: config bench.inventory, else ./inventory.yaml)"


def parbench_version() -> str:
    """parbench's own version, from the installed distribution's metadata."""
    try:
        return version(NAME)
    except PackageNotFoundError:
        return "unknown (not installed)"


class Parbench(Fab):
    """fab with ``-i`` meaning the inventory; --version shows parbench's version."""

    def core_args(self) -> list[Argument]:
        args = super().core_args()
        for argument in args:
            if "identity" in argument.names:  # fab's -i: long only here
                argument.names = ("identity",)
        inventory = Argument(names=("inventory", "i"), help=INVENTORY_HELP)
        return [*args, inventory]

    def update_config(self) -> None:  # type: ignore[override]
        super().update_config()
        given: Optional[str] = self.args["inventory"].value
        if given:  # above FABRIC_BENCH_INVENTORY and config files, as a flag is
            bench = self.config._overrides.setdefault("bench", {})
            bench["inventory"] = given
            self.config.merge()

    def print_version(self) -> None:
        super().print_version()
        print(f"Fabric {fabric.__version__}")


def make_program() -> Parbench:
    return Parbench(
        name=NAME,
        binary=NAME,
        binary_names=[NAME],
        version=parbench_version(),
        namespace=tasks.ns,
        executor_class=fabric.Executor,
        config_class=fabric.Config,
    )


def main(argv: Optional[list[str]] = None) -> None:
    """The console script's entry point."""
    make_program().run(argv)
