"""The workload flags of the tasks (``fab write --clients 3 --size 8MiB``), derived from
the settings' declarations (controller/run/settings.py: a setting with ``flag=`` is a
flag): the option's name (``chunk_size`` -> ``--chunk-size``), its help (what it may be,
its unit and range or choices, its default), whether it counts (shown as INT), and its
check: the setting's own, with the error naming the flag instead of the key
(``--clients: expected an integer between 1 and 1024, got 'x'``).

A flag's value is read as the same YAML key's would be (``3`` an integer, ``0.05`` a
number, ``null``), and a path is relative to the working directory. A flag overrides the
inventory's ``defaults:`` value (and a node's own value of the same key: ``--clients``
is the count of every node); the inventory keeps the flags given (``Inventory.flags``),
sealed in a run, so that a later command on the run applies them to today's inventory
again. ``--size`` is the one flag of no setting of its own: ``data`` as a size, never a
file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NoReturn

import yaml

from .checks import MAX_GENERATED, Check, InventoryError, in_units
from .settings import BY_NAME, FILE_PHASES, SETTINGS, Setting

#: what the tasks that start a run seal (``flag="run"``) and a timed phase's own rounds
#: (``flag="phase"``)
RUN, PHASE = "run", "phase"


@dataclass(frozen=True)
class Flag:
    """One option of the tasks, for one setting."""

    option: str  # the task's keyword, e.g. chunk_size
    setting: Setting
    sized: bool = False  # --size: the setting ``data`` as a size only

    @property
    def name(self) -> str:
        return "--" + self.option.replace("_", "-")

    @property
    def counts(self) -> bool:
        """A whole number: shown as INT."""
        return self.setting.unit == "count"

    @property
    def help(self) -> str:
        s = self.setting
        if self.sized:
            return (
                "data of this size generated on every node, e.g. 8MiB, 1GiB: 1B to"
                f" {in_units(MAX_GENERATED)} (instead of --data; default: defaults.data)"
            )
        values = s.values.replace(" | ", "|") if s.unit == "choice" else s.values
        extra = "; a node's own clients gives way" if s.name == "clients" else ""
        extra += "; for this command's phase" if s.flag == PHASE else ""
        return f"{s.help}: {values}{extra} (default: from the inventory, else {s.written})"

    def check(self, value: Any) -> Any:
        """The value checked as the setting's YAML key is, as plain data (a path
        absolute, a size in bytes); InventoryError naming the flag otherwise."""
        check = _FlagCheck(Path.cwd())
        if self.sized:
            return check.size(self.name, value, 1, MAX_GENERATED)
        checked = self.setting.check(check, self.name, _scalar(value))
        return str(checked) if isinstance(checked, Path) else checked


class _FlagCheck(Check):
    """The settings' checks, naming the flag (no file, no key path)."""

    def __init__(self, base: Path) -> None:
        super().__init__("", base)

    def fail(self, where: str, message: str) -> NoReturn:
        raise InventoryError(f"{where}: {message}")


def _scalar(value: Any) -> Any:
    """A flag's text as a YAML value of its own: ``3``, ``0.05``, ``true``, ``null``;
    else the text itself (a path, a choice, ``60s``)."""
    if not isinstance(value, str):
        return value
    try:
        read = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return read if read is None or isinstance(read, (bool, int, float)) else value


#: --size: generated data of that size (``data`` is a file or a size)
SIZE = Flag("size", BY_NAME["data"], sized=True)


def flags(
    kinds: tuple[str, ...], phases: tuple[str, ...], leave: tuple[str, ...] = ()
) -> tuple[Flag, ...]:
    """The flags of a task: the settings flagged one of ``kinds`` that count for one of
    its ``phases`` (or for every phase), but those named in ``leave``."""
    found = [
        Flag(s.name, s)
        for s in SETTINGS
        if s.flag in kinds and (not s.phases or set(s.phases) & set(phases))
    ]
    if RUN in kinds and BY_NAME["data"].phases and set(phases) & set(FILE_PHASES):
        found.insert([f.option for f in found].index("data"), SIZE)
    return tuple(f for f in found if f.option not in leave)


#: option name -> flag, every flag there is
ALL: dict[str, Flag] = {f.option: f for f in flags((RUN, PHASE), tuple(FILE_PHASES) + ("meta",))}


def checked(given: Mapping[str, Any]) -> dict[str, Any]:
    """The flags given (option -> value as typed; None: not given) checked, as the
    settings they set: setting name -> plain value."""
    chosen = {k: v for k, v in given.items() if v is not None}
    if "size" in chosen and "data" in chosen:
        raise InventoryError("--size, --data: give one of them (a size, or a file)")
    return {ALL[k].setting.name: ALL[k].check(v) for k, v in chosen.items()}


def applied(doc: Any, settings: Mapping[str, Any]) -> Any:
    """A copy of the inventory document with ``settings`` (checked flags) under
    ``defaults:``, and a node's own value of such a key dropped; a document not of the
    inventory's shape as it is (its build says what is wrong)."""
    if not settings or not isinstance(doc, dict):
        return doc
    doc = copy.deepcopy(doc)
    defaults = doc.get("defaults")
    if defaults is None:
        defaults = doc["defaults"] = {}
    if not isinstance(defaults, dict):
        return doc
    defaults.update(settings)
    nodes = doc.get("nodes")
    for node in nodes if isinstance(nodes, list) else ():
        if isinstance(node, dict):
            for name in settings:
                node.pop(name, None)
    return doc


def of_kind(options: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Of a task's options, the flags of ``kind`` given (option -> value)."""
    return {
        k: v
        for k, v in options.items()
        if v is not None and k in ALL and ALL[k].setting.flag == kind
    }
