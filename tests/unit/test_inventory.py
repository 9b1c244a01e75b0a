from __future__ import annotations

import getpass
from pathlib import Path

import pytest
import yaml

from parbench.controller.run.checks import (
    MAX_CHUNK_SIZE,
    MAX_CLIENTS,
    MAX_START_DELAY,
    MAX_TIMEOUT,
)
from parbench.controller.run.inventory import (
    NODE_ID,
    Inventory,
    InventoryError,
    Node,
    Proxy,
    load,
)
from parbench.worker import layout

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
    assert (s.start_delay, s.ready_timeout) == (None, 120.0)  # auto
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
        ("8KB", 8000),
        ("8kB", 8000),
        ("4k", 4096),
        ("4M", 4 * 1024**2),
    ],
)
def test_chunk_size(inv_path: Path, value: object, expected: int) -> None:
    inv = load_text(inv_path, f"defaults: {{chunk_size: {value!r}}}\n" + MINIMAL)
    assert inv.settings.chunk_size == expected


@pytest.mark.parametrize(
    "value", ["1024", "'4KB'", "'1TiB'", "'1025MiB'", "1073741825", "'lots'", "true", "[1]"]
)
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
            "defaults.clinets: unknown key; did you mean clients?",
        ),
        (
            "defaults: {zzz: 3}\n" + _nodes(OK0),
            "defaults.zzz: unknown key (known: clients, backend, dst, local_dst, data, proxy,"
            " posix_root, s3_endpoint, s3_addressing, s3_region, s3_profile, s3_access_key,"
            " write_type, read_type, chunk_size, on_existing, start_delay,"
            " ready_timeout,"
            " connect_timeout, phase_timeout, python, latency, series_interval, iterations, warmup,"
            " until_stable, stable_window, max_iterations, duration, meta_files, meta_size,"
            " max_start_skew,"
            " min_phase_seconds, short_phase_seconds, fanout, request_timeout, port, user, key,"
            " workdir, alluxio_home)",
        ),
        (
            _nodes("{id: n0, hots: h0}"),
            "nodes[0].hots: unknown key; did you mean host?",
        ),
        (
            _nodes("{id: n0, host: h0, usr: me}"),
            "nodes[0].usr: unknown key; did you mean user?",
        ),
        (
            _nodes("{id: n0, host: h0, zzz: 1}"),
            "nodes[0].zzz: unknown key (known: id, host, port, user, key, workdir, python,"
            " clients, proxy, alluxio_home, posix_root)",
        ),
        (
            "ssh: {strict: false}\n" + _nodes(OK0),
            "ssh.strict: unknown key (known: known_hosts, strict_host_keys, forward_agent,"
            " ssh_config_keys, config)",
        ),
        (
            "node:\n  - {id: n0, host: h}\n",
            "node: unknown key; did you mean nodes?",
        ),
        ("defaults: {}\n", "nodes: missing; expected a non-empty list of nodes"),
        ("nodes: []\n", "nodes: expected a non-empty list of nodes, got a list"),
        ("nodes: {id: n0}\n", "nodes: expected a non-empty list of nodes, got a mapping"),
        ("", "the inventory is empty; expected a mapping with a 'nodes' list"),
        ("- a\n", "expected a mapping, got a list"),
        (_nodes("5"), "nodes[0]: expected a mapping, got 5"),
        (_nodes("{id: n0}"), "nodes[0].host: missing; every node needs a host"),
        (
            _nodes("{id: n/0, host: h}"),
            f"nodes[0].id: expected a string matching {NODE_ID.pattern}, got 'n/0'",
        ),
        (
            _nodes("{id: n0, host: h, port: 0}"),
            "nodes[0].port: expected an integer between 1 and 65535, got 0",
        ),
        (_nodes("{id: n0, host: h, port: '22'}"), "nodes[0].port: expected an integer, got '22'"),
        (
            _nodes("{id: n0, host: h, clients: 0}"),
            f"nodes[0].clients: expected an integer between 1 and {MAX_CLIENTS}, got 0",
        ),
        (
            "defaults: {clients: true}\n" + _nodes(OK0),
            "defaults.clients: expected an integer, got true",
        ),
        (
            "defaults: {backend: hdfs}\n" + _nodes(OK0),
            "defaults.backend: expected one of alluxio, posix, s3, native, got 'hdfs'",
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
            "defaults: {series_interval: 0.05}\n" + _nodes(OK0),
            "defaults.series_interval: expected 0 (no series) or a duration between"
            " 0.1 and 3600 s, got 0.05",
        ),
        (
            "defaults: {until_stable: 5}\n" + _nodes(OK0),
            "defaults.until_stable: expected null or a coefficient of variation between 0 and 1"
            " (0.05 is 5 %), got 5",
        ),
        (
            "defaults: {until_stable: 0.05, stable_window: 4, max_iterations: 3}\n" + _nodes(OK0),
            "defaults: stable_window: expected 2..max_iterations (3), got 4",
        ),
        (
            "defaults: {iterations: 0}\n" + _nodes(OK0),
            "defaults.iterations: expected an integer between 1 and 1000, got 0",
        ),
        (
            "defaults: {data: 0}\n" + _nodes(OK0),
            "defaults.data: expected a size between 1 and 68719476736 bytes (1B and 64GiB), got 0",
        ),
        (
            "defaults: {latency: 'no'}\n" + _nodes(OK0),
            "defaults.latency: expected true or false, got 'no'",
        ),
        (
            "defaults: {start_delay: 0}\n" + _nodes(OK0),
            "defaults.start_delay: expected auto or a duration between 0.01 and 3600 s"
            " (like 90, 1m30s, 2h),"
            " got 0",
        ),
        (
            "defaults: {start_delay: soon}\n" + _nodes(OK0),
            "defaults.start_delay: expected auto or a duration between 0.01 and 3600 s"
            " (like 90, 1m30s, 2h),"
            " got 'soon'",
        ),
        (
            "defaults: {phase_timeout: 30 minutes}\n" + _nodes(OK0),
            "defaults.phase_timeout: expected a duration between 1 and 604800 s (like 90, 1m30s,"
            " 2h), got '30 minutes'",
        ),
        (
            "defaults: {connect_timeout: 0.5}\n" + _nodes(OK0),
            "defaults.connect_timeout: expected a duration between 1 and 604800 s"
            " (like 90, 1m30s, 2h), got 0.5",
        ),
        (
            "defaults: {phase_timeout: .inf}\n" + _nodes(OK0),
            "defaults.phase_timeout: expected a duration between 1 and 604800 s"
            " (like 90, 1m30s, 2h), got inf",
        ),
        (
            "defaults: {ready_timeout: .nan}\n" + _nodes(OK0),
            "defaults.ready_timeout: expected a duration between 1 and 604800 s"
            " (like 90, 1m30s, 2h), got nan",
        ),
        (
            "defaults: {proxy: {host: p, port: 0}}\n" + _nodes(OK0),
            "defaults.proxy.port: expected an integer between 1 and 65535, got 0",
        ),
        (
            _nodes("{id: n0, host: h, proxy: {hots: p}}"),
            "nodes[0].proxy.hots: unknown key; did you mean host?",
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


# --- numbers: no traceback for huge values, upper limits --------------------------------

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f"defaults: {{phase_timeout: {HUGE}}}\n" + MINIMAL, "defaults.phase_timeout"),
        (f"defaults: {{start_delay: {HUGE}}}\n" + MINIMAL, "defaults.start_delay"),
        (f"defaults: {{ready_timeout: -{HUGE}}}\n" + MINIMAL, "defaults.ready_timeout"),
        (f"defaults: {{connect_timeout: {HUGE}.5}}\n" + MINIMAL, "defaults.connect_timeout"),
        (f"defaults: {{chunk_size: {HUGE}}}\n" + MINIMAL, "defaults.chunk_size"),
        (f"defaults: {{chunk_size: '{HUGE}'}}\n" + MINIMAL, "defaults.chunk_size"),
        (f"defaults: {{chunk_size: '{HUGE}.5 MiB'}}\n" + MINIMAL, "defaults.chunk_size"),
        (f"defaults: {{clients: {HUGE}}}\n" + MINIMAL, "defaults.clients"),
        (_nodes(f"{{id: n0, host: h, port: {HUGE}}}"), "nodes[0].port"),
        (_nodes(f"{{id: n0, host: h, clients: {HUGE}}}"), "nodes[0].clients"),
    ],
)
def test_a_400_digit_number_is_refused_naming_the_key(inv_path: Path, text: str, key: str) -> None:
    message = error_of(inv_path, text)
    assert message.startswith(f"{key}: expected "), message
    assert "\n" not in message and len(message) < 200  # the number shown cut short


