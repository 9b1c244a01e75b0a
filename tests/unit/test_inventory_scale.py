"""An inventory at scale: connection keys once under ``defaults:``, host ranges, bare
hosts and hostfiles, ``~/.ssh/config`` for what the inventory leaves unset."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from parbench.controller.run.inventory import Inventory, InventoryError, load


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def load_text(folder: Path, text: str) -> Inventory:
    (folder / "inv.yaml").write_text(text)
    return load(folder / "inv.yaml")


def error_of(folder: Path, text: str) -> str:
    with pytest.raises(InventoryError) as info:
        load_text(folder, text)
    message = str(info.value)
    assert "\n" not in message
    return message.split(": ", 1)[1]


def test_connection_keys_once_under_defaults_and_overridden_per_node(
    home: Path, tmp_path: Path
) -> None:
    inv = load_text(
        tmp_path,
        """
defaults:
  user: bench
  port: 2222
  key: keys/id_bench
  workdir: /scratch/parbench
  alluxio_home: /opt/alluxio
  python: python3.11
  proxy: {host: proxy.lan}
nodes:
  - {id: a, host: ha}
  - {id: b, host: hb, user: ml, port: 22, key: ~/k, workdir: /w, alluxio_home: /a, python: py}
""",
    )
    a, b = inv.nodes
    assert (a.user, a.port, a.key, a.workdir) == (
        "bench",
        2222,
        tmp_path / "keys" / "id_bench",
        "/scratch/parbench",
    )
    assert (a.alluxio_home, a.python, a.proxy.host) == ("/opt/alluxio", "python3.11", "proxy.lan")
    assert (b.user, b.port, b.key, b.workdir) == ("ml", 22, home / "k", "/w")
    assert (b.alluxio_home, b.python) == ("/a", "py")


def test_a_workdir_by_default_follows_the_default_user(home: Path, tmp_path: Path) -> None:
    inv = load_text(tmp_path, "defaults: {user: bench}\nnodes: [{id: a, host: ha}]\n")
    assert inv.nodes[0].workdir == "/tmp/parbench-bench"


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("{port: 0}", "defaults.port: expected an integer between 1 and 65535, got 0"),
        ("{user: -x}", "defaults.user: '-x' begins with '-'"),
        ("{workdir: rel}", "defaults.workdir: expected an absolute POSIX path, got 'rel'"),
        ("{usr: bench}", "defaults.usr: unknown key; did you mean user?"),
        ("{alluxio_hom: /a}", "defaults.alluxio_hom: unknown key; did you mean alluxio_home?"),
    ],
)
def test_bad_defaults_are_named(home: Path, tmp_path: Path, defaults: str, message: str) -> None:
    text = f"defaults: {defaults}\nnodes: [{{id: a, host: ha}}]\n"
    assert error_of(tmp_path, text).startswith(message)


def test_a_hundred_nodes_in_five_lines(home: Path, tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "defaults: {user: bench, key: ~/.ssh/bench}\nnodes:\n  - host: edge[001-100].example.com\n",
    )
    assert len(inv.nodes) == 100
    assert inv.node_ids[:2] == ("edge001", "edge002") and inv.node_ids[-1] == "edge100"
    assert inv.nodes[41].host == "edge042.example.com"
    assert {n.user for n in inv.nodes} == {"bench"}


def test_several_ranges_keep_their_padding_first_outermost(home: Path, tmp_path: Path) -> None:
    inv = load_text(tmp_path, "nodes:\n  - {host: 'rack[1-2]-n[01-03,08]', clients: 4}\n")
    assert inv.node_ids == (
        "rack1-n01", "rack1-n02", "rack1-n03", "rack1-n08",
        "rack2-n01", "rack2-n02", "rack2-n03", "rack2-n08",
    )  # fmt: skip
    assert {n.clients for n in inv.nodes} == {4}


def test_ids_may_be_a_range_as_long_as_the_hosts(home: Path, tmp_path: Path) -> None:
    inv = load_text(tmp_path, "nodes:\n  - {id: 'e[1-3]', host: '10.0.0.[11-13]'}\n")
    assert [(n.id, n.host) for n in inv.nodes] == [
        ("e1", "10.0.0.11"),
        ("e2", "10.0.0.12"),
        ("e3", "10.0.0.13"),
    ]


def test_bare_hosts_and_a_hostfile(home: Path, tmp_path: Path) -> None:
    inv = load_text(
        tmp_path,
        "nodes:\n  - edge001.example.com\n  - 10.0.1.5\n  - {id: big, host: gpu1, clients: 8}\n",
    )
    assert inv.node_ids == ("edge001", "10.0.1.5", "big")
    assert inv.nodes[0].host == "edge001.example.com"
    assert inv.nodes[0].port == 22 and inv.nodes[0].user == getpass.getuser()
    hostfile = "nodes: |\n  # rack 1\n  a1.lan\n\n  a2.lan   # spare\n  b[1-2].lan\n"
    assert load_text(tmp_path, hostfile).node_ids == ("a1", "a2", "b1", "b2")


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            "[{host: 'e[3-1]'}]",
            "nodes[0].host: [3-1]: 3-1 ends before it begins",
        ),
        (
            "[{host: 'e[a-b]'}]",
            "nodes[0].host: [a-b]: expected numbers and ranges like [01-16] or [1-3,7]",
        ),
        ("[{host: 'e[1-2'}]", "nodes[0].host: 'e[1-2': unbalanced or nested brackets"),
        (
            "[{host: 'e[1-100000]'}]",
            "nodes[0].host: [1-100000]: more than 10000 hosts",
        ),
        (
            "[{id: 'n[1-2]', host: 'e[1-3]'}]",
            "nodes[0].id: 'n[1-2]' names 2 node(s) and host 'e[1-3]' 3; give as many ids as"
            " hosts, or leave id out (derived from each host)",
        ),
        (
            "[a.one.lan, a.two.lan]",
            "nodes[1].id: 'a' (derived from host a.two.lan) is used by nodes[0] (derived from"
            " host a.one.lan) too; give ids (nodes[].id)",
        ),
        (
            "[{host: 'e[1-2]'}, e2]",
            "nodes[1].id: 'e2' (derived from host e2) is used by nodes[0] (derived from host"
            " e2) too; give ids (nodes[].id)",
        ),
        ("['_x.lan']", "nodes[0].id: not given, and '_x' (from host '_x.lan') is no valid id"),
        ("['me@h1']", "nodes[0].host: 'me@h1' includes a user; set it as nodes[0].user"),
        ("'  # only a comment\n'", "nodes: expected a non-empty list of nodes"),
    ],
)
def test_bad_entries_are_named_in_one_line(
    home: Path, tmp_path: Path, nodes: str, message: str
) -> None:
    assert error_of(tmp_path, f"nodes: {nodes}\n").startswith(message)


SSH_CONFIG = """\
Host edge*
    User fromconfig
    Port 2200
