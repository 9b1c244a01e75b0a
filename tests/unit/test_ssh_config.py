"""How parbench connects, whatever ~/.ssh/config says: agent forwarding off and only the
inventory's key, unless the inventory says otherwise (ssh.forward_agent,
ssh.ssh_config_keys); for what the inventory leaves unset (User, Port, HostName,
ProxyJump, IdentityFile), what the ssh config says."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric import Config

from parbench.controller.nodes import remote
from parbench.controller.run.inventory import Inventory, load

SSH_CONFIG = """\
Host *
    ForwardAgent yes
    IdentityFile ~/.ssh/id_from_config
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose ~/.ssh/config forwards the agent and names a key, read the way the
    controller reads the user's (this machine's /etc/ssh/ssh_config left out)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    monkeypatch.setenv("HOME", str(home))
    config = Config(
        overrides=remote._CONFIG._overrides,  # noqa: SLF001 - the controller's own settings
        system_ssh_path=str(tmp_path / "no-system-ssh-config"),
    )
    assert config.base_ssh_config.lookup("h0")["forwardagent"] == "yes"
    monkeypatch.setattr(remote, "_CONFIG", config)
    return home


def _inventory(folder: Path, ssh: str = "") -> Inventory:
    (folder / "inv.yaml").write_text(
        f"{ssh}nodes:\n  - {{id: a, host: h0, key: ka}}\n  - {{id: b, host: h1}}\n"
    )
    return load(folder / "inv.yaml")


def test_ssh_config_neither_forwards_the_agent_nor_adds_keys_to_the_inventorys(
    home: Path, tmp_path: Path
) -> None:
    inventory = _inventory(tmp_path)
    with_key = remote.connect(inventory, inventory.node("a"))
    assert with_key.forward_agent is False
    assert with_key.connect_kwargs["key_filename"] == [str(tmp_path / "ka")]
    assert with_key.connect_kwargs["look_for_keys"] is False
    assert with_key.connect_kwargs["allow_agent"] is False
    without = remote.connect(inventory, inventory.node("b"))  # no key: the ssh config's
    assert without.forward_agent is False
    assert without.connect_kwargs == {"key_filename": [str(home / ".ssh" / "id_from_config")]}


def test_the_inventory_may_ask_for_both(home: Path, tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, "ssh: {forward_agent: true, ssh_config_keys: true}\n")
    assert (inventory.ssh.forward_agent, inventory.ssh.ssh_config_keys) == (True, True)
    conn = remote.connect(inventory, inventory.node("a"))
    assert conn.forward_agent is True
    assert conn.connect_kwargs["key_filename"] == [
        str(tmp_path / "ka"),
        str(home / ".ssh" / "id_from_config"),
    ]
    assert remote.connect(inventory, inventory.node("b")).connect_kwargs["key_filename"] == [
        str(home / ".ssh" / "id_from_config")
    ]


def test_forwarding_the_agent_is_off_even_when_fabric_is_told_so(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = remote._CONFIG.clone()  # noqa: SLF001
    config.forward_agent = True  # e.g. ~/.fabric.yaml
    config.connect_kwargs = {"key_filename": ["/elsewhere/key"]}
    monkeypatch.setattr(remote, "_CONFIG", config)
    inventory = _inventory(tmp_path)
    conn = remote.connect(inventory, inventory.node("a"))
    assert conn.forward_agent is False
    assert conn.connect_kwargs["key_filename"] == [str(tmp_path / "ka")]


@pytest.mark.parametrize("key", ["forward_agent", "ssh_config_keys"])
def test_the_settings_are_true_or_false(tmp_path: Path, key: str) -> None:
    from parbench.controller.run.inventory import InventoryError

    with pytest.raises(InventoryError, match=f"ssh.{key}: expected true or false, got 'yes'"):
        _inventory(tmp_path, f"ssh: {{{key}: 'yes'}}\n")
    assert getattr(_inventory(tmp_path).ssh, key) is False


def test_a_refused_login_points_at_the_opt_in(tmp_path: Path) -> None:
    import paramiko

    refused = paramiko.AuthenticationException("no key accepted")
    cause = remote.explain(refused, _inventory(tmp_path))
    assert cause.endswith(
        "check nodes[].user and nodes[].key (~/.ssh/config's keys: ssh.ssh_config_keys)"
    )
    opted = _inventory(tmp_path, "ssh: {ssh_config_keys: true}\n")
    assert remote.explain(refused, opted).endswith("nodes[].key")


JUMPING = """\
Host edge*
    HostName %h.example.com
    User fromconfig
    Port 2200
    ProxyJump jumper@bastion:2022
    ForwardAgent yes
Host bastion
    IdentityFile ~/.ssh/id_bastion
"""


def test_the_ssh_config_counts_for_what_the_inventory_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolved, not connected: User, Port, HostName, ProxyJump and IdentityFile from the
    inventory's ssh config; the jump host's key checked as the nodes' are; no agent."""
    import paramiko

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cfg").write_text(JUMPING)
    (tmp_path / "inv.yaml").write_text(
        "ssh: {config: cfg}\nnodes: [edge1, {host: edge2, user: me}]\n"
    )
    inventory = load(tmp_path / "inv.yaml")
    conn = remote.connect(inventory, inventory.node("edge1"))
    assert (conn.host, conn.user, conn.port) == ("edge1.example.com", "fromconfig", 2200)
    assert conn.forward_agent is False
    hop = conn.gateway
    assert (hop.host, hop.user, hop.port) == ("bastion", "jumper", 2022)
    assert hop.forward_agent is False
    assert hop.connect_kwargs == {"key_filename": [str(tmp_path / ".ssh" / "id_bastion")]}
    assert isinstance(hop.client._policy, paramiko.RejectPolicy)  # noqa: SLF001
    assert remote.connect(inventory, inventory.node("edge2")).user == "me"
