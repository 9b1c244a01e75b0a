"""The s3 backend end to end: ``fab write read verify`` through the testbed proxy's S3 API
(``/api/v1/s3``) with real boto3 on the nodes, checked from here with boto3 too."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from parbench.worker.layout import DATA, generated_file

from .fabrun import fab, write_inventory

pytestmark = pytest.mark.integration

MiB = 1024**2


def _client(testbed):  # Alluxio's S3 API: the access key is the user; no signature check
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{testbed.proxy_port}/api/v1/s3",
        aws_access_key_id=testbed.state.user,
        aws_secret_access_key="unchecked",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def test_write_read_verify_through_s3_leave_the_objects_in_the_bucket(testbed, tmp_path):
    """12 MiB files in 1 MiB chunks: multipart uploads of 5 MiB parts (S3's smallest)."""
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, dst="/it-s3/run", backend="s3",
        data="12MiB", chunk_size="1MiB",
    )  # fmt: skip
    run = fab(tmp_path, inv, "write", "read", "verify")
    assert run.code == 0, run.text
    assert "verify: all 8 files match the reference" in run.out
    s3 = _client(testbed)
    listed = s3.list_objects_v2(Bucket="it-s3", Prefix="run/")["Contents"]
    objects = {o["Key"]: o["Size"] for o in listed if not o["Key"].endswith("/")}
    assert objects == {f"run/n{n}/{c}": 12 * MiB for n in (0, 1) for c in (0, 1)}
    reference = Path(testbed.state.nodes[0]["workdir"]) / DATA / generated_file(12 * MiB)
    body = s3.get_object(Bucket="it-s3", Key="run/n1/0")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(reference.read_bytes()).hexdigest()
    sealed = json.loads((tmp_path / "results" / "latest" / "run.json").read_text())
    storage = sealed["requests"]["write"]["n0"]["storage"]
    assert storage["backend"] == "s3"
    assert storage["endpoint"] == f"http://127.0.0.1:{testbed.proxy_port}/api/v1/s3"
    assert storage["part_size"] == MiB  # the chunk size; the writer makes it 5 MiB at least


def test_the_backend_flag_takes_a_proxy_inventory_to_s3(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it-s3/flag")
    run = fab(tmp_path, inv, "write", "--backend", "s3", "read", "verify")
    assert run.code == 0, run.text
    keys = [
        o["Key"]
        for o in _client(testbed).list_objects_v2(Bucket="it-s3", Prefix="flag/")["Contents"]
    ]
    assert "flag/n0/0" in keys and "flag/n1/1" in keys


def test_s3_failures_name_endpoint_bucket_key_and_code(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/it-s3/err", backend="s3")
    run = fab(tmp_path, inv, "read", "--mode", "same", "--src", "/it-s3/nope")
    assert run.code == 1, run.text
    endpoint = f"http://127.0.0.1:{testbed.proxy_port}/api/v1/s3"
    assert f"s3 {endpoint}: get-object s3://it-s3/nope: NoSuchKey (HTTP 404)" in run.text
    gone = write_inventory(
        testbed, tmp_path / "gone.yaml", nodes=2, dst="/it-s3/err", backend="s3",
        s3_endpoint="http://127.0.0.1:9/s3",  # not Alluxio's path: locked through S3 too
    )  # fmt: skip
    run = fab(tmp_path, gone, "write")
    assert run.code != 0, run.text
    line = [x for x in run.text.splitlines() if "127.0.0.1:9" in x]
    assert line and "s3://it-s3" in line[0] and "connection refused" in line[0], run.text


def test_a_dst_that_is_no_bucket_name_is_refused_before_anything_runs(testbed, tmp_path):
    inv = write_inventory(testbed, tmp_path / "inv.yaml", nodes=2, dst="/It_S3/x", backend="s3")
    run = fab(tmp_path, inv, "write")
    assert run.code == 2, run.text
    assert "defaults.dst: '/It_S3/x': with backend s3 the first segment is the bucket" in run.text


def test_meta_and_clean_on_a_bucket_that_is_not_there_yet(testbed, tmp_path):
    """The meta phase clears its folder before it starts: on a new bucket there is nothing
    to clear (not a NoSuchBucket error); clean of a run that never wrote says absent."""
    bucket = f"it-s3-fresh-{secrets.token_hex(4)}"
    inv = write_inventory(
        testbed, tmp_path / "inv.yaml", nodes=2, dst=f"/{bucket}/meta", backend="s3",
        meta_files=5,
    )  # fmt: skip
    cleaned = fab(tmp_path, inv, "clean", "--verbose")
    assert cleaned.code == 0, cleaned.text
    assert f"absent /{bucket}/meta/n0" in cleaned.text
    run = fab(tmp_path, inv, "meta")
    assert run.code == 0, run.text
    assert "meta: 2 nodes, 4 clients, 5 files each; ok 4" in run.out