Host bad
    Port many
"""


def test_the_ssh_config_fills_what_the_inventory_leaves_unset(home: Path, tmp_path: Path) -> None:
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    inv = load_text(
        tmp_path,
        "nodes:\n  - edge1\n  - {host: edge2, user: me, port: 22}\n  - other\n",
    )
    one, two, other = inv.nodes
    assert (one.user, one.port, one.workdir) == ("fromconfig", 2200, "/tmp/parbench-fromconfig")
    assert (two.user, two.port) == ("me", 22)
    assert (other.user, other.port) == (getpass.getuser(), 22)
    under_defaults = load_text(tmp_path, "defaults: {user: d, port: 23}\nnodes: [edge1]\n")
    assert (under_defaults.nodes[0].user, under_defaults.nodes[0].port) == ("d", 23)
    assert error_of(tmp_path, "nodes: [bad]\n").startswith(
        "nodes[0].port (Port of bad in the ssh config): expected an integer"
    )


def test_the_ssh_config_may_be_another_file_or_none(home: Path, tmp_path: Path) -> None:
    (tmp_path / "cfg").write_text(SSH_CONFIG)
    inv = load_text(tmp_path, "ssh: {config: cfg}\nnodes: [edge1]\n")
    assert inv.ssh.config == tmp_path / "cfg"
    assert inv.nodes[0].user == "fromconfig"
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    inv = load_text(tmp_path, "ssh: {config: null}\nnodes: [edge1]\n")
    assert (inv.ssh.config, inv.nodes[0].port) == (None, 22)
