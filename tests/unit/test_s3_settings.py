"""The s3 backend's settings: endpoint, bucket, the request a node gets, where the lock is."""

from __future__ import annotations

from pathlib import Path

import pytest

from parbench.controller.nodes.locks import lock_storage
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
    lock goes through the REST proxy of the same namespace, also when the endpoint is
    written out; any other endpoint is asked with a conditional put."""

    def locked(defaults: str) -> tuple:
        inv = _load(tmp_path, defaults)
        config = lock_storage(inv.settings, inv.nodes[0], 60)
        return config.backend, config.host, config.port

    assert locked("backend: s3") == ("alluxio", "p0", 40000)
    spelled = "backend: s3, s3_endpoint: 'http://lb.example:39999/api/v1/s3/'"
    assert locked(spelled) == ("alluxio", "lb.example", 39999)
    assert locked("backend: s3, s3_endpoint: 'https://s3.example.com'")[0] == "s3"
    assert locked("backend: alluxio") == ("alluxio", "p0", 40000)


def test_a_file_larger_than_one_upload_is_refused_before_the_run(tmp_path) -> None:
    """10,000 parts of chunk_size (at least 5 MiB) is the largest S3 upload: a larger file
    is refused up front naming the chunk size it needs, not after 49 GiB were sent."""
    from parbench.controller.run.plan import PlanError, ReferenceFacts, check_upload

    settings = _load(tmp_path, "backend: s3, chunk_size: 1MiB").settings
    fits = ReferenceFacts("generated:1", 10_000 * 5 * 1024**2, "0" * 64, generated=True)
    check_upload(settings, fits)
    too_big = ReferenceFacts("generated:1", 64 * 1024**3, "0" * 64, generated=True)
    with pytest.raises(PlanError, match="set chunk_size .* to at least 6871948 bytes"):
        check_upload(settings, too_big)
    check_upload(_load(tmp_path, "chunk_size: 1MiB").settings, too_big)  # not s3: no limit