@pytest.mark.parametrize("value", ["1" * 5000, "2024-13-45"])
def test_a_value_yaml_cannot_read_is_an_error(inv_path: Path, value: str) -> None:
    message = error_of(inv_path, f"defaults: {{phase_timeout: {value}}}\n" + MINIMAL)
    assert message.startswith("line 1, column 27: invalid YAML: cannot read this value: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"defaults: {{clients: {MAX_CLIENTS + 1}}}\n" + MINIMAL,
            f"defaults.clients: expected an integer between 1 and 1024, got {MAX_CLIENTS + 1}",
        ),
        (
            _nodes(f"{{id: n0, host: h, clients: {MAX_CLIENTS + 1}}}"),
            f"nodes[0].clients: expected an integer between 1 and 1024, got {MAX_CLIENTS + 1}",
        ),
        (
            "defaults: {chunk_size: 2GiB}\n" + MINIMAL,
            "defaults.chunk_size: expected a size between 4096 and 1073741824 bytes"
            " (4KiB and 1GiB), got '2GiB'",
        ),
        (
            "defaults: {start_delay: 3601}\n" + MINIMAL,
            "defaults.start_delay: expected auto or a duration between 0.01 and 3600 s"
            " (like 90, 1m30s, 2h),"
            " got 3601",
        ),
        (
            "defaults: {ready_timeout: 604801}\n" + MINIMAL,
            "defaults.ready_timeout: expected a duration between 1 and 604800 s"
            " (like 90, 1m30s, 2h), got 604801",
        ),
        (
            "defaults: {connect_timeout: 604800.5}\n" + MINIMAL,
            "defaults.connect_timeout: expected a duration between 1 and 604800 s"
            " (like 90, 1m30s, 2h),"
            " got 604800.5",
        ),
    ],
)
def test_upper_limits(inv_path: Path, text: str, message: str) -> None:
    assert error_of(inv_path, text) == message


