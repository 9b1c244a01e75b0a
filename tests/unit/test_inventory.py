from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from controller.inventory import (
    Inventory,
    InventoryError,
    Node,
    Proxy,
    load,
)

REPO = Path(__file__).resolve().parents[2]
MINIMAL = "nodes:\n  - {id: n0, host: h0}\n  - {id: n1, host: h1}\n"


@pytest.fixture
def inv_path(tmp_path: Path) -> Path:
    return tmp_path / "inventory.yaml"


def load_text(path: Path, text: str) -> Inventory:
    path.write_text(text)
    return load(path)


def error_of(path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as info:
        load_text(path, text)
    message = str(info.value)
    prefix = f"{path}: "
    assert message.startswith(prefix), message
    return message[len(prefix) :]


def test_defaults(inv_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/me")
    inv = load_text(inv_path, MINIMAL)
    s = inv.settings
    assert (s.clients, s.backend, s.dst, s.local_dst) == (2, "alluxio", "/parbench", "read")
    assert s.data == inv_path.parent / "data" / "5mb.txt"
    assert s.proxy == Proxy("127.0.0.1", 39999)
    assert (s.posix_root, s.write_type, s.read_type) == (None, "CACHE_THROUGH", "CACHE")
    assert (s.chunk_size, s.on_existing) == (1024 * 1024, "replace")
    assert (s.start_delay, s.ready_timeout) == (0.5, 120.0)
    assert (s.connect_timeout, s.phase_timeout) == (15.0, 1800.0)
    assert s.python == "python3"
    assert inv.ssh.known_hosts == Path("/home/me/.ssh/known_hosts")
    assert inv.ssh.strict_host_keys is True
    user = getpass.getuser()
    assert inv.nodes[0] == Node(
        id="n0",
        host="h0",
        port=22,
        user=user,
        key=None,
        workdir=f"/tmp/parbench-{user}",
        python="python3",
        clients=2,
        proxy=Proxy("127.0.0.1", 39999),
        alluxio_home=None,
        posix_root=None,
    )
    assert inv.path == inv_path.resolve()
    assert inv.raw == {"nodes": [{"id": "n0", "host": "h0"}, {"id": "n1", "host": "h1"}]}


def test_node_overrides_and_helpers(inv_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/me")
    inv = load_text(
        inv_path,
        """
defaults:
  clients: 3
  python: python3.11
  proxy: {host: proxy.lan}
  local_dst: copies
  data: ../ref.bin
ssh: {known_hosts: keys/known_hosts, strict_host_keys: false}
nodes:
  - {id: b, host: hb, port: 2202, user: u, key: ~/.ssh/k, workdir: /w/b/, alluxio_home: /opt/a}
  - id: a
    host: ha
    clients: 5
    python: /usr/bin/python3
    proxy: {port: 40000}
""",
    )
    b, a = inv.nodes
    assert (b.port, b.user, b.key, b.workdir) == (2202, "u", Path("/home/me/.ssh/k"), "/w/b")
    assert (b.clients, b.python, b.proxy, b.alluxio_home) == (
        3,
        "python3.11",
        Proxy("proxy.lan", 39999),
        "/opt/a",
    )
    assert (a.clients, a.python, a.proxy) == (5, "/usr/bin/python3", Proxy("proxy.lan", 40000))
    assert a.workdir == f"/tmp/parbench-{a.user}"
    assert inv.settings.data == inv_path.parent.parent / "ref.bin"
    assert inv.ssh.known_hosts == inv_path.parent / "keys" / "known_hosts"
    assert inv.ssh.strict_host_keys is False
    assert inv.clients_by_node() == {"b": 3, "a": 5}
    assert list(inv.clients_by_node()) == ["b", "a"]
    assert inv.node_ids == ("b", "a")
    assert inv.total_clients == 8
    assert inv.node("a") is a
    assert inv.local_dst("b") == "/w/b/copies"
    assert inv.local_dst(a) == f"/tmp/parbench-{a.user}/copies"
    with pytest.raises(KeyError, match="no node 'c' \\(known: b, a\\)"):
        inv.node("c")


def test_absolute_local_dst_and_normalised_paths(inv_path: Path) -> None:
    inv = load_text(inv_path, "defaults: {local_dst: /scratch//read/, dst: //x/./y/}\n" + MINIMAL)
    assert inv.settings.dst == "/x/y"
    assert inv.local_dst("n0") == "/scratch/read"


def test_posix_backend(inv_path: Path) -> None:
    inv = load_text(inv_path, "defaults: {backend: posix, posix_root: /mnt/alluxio}\n" + MINIMAL)
    assert (inv.settings.backend, inv.settings.posix_root) == ("posix", "/mnt/alluxio")
    assert [n.posix_root for n in inv.nodes] == ["/mnt/alluxio", "/mnt/alluxio"]


def test_posix_root_per_node(inv_path: Path) -> None:
    """Each node may mount the shared storage somewhere else."""
    text = "defaults: {backend: posix}\n" + _nodes(
        "{id: n0, host: h0, posix_root: /mnt/a}", "{id: n1, host: h1, posix_root: /fuse//b/}"
    )
    inv = load_text(inv_path, text)
    assert [n.posix_root for n in inv.nodes] == ["/mnt/a", "/fuse/b"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("64KiB", 65536),
        ("1MiB", 1048576),
        ("1.5 MiB", 1572864),
        ("2MB", 2000000),
        ("1GiB", 1073741824),
        ("8kb", 8000),
    ],
)
def test_chunk_size(inv_path: Path, value: object, expected: int) -> None:
    inv = load_text(inv_path, f"defaults: {{chunk_size: {value!r}}}\n" + MINIMAL)
    assert inv.settings.chunk_size == expected


@pytest.mark.parametrize("value", ["1024", "'4KB'", "'1TiB'", "'lots'", "true", "[1]"])
def test_chunk_size_rejected(inv_path: Path, value: str) -> None:
    message = error_of(inv_path, f"defaults: {{chunk_size: {value}}}\n" + MINIMAL)
    assert message.startswith("defaults.chunk_size: expected ")


def _nodes(*entries: str) -> str:
    return "nodes:\n" + "".join(f"  - {e}\n" for e in entries)


OK0, OK1 = "{id: n0, host: h0}", "{id: n1, host: h1}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _nodes(OK0, OK1, "{id: n2, host: 5}"),
            "nodes[2].host: expected a non-empty string, got 5",
        ),
        (
            _nodes(OK0, "{id: n0, host: h1}"),
            "nodes[1].id: 'n0' is used by nodes[0] too",
        ),
        (
            "defaults: {clinets: 3}\n" + _nodes(OK0),
            "defaults.clinets: unknown key (known: clients, backend, dst, local_dst, data, proxy,"
            " posix_root, write_type, read_type, chunk_size, on_existing, start_delay,"
            " ready_timeout,"
            " connect_timeout, phase_timeout, python)",
        ),
        (
            _nodes("{id: n0, hots: h0}"),
            "nodes[0].hots: unknown key (known: id, host, port, user, key, workdir, python,"
            " clients, proxy, alluxio_home, posix_root)",
        ),
        (
            "ssh: {strict: false}\n" + _nodes(OK0),
            "ssh.strict: unknown key (known: known_hosts, strict_host_keys)",
        ),
        ("node:\n  - {id: n0, host: h}\n", "node: unknown key (known: defaults, ssh, nodes)"),
        ("defaults: {}\n", "nodes: missing; expected a non-empty list of nodes"),
        ("nodes: []\n", "nodes: expected a non-empty list of nodes, got a list"),
        ("nodes: {id: n0}\n", "nodes: expected a non-empty list of nodes, got a mapping"),
        ("", "the inventory is empty; expected a mapping with a 'nodes' list"),
        ("- a\n", "expected a mapping, got a list"),
        (_nodes("n0"), "nodes[0]: expected a mapping, got 'n0'"),
        (_nodes("{host: h0}"), "nodes[0].id: missing; every node needs an id and a host"),
        (_nodes("{id: n0}"), "nodes[0].host: missing; every node needs an id and a host"),
        (
            _nodes("{id: n/0, host: h}"),
            "nodes[0].id: expected a string matching ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, got 'n/0'",
        ),
        (
            _nodes("{id: n0, host: h, port: 0}"),
            "nodes[0].port: expected an integer between 1 and 65535, got 0",
        ),
        (_nodes("{id: n0, host: h, port: '22'}"), "nodes[0].port: expected an integer, got '22'"),
        (
            _nodes("{id: n0, host: h, clients: 0}"),
            "nodes[0].clients: expected an integer >= 1, got 0",
        ),
        (
            "defaults: {clients: true}\n" + _nodes(OK0),
            "defaults.clients: expected an integer, got true",
        ),
        (
            "defaults: {backend: hdfs}\n" + _nodes(OK0),
            "defaults.backend: expected one of alluxio, posix, got 'hdfs'",
        ),
        (
            "defaults: {write_type: cache_through}\n" + _nodes(OK0),
            "defaults.write_type: expected"
            " one of CACHE_THROUGH, MUST_CACHE, THROUGH, ASYNC_THROUGH, got 'cache_through'",
        ),
        (
            "defaults: {on_existing: keep}\n" + _nodes(OK0),
            "defaults.on_existing: expected one of replace, refuse, got 'keep'",
        ),
        (
            "defaults: {dst: parbench}\n" + _nodes(OK0),
            "defaults.dst: expected an absolute POSIX path, got 'parbench'",
        ),
        (
            "defaults: {dst: /}\n" + _nodes(OK0),
            "defaults.dst: expected a directory below the root, not the root itself, got '/'",
        ),
        (
            "defaults: {dst: /a/../b}\n" + _nodes(OK0),
            "defaults.dst: expected a path without '..', got '/a/../b'",
        ),
        (
            "defaults: {dst: ''}\n" + _nodes(OK0),
            "defaults.dst: expected a non-empty string, got ''",
        ),
        (
            "defaults: {local_dst: .}\n" + _nodes(OK0),
            "defaults.local_dst: expected a directory below the root, not the root itself, got '.'",
        ),
        (
            "defaults: {local_dst: ../up}\n" + _nodes(OK0),
            "defaults.local_dst: expected a path without '..', got '../up'",
        ),
        (
            _nodes("{id: n0, host: h, workdir: tmp/w}"),
            "nodes[0].workdir: expected an absolute POSIX path, got 'tmp/w'",
        ),
        (
            _nodes("{id: n0, host: h, workdir: //}"),
            "nodes[0].workdir: expected a directory below the root, not the root itself, got '//'",
        ),
        (
            _nodes("{id: n0, host: h, alluxio_home: opt}"),
            "nodes[0].alluxio_home: expected an absolute POSIX path, got 'opt'",
        ),
        (
            "defaults: {backend: posix}\n" + _nodes("{id: n0, host: h, posix_root: /m}", OK1),
            "nodes[1].posix_root: required when defaults.backend is posix and"
            " defaults.posix_root is not set",
        ),
        (
            "defaults: {start_delay: 0}\n" + _nodes(OK0),
            "defaults.start_delay: expected a finite number of seconds >= 0.1, got 0",
        ),
        (
            "defaults: {phase_timeout: '30'}\n" + _nodes(OK0),
            "defaults.phase_timeout: expected a finite number of seconds >= 1, got '30'",
        ),
        (
            "defaults: {connect_timeout: 0.5}\n" + _nodes(OK0),
            "defaults.connect_timeout: expected a finite number of seconds >= 1, got 0.5",
        ),
        (
            "defaults: {phase_timeout: .inf}\n" + _nodes(OK0),
            "defaults.phase_timeout: expected a finite number of seconds >= 1, got inf",
        ),
        (
            "defaults: {proxy: {host: p, port: 0}}\n" + _nodes(OK0),
            "defaults.proxy.port: expected an integer between 1 and 65535, got 0",
        ),
        (
            _nodes("{id: n0, host: h, proxy: {hots: p}}"),
            "nodes[0].proxy.hots: unknown key (known: host, port)",
        ),
        (
            "ssh: {known_hosts: null}\n" + _nodes(OK0),
            "ssh.known_hosts: required when ssh.strict_host_keys is true",
        ),
        (
            "ssh: {strict_host_keys: 'no'}\n" + _nodes(OK0),
            "ssh.strict_host_keys: expected true or false, got 'no'",
        ),
        (
            _nodes("{id: n0, host: h, workdir: /w}", "{id: n1, host: h, workdir: /w/}"),
            "nodes[1].workdir: '/w' on h:22 is used by nodes[0] too",
        ),
        (
            _nodes("{id: n0, host: h, user: a b}"),
            "nodes[0].user: expected a string matching [^\\s/]+, got 'a b'",
        ),
    ],
)
def test_errors_name_file_key_and_expectation(inv_path: Path, text: str, message: str) -> None:
    assert error_of(inv_path, text) == message


