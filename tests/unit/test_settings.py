"""One declaration per setting (controller/run/settings.py): what is derived from it, and
one request builder (worker.protocol.phase_request) for the controller and the CLI."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from parbench.controller.run import seal
from parbench.controller.run.inventory import InventoryError, Settings, load
from parbench.controller.run.plan import ReferenceFacts, node_request
from parbench.controller.run.settings import (
    BY_NAME,
    SETTINGS,
    Proxy,
    default_of,
    help_text,
    request_settings,
)
from parbench.worker import __main__ as worker_main
from parbench.worker.protocol import REQUEST_DEFAULTS, Reference

REPO = Path(__file__).resolve().parents[2]
NODES = "nodes:\n  - {id: n0, host: h0}\n"
INVENTORY = "defaults: {dst: /bench, data: ref, local_dst: /copies}\n" + NODES


@pytest.fixture
def inventory(tmp_path: Path):
    (tmp_path / "ref").write_text("x")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    return load(tmp_path / "inv.yaml")


def test_every_setting_is_declared_once_in_the_order_of_settings() -> None:
    assert [f.name for f in fields(Settings)] == [s.name for s in SETTINGS]
    assert len(BY_NAME) == len(SETTINGS)


def test_each_declared_default_passes_its_own_check() -> None:
    for setting in SETTINGS:
        default_of(setting.name)  # no InventoryError


def test_the_help_is_derived_from_the_declaration() -> None:
    assert BY_NAME["chunk_size"].describe() == "chunk_size: 1MiB  (4KiB to 1GiB) bytes per request"
    assert BY_NAME["clients"].describe() == "clients: 2  (1 to 1024) client processes per node"
    assert BY_NAME["on_existing"].describe().startswith("on_existing: replace  (replace | refuse)")
    assert BY_NAME["posix_root"].describe().startswith("posix_root: null  (null | a POSIX path)")
    assert BY_NAME["latency"].describe().startswith("latency: true  (true | false)")
    assert BY_NAME["start_delay"].values == "auto | 0.01 to 3600 s"
    assert BY_NAME["meta_files"].values == "1 to 1000000"
    assert BY_NAME["request_timeout"].values == "null | 1 to 604800 s"
    assert "(0 to 0" not in help_text()  # each rule of its own says what it takes
    assert len(help_text().splitlines()) == len(SETTINGS)


def test_the_example_inventory_documents_every_setting() -> None:
    text = (REPO / "inventory.example.yaml").read_text()
    missing = [s.name for s in SETTINGS if not re.search(rf"^\s+{s.name}:", text, re.M)]
    assert missing == []


def test_the_settings_a_request_carries_default_alike_on_both_sides() -> None:
    sent = {s.name: s.request for s in SETTINGS if s.request}
    assert sent, "some settings go to the nodes"
    for name, keyword in sent.items():
        assert REQUEST_DEFAULTS[keyword] == default_of(name), name


def test_a_run_sealed_before_a_setting_existed_gets_its_default(inventory) -> None:
    sealed = seal.inventory_to_dict(inventory)
    del sealed["settings"]["fanout"], sealed["settings"]["until_stable"]
    opened = seal.inventory_from_dict(sealed)
    assert (opened.settings.fanout, opened.settings.until_stable) == (64, None)
    assert opened.settings == inventory.settings


def _by_hand(*argv: str):
    return worker_main.request_from_args(worker_main.build_parser().parse_args(list(argv)))


def test_the_cli_and_the_controller_build_a_request_alike(inventory) -> None:
    reference = ReferenceFacts("/ctl/ref", 1, "ab" * 32)
    node = inventory.node("n0")
    for phase in ("write", "meta"):
        planned = node_request(inventory, node, phase, "r1", reference)
        by_hand = _by_hand(
            phase, *(["--src", planned.reference.path] if phase == "write" else []),
            "--dst", "/bench", "--node", "n0", "--clients", "2", "--run-id", "r1",
            "--out", planned.out, "--host", "127.0.0.1", "--start-on-stdin",
            "--timeout", str(planned.storage.timeout),
        )  # fmt: skip
        # by hand: the reference checked by content only; no read copies in a write
        ref = planned.reference and Reference(planned.reference.path)
        assert by_hand == replace(planned, reference=ref, local_dst=None)
    assert request_settings(inventory.settings)["chunk_size"] == 1024 * 1024


def test_nfile_is_the_old_name_of_clients() -> None:
    common = ("write", "--src", "/ref", "--dst", "/bench", "--node", "n0", "--run-id", "r1")
    assert _by_hand(*common, "--nfile", "3") == _by_hand(*common, "--clients", "3")
    assert len(_by_hand(*common, "--clients", "3").clients) == 3


# --- the setting added through its declaration: request_timeout -------------------------


@pytest.mark.parametrize(("given", "timeout"), [(None, 1620.0), (60, 60.0), (5000, 1620.0)])
def test_request_timeout_bounds_each_storage_request(tmp_path: Path, given, timeout) -> None:
    (tmp_path / "ref").write_text("x")
    line = "" if given is None else f"  request_timeout: {given}\n"
    text = f"defaults:\n  dst: /bench\n  data: ref\n{line}" + NODES
    (tmp_path / "inv.yaml").write_text(text)
    inventory = load(tmp_path / "inv.yaml")
    reference = ReferenceFacts("/ctl/ref", 1, "ab" * 32)
    for phase in ("write", "verify-read"):
        request = node_request(inventory, inventory.node("n0"), phase, "r1", reference)
        assert request.storage.timeout == timeout


def test_a_bad_request_timeout_is_refused_by_its_declaration(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("defaults: {request_timeout: 0}\n" + NODES)
    with pytest.raises(InventoryError) as info:
        load(tmp_path / "inv.yaml")
    assert str(info.value).endswith(
        "defaults.request_timeout: expected a duration between 1 and 604800 s"
        " (like 90, 1m30s, 2h), got 0"
    )


def test_each_field_of_settings_has_the_type_of_its_declared_default() -> None:
    """``inventory.Settings`` keeps a typed field per declaration (so that a type checker
    and a reader see ``settings.chunk_size`` as an int): the field's name and order are
    the declaration's, its checked default is of the field's type (a bool only where the
    field is one), and a setting that may be null is Optional there."""
    import types
    import typing

    hints = typing.get_type_hints(Settings)
    assert list(hints) == [s.name for s in SETTINGS]
    wrong = []
    for setting in SETTINGS:
        hint = hints[setting.name]
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        value = default_of(setting.name)
        if not isinstance(value, kinds) or (type(value) is bool) != (bool in kinds):
            wrong.append(f"{setting.name}: default {value!r} is no {hint}")
        if setting.null and type(None) not in kinds:
            wrong.append(f"{setting.name}: null {setting.null}, field {hint}")
    assert wrong == []


def test_the_help_shows_the_proxy_default_the_check_uses() -> None:
    """proxy's declared default is the address an absent key gives, written as YAML."""
    assert BY_NAME["proxy"].describe().startswith("proxy: {host: 127.0.0.1, port: 39999}  (")
    assert default_of("proxy") == Proxy("127.0.0.1", 39999)


def readme_defaults() -> list[str]:
    """The lines of the ``defaults:`` block of the inventory reference (docs/inventory.md)."""
    text = (REPO / "docs" / "inventory.md").read_text()
    start = text.index("```yaml\ndefaults:") + len("```yaml\n")
    lines = text[start:].splitlines()[1:]
    return lines[: next(i for i, line in enumerate(lines) if not line.startswith(" "))]


def test_the_readme_shows_every_setting_with_its_declared_default() -> None:
    """The inventory reference's defaults in short (docs/inventory.md): a line ``  name:
    default`` per declared setting, the default as settings.py declares it (its comments
    are the reference's own)."""
    block = readme_defaults()
    wrong = [
        f"{s.name}: {s.written}"
        for s in SETTINGS
        if not any(
            re.fullmatch(rf"  {s.name}: {re.escape(s.written)}(\s+#.*)?", line) for line in block
        )
    ]
    assert wrong == []