def test_upper_limits_themselves_are_allowed(inv_path: Path) -> None:
    inv = load_text(
        inv_path,
        f"defaults: {{clients: {MAX_CLIENTS}, chunk_size: 1GiB, start_delay: {MAX_START_DELAY},"
        f" ready_timeout: {int(MAX_TIMEOUT)}, connect_timeout: {MAX_TIMEOUT},"
        f" phase_timeout: {MAX_TIMEOUT}}}\n" + MINIMAL,
    )
    s = inv.settings
    assert (s.clients, s.chunk_size, s.start_delay) == (MAX_CLIENTS, MAX_CHUNK_SIZE, 3600.0)
    assert s.ready_timeout == s.connect_timeout == s.phase_timeout == 7 * 24 * 3600.0


# --- YAML merge keys ---------------------------------------------------------------------


def test_merge_keys_repeat_settings_and_explicit_keys_override(inv_path: Path) -> None:
    inv = load_text(
        inv_path,
        """
defaults:
  proxy: &proxy {host: p0, port: 40000}
nodes:
  - &edge {id: e1, host: h1, user: bench, port: 2222, workdir: /w}
  - {<<: *edge, id: e2, host: h2}
  - {id: e3, <<: *edge, host: h3, port: 22}
  - <<: [{user: first, clients: 3}, *edge]
    id: e4
    host: h4
    proxy: {<<: *proxy, port: 40001}
""",
    )
    assert [(n.id, n.host, n.port, n.user, n.workdir) for n in inv.nodes] == [
        ("e1", "h1", 2222, "bench", "/w"),
        ("e2", "h2", 2222, "bench", "/w"),
        ("e3", "h3", 22, "bench", "/w"),
        ("e4", "h4", 2222, "first", "/w"),  # the first mapping of a merge list wins
    ]
    assert inv.nodes[3].clients == 3
    assert inv.nodes[3].proxy == Proxy("p0", 40001)
    assert inv.raw["nodes"][1] == {
        "id": "e2",
        "host": "h2",
        "user": "bench",
        "port": 2222,
        "workdir": "/w",
    }


