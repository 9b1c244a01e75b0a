"""The s3 backend's settings: endpoint, bucket, the request a node gets, where the lock is."""

from __future__ import annotations

from pathlib import Path

import pytest

from parbench.controller.nodes.locks import _locking
from parbench.controller.run.inventory import InventoryError, load
from parbench.controller.run.plan import storage_config

NODES = "nodes:\n  - {id: n0, host: h0, proxy: {host: p0, port: 40000}}\n"


def _load(tmp_path: Path, defaults: str):
    path = tmp_path / "inventory.yaml"
    path.write_text(f"defaults: {{{defaults}}}\n{NODES}")
    return load(path)


def test_the_endpoint_defaults_to_the_node_s_proxy_and_parts_to_the_chunk(tmp_path) -> None:
    inv = _load(tmp_path, "backend: s3, dst: /bench/x, chunk_size: 8MiB")
    config = storage_config(inv.settings, inv.nodes[0], 60)
    assert (config.backend, config.endpoint) == ("s3", "http://p0:40000/api/v1/s3")
    assert (config.part_size, config.addressing, config.region) == (
        8 * 1024**2,
        "path",
        "us-east-1",
    )
    given = _load(tmp_path, "backend: s3, s3_endpoint: 'https://s3.example.com/', s3_profile: b")
    config = storage_config(given.settings, given.nodes[0], 60)
    assert (config.endpoint, config.profile) == ("https://s3.example.com", "b")


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("backend: s3, dst: /Bench", "'/Bench': with backend s3 the first segment is the bucket"),
        ("backend: s3, dst: /ab", "'ab' is not a bucket name"),
        ("s3_endpoint: s3.example.com", "defaults.s3_endpoint: expected null or an http://"),
        ("s3_endpoint: 'http://key:secret@h/'", "without user, query or fragment"),
        ("s3_addressing: dns", "defaults.s3_addressing: expected one of path, virtual, auto"),
    ],
)
def test_bad_s3_settings_are_refused_naming_the_key(tmp_path, defaults, message) -> None:
    with pytest.raises(InventoryError, match=message.replace("(", r"\(")):
        _load(tmp_path, defaults)


def test_the_lock_of_an_s3_run_on_alluxio_is_taken_through_its_rest_proxy(tmp_path) -> None:
    """Alluxio 2.9's S3 API ignores If-None-Match, so no create-if-absent there: the run's
    lock goes through the REST proxy of the same namespace; any other endpoint is asked
    with a conditional put."""
    on_alluxio = _load(tmp_path, "backend: s3").settings
    assert _locking(on_alluxio).backend == "alluxio"
    elsewhere = _load(tmp_path, "backend: s3, s3_endpoint: 'https://s3.example.com'").settings
    assert _locking(elsewhere).backend == "s3"