def test_known_hosts_may_be_null_without_strict_checking(inv_path: Path) -> None:
    inv = load_text(inv_path, "ssh: {known_hosts: null, strict_host_keys: false}\n" + MINIMAL)
    assert inv.ssh.known_hosts is None


def test_same_workdir_on_different_ports_is_fine(inv_path: Path) -> None:
    inv = load_text(
        inv_path, _nodes("{id: a, host: h, port: 1, workdir: /w}", "{id: b, host: h, workdir: /w}")
    )
    assert inv.node_ids == ("a", "b")


def test_yaml_syntax_error_names_line(inv_path: Path) -> None:
    message = error_of(inv_path, "nodes:\n  - id: n0\n    host: [h\n")
    assert message.startswith("line 4, column 1: invalid YAML: ")


def test_duplicate_yaml_key_is_an_error(inv_path: Path) -> None:
    message = error_of(inv_path, "nodes:\n  - id: n0\n    host: a\n    host: b\n")
    assert message == "line 4, column 5: invalid YAML: duplicate key 'host' (first on line 3)"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(InventoryError, match="nope.yaml: inventory file not found"):
        load(path)


def test_repo_inventory_targets_the_local_testbed() -> None:
    inv = load(REPO / "inventory.yaml")
    assert inv.clients_by_node() == {"n0": 2, "n1": 2}
    assert [(n.host, n.port, n.user) for n in inv.nodes] == [
        ("127.0.0.1", 2201, "root"),
        ("127.0.0.1", 2202, "root"),
    ]
    assert {n.key for n in inv.nodes} == {REPO / ".testbed/ssh/id_ed25519"}
    assert [n.workdir for n in inv.nodes] == ["/tmp/parbench/n0", "/tmp/parbench/n1"]
    assert inv.ssh == type(inv.ssh)(REPO / ".testbed/ssh/known_hosts", True)
    assert inv.settings.proxy == Proxy("127.0.0.1", 39999)


def test_example_inventory_loads() -> None:
    inv = load(REPO / "inventory.example.yaml")
    assert len(inv.nodes) >= 3
    assert inv.ssh.strict_host_keys is True
    assert any(n.alluxio_home for n in inv.nodes)
    assert len({n.clients for n in inv.nodes}) > 1
    assert len({(n.user, n.port) for n in inv.nodes}) > 1