def test_a_merge_source_merged_before_its_own_turn(inv_path: Path) -> None:
    """PyYAML flattens &p (merged keys + its own) when n1 merges it, before it builds &p
    itself: its own override must not then look like a duplicate."""
    inv = load_text(
        inv_path,
        _nodes(
            "{id: n0, host: h0, proxy: &p {port: 2, <<: {host: p1, port: 3}}}", "{<<: *p, id: n1}"
        ),
    )
    assert inv.nodes[0].proxy == Proxy("p1", 2)
    assert (inv.nodes[1].host, inv.nodes[1].port) == ("p1", 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nodes:\n  - &a {id: n0, host: h0}\n  - {<<: *a, host: x, host: y}\n",
            "line 3, column 23: invalid YAML: duplicate key 'host' (first on line 3)",
        ),
        (
            "nodes:\n  - &a {id: n0, host: h0}\n  - {<<: *a, <<: *a, id: n1}\n",
            "line 3, column 14: invalid YAML: duplicate key '<<' (first on line 3)",
        ),
        (
            "nodes:\n  - &a {id: n0, host: h0, id: n9}\n  - {<<: *a, id: n1}\n",
            "line 2, column 27: invalid YAML: duplicate key 'id' (first on line 2)",
        ),
        (
            "nodes:\n  - {<<: 5, id: n1}\n",
            "line 2, column 10: invalid YAML: expected a mapping or list of mappings for"
            " merging, but found scalar",
        ),
    ],
)
def test_duplicates_next_to_merges_are_still_errors(
    inv_path: Path, text: str, message: str
) -> None:
    assert error_of(inv_path, text) == message


# --- hosts, users, ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "bench@10.0.0.1",
            "nodes[0].host: 'bench@10.0.0.1' includes a user; set it as nodes[0].user",
        ),
        ("h:2222", "nodes[0].host: 'h:2222' includes a port; set it as nodes[0].port"),
        ("'[::1]'", "nodes[0].host: '[::1]' includes a port; set it as nodes[0].port"),
        ("'::1:22:'", "nodes[0].host: '::1:22:' includes a port; set it as nodes[0].port"),
    ],
)
def test_host_with_user_or_port_is_refused(inv_path: Path, host: str, message: str) -> None:
    assert error_of(inv_path, _nodes(f"{{id: n0, host: {host}}}")) == message


def test_bare_ipv6_host_is_accepted(inv_path: Path) -> None:
    inv = load_text(inv_path, _nodes("{id: n0, host: '::1'}", "{id: n1, host: 'fe80::2'}"))
    assert [n.host for n in inv.nodes] == ["::1", "fe80::2"]


def test_unknown_local_user_asks_for_nodes_user(
    inv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_name() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")

    monkeypatch.setattr(getpass, "getuser", no_name)
    message = error_of(inv_path, _nodes("{id: n0, host: h, user: u}", "{id: n1, host: h}"))
    assert message.startswith("nodes[1].user: not set, and the controller's own user name is")
    assert message.endswith("; set nodes[1].user")
    inv = load_text(inv_path, _nodes("{id: n0, host: h, user: u}"))  # set: no need to ask
    assert inv.nodes[0].user == "u"


def test_ids_differing_only_in_case_are_refused(inv_path: Path) -> None:
    message = error_of(
        inv_path, _nodes("{id: n0, host: h0}", "{id: x, host: h}", "{id: N0, host: h1}")
    )
    assert message == (
        "nodes[2].id: 'N0' differs from nodes[0].id 'n0' only in case; ids name folders,"
        " and some file systems ignore case"
    )


# --- where read copies and the run's files go --------------------------------------------


@pytest.mark.parametrize(
    "local_dst",
    [*layout.FOLDERS, layout.VENV, "runs/x", ".parbench-workdir", ".parbench", "venv/../venv/read"],
)
def test_relative_local_dst_in_the_workdirs_own_entries_is_refused(
    inv_path: Path, local_dst: str
) -> None:
    text = f"defaults: {{local_dst: '{local_dst}'}}\n" + _nodes("{id: n0, host: h, workdir: /w}")
    message = error_of(inv_path, text)
    if ".." in local_dst:
        assert message == f"defaults.local_dst: expected a path without '..', got '{local_dst}'"
        return
    entry = local_dst.split("/")[0]
    assert message == (
        f"defaults.local_dst: '{local_dst}' is inside /w/{entry}, which nodes[0].workdir keeps"
        " for parbench (worker, data, wheels, runs, venv, .parbench*); choose another folder"
    )


def test_a_folder_added_to_the_layout_is_kept_from_read_copies(
    inv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the workdir keeps for parbench comes from worker/layout.py, the one place the
    layout is written: a folder added there is refused as a local_dst at once."""
    monkeypatch.setattr(layout, "FOLDERS", (*layout.FOLDERS, "cache"))
    text = "defaults: {local_dst: cache/read}\n" + _nodes("{id: n0, host: h, workdir: /w}")
    assert error_of(inv_path, text) == (
        "defaults.local_dst: 'cache/read' is inside /w/cache, which nodes[0].workdir keeps for"
        " parbench (worker, data, wheels, runs, cache, venv, .parbench*); choose another folder"
    )


@pytest.mark.parametrize(
    "name", [n for n, v in vars(layout).items() if n.isupper() and isinstance(v, str)]
)
def test_every_name_of_the_layout_is_kept_from_read_copies(inv_path: Path, name: str) -> None:
    """Each entry worker/layout.py names (a folder, the runtime, a marker file...) is one
    no read copy goes into."""
    entry = getattr(layout, name)
    text = f"defaults: {{local_dst: '{entry}/read'}}\n" + _nodes("{id: n0, host: h, workdir: /w}")
    assert f"is inside /w/{entry}, which nodes[0].workdir keeps" in error_of(inv_path, text)


@pytest.mark.parametrize(
    ("local_dst", "message"),
    [
        ("/w/n1", "'/w/n1' is or contains nodes[1].workdir (/w/n1); read copies go elsewhere"),
        ("/w", "'/w' is or contains nodes[0].workdir (/w/n0); read copies go elsewhere"),
        (
            "/w/n1/data/x",
            "'/w/n1/data/x' is inside /w/n1/data, which nodes[1].workdir keeps for parbench"
            " (worker, data, wheels, runs, venv, .parbench*); choose another folder",
        ),
        (
            "/w/n0/.parbench-x",
            "'/w/n0/.parbench-x' is inside /w/n0/.parbench-x, which nodes[0].workdir keeps for"
            " parbench (worker, data, wheels, runs, venv, .parbench*); choose another folder",
        ),
    ],
)
def test_absolute_local_dst_clashing_with_a_workdir_is_refused(
    inv_path: Path, local_dst: str, message: str
) -> None:
    nodes = _nodes("{id: n0, host: h, workdir: /w/n0}", "{id: n1, host: h, workdir: /w/n1}")
    text = f"defaults: {{local_dst: '{local_dst}'}}\n" + nodes
    assert error_of(inv_path, text) == f"defaults.local_dst: {message}"


@pytest.mark.parametrize("local_dst", ["reads", "my/runs", "/w/n0/read", "/w/n0x", "/scratch"])
def test_local_dst_beside_the_workdirs_own_entries_is_fine(inv_path: Path, local_dst: str) -> None:
    nodes = _nodes("{id: n0, host: h, workdir: /w/n0}")
    inv = load_text(inv_path, f"defaults: {{local_dst: '{local_dst}'}}\n" + nodes)
    assert inv.settings.local_dst == local_dst


@pytest.mark.parametrize("dst", ["/bench/{cid}", "/bench/{node}/x", "/a}b", "/a{"])
def test_dst_with_braces_is_refused(inv_path: Path, dst: str) -> None:
    message = error_of(inv_path, f"defaults: {{dst: '{dst}'}}\n" + MINIMAL)
    assert message == (
        "defaults.dst: expected a path without '{' or '}' (dst is one root for the whole run;"
        f" templates are not expanded there), got '{dst}'"
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [("1GiB", 1024**3), ("64 MiB", 64 * 1024**2), (1000, 1000), ("3KB", 3000)],
)
def test_data_given_as_a_size_is_generated(tmp_path: Path, written: object, expected: int) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        yaml.safe_dump({"defaults": {"data": written}, "nodes": [{"id": "n0", "host": "h"}]})
    )
    assert load(path).settings.data == expected


def test_data_given_as_a_name_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("defaults: {data: 5mb.txt}\nnodes: [{id: n0, host: h}]\n")
    assert load(path).settings.data == tmp_path / "5mb.txt"


# --- read copies of two nodes on one machine ---------------------------------------------


@pytest.mark.parametrize(
    "hosts",
    [
        ("{host: 127.0.0.1, port: 2201}", "{host: 127.0.0.1, port: 2202}"),  # the testbed
        ("{host: h}", "{host: h}"),  # a real host listed twice
        ("{host: H.example}", "{host: h.example.}"),
        ("{host: localhost, port: 2201}", "{host: 127.0.0.1, port: 2202}"),
        ("{host: '::1'}", "{host: '0:0:0:0:0:0:0:1', port: 2}"),
    ],
)
def test_an_absolute_local_dst_on_one_machine_twice_is_refused(inv_path: Path, hosts) -> None:
    first, second = (h.replace("{", f"{{id: n{i}, workdir: /w{i}, ") for i, h in enumerate(hosts))
    message = error_of(inv_path, "defaults: {local_dst: /scratch/read}\n" + _nodes(first, second))
    assert message.startswith("defaults.local_dst: '/scratch/read' is one folder for nodes[0] (n0")
    assert "nodes[1] (n1" in message and "use a relative local_dst" in message
    assert "\n" not in message


def test_copies_of_two_nodes_on_one_machine_never_collide(inv_path: Path) -> None:
    two = _nodes(
        "{id: n0, host: 127.0.0.1, port: 2201, workdir: /w0}",
        "{id: n1, host: 127.0.0.1, port: 2202, workdir: /w1}",
    )
    inv = load_text(inv_path, two)  # relative: under each workdir
    assert [inv.local_dst(n) for n in inv.nodes] == ["/w0/read", "/w1/read"]
    inv = load_text(inv_path, "defaults: {local_dst: /scratch/read}\n" + MINIMAL)
    assert {inv.local_dst(n) for n in inv.nodes} == {"/scratch/read"}  # one node a machine


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "defaults: {chunk_size: '4096.9'}\n" + _nodes(OK0),
            "defaults.chunk_size: expected a whole number of bytes, got '4096.9'",
        ),
        (
            "defaults: {chunk_size: 0.1MiB}\n" + _nodes(OK0),
            "defaults.chunk_size: expected a whole number of bytes, got '0.1MiB'",
        ),
        (
            "defaults: {data: 10.5B}\n" + _nodes(OK0),
            "defaults.data: expected a whole number of bytes, got '10.5B'",
        ),
        (
            "defaults: {proxy: {host: -x}}\n" + _nodes(OK0),
            "defaults.proxy.host: '-x' begins with '-' (it would be read as an option);"
            " expected a host name or address",
        ),
        (
            _nodes("{id: n0, host: h, proxy: {host: 'a:b'}}"),
            "nodes[0].proxy.host: 'a:b' includes a port; set it as nodes[0].proxy.port",
        ),
        (
            _nodes("{id: n0, host: h, proxy: {host: '::1'}}"),
            "nodes[0].proxy.host: '::1' includes a port; set it as nodes[0].proxy.port"
            " (an IPv6 address is not supported for the proxy: use a host name)",
        ),
        (
            _nodes("{id: n0, host: -oProxyCommand=x}"),
            "nodes[0].host: '-oProxyCommand=x' begins with '-' (it would be read as an option);"
            " expected a host name or address",
        ),
        (
            _nodes("{id: n0, host: h, user: -l}"),
            "nodes[0].user: '-l' begins with '-' (it would be read as an option);"
            " expected a user name",
        ),
    ],
)
def test_truncated_sizes_and_option_like_hosts_are_refused(
    inv_path: Path, text: str, message: str
) -> None:
    assert error_of(inv_path, text) == message


def test_a_fraction_of_a_unit_that_is_whole_bytes_is_fine(inv_path: Path) -> None:
    inv = load_text(inv_path, "defaults: {chunk_size: 1.5MiB, data: 0.5KiB}\n" + MINIMAL)
    assert (inv.settings.chunk_size, inv.settings.data) == (1536 * 1024, 512)


@pytest.mark.parametrize("name", ["phase", "run_id", "config_hash", "__name__", "__x"])
def test_reserved_label_names_are_refused(inv_path: Path, name: str) -> None:
    message = error_of(inv_path, f"labels: {{{name}: x}}\n" + MINIMAL)
    assert message.startswith(f"labels.{name}: ") and "reserved" in message, message
    assert "\n" not in message


def test_no_home_and_no_passwd_entry_is_a_one_line_error(
    inv_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~`` cannot be expanded (``env -u HOME`` under a uid with no passwd entry)."""
    import pwd

    def no_entry(uid: int) -> object:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    message = error_of(inv_path, "nodes:\n  - {id: n0, host: h0, user: u}\n")
    assert message.startswith("ssh.known_hosts: cannot expand '~' in '~/.ssh/known_hosts'")
    assert "set HOME" in message
