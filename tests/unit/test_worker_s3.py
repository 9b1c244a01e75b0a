"""The s3 backend's parts that need no server: paths, parts, errors, credentials; its
traffic with a real S3 API (the testbed proxy's) is in tests/integration/test_s3.py."""

from __future__ import annotations

import tracemalloc
from typing import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from parbench.worker.protocol import RequestError, StorageConfig
from parbench.worker.storage import StorageError, is_missing, make_storage, s3


def test_the_first_segment_of_a_path_is_the_bucket() -> None:
    assert s3.split("/parbench/n0/0") == ("parbench", "n0/0")
    assert s3.split("/parbench") == ("parbench", "")
    assert s3.split("parbench/n0//1/") == ("parbench", "n0/1")
    with pytest.raises(StorageError, match="names no bucket"):
        s3.split("/")


def _chunks(count: int, size: int) -> Iterator[bytes]:
    for _ in range(count):
        yield b"x" * size


def _split(chunks: Iterator[bytes], size: int) -> list:
    """The lengths of the parts a writer takes, dropping each once taken (as it does)."""
    parts = s3._Parts(chunks, size)
    part = parts.take()
    lengths = [len(part)]
    while parts.more():
        del part
        part = parts.take()
        lengths.append(len(part))
    return lengths


@pytest.mark.parametrize(
    ("count", "size", "part", "expected"),
    [
        (10, 3, 8, [8, 8, 8, 6]),
        (4, 2, 8, [8]),  # a multiple of the part: no empty tail
        (0, 1, 8, [0]),  # an empty file: one empty part, one put
        (3, 20, 8, [8] * 7 + [4]),  # chunks larger than a part are cut
        (3, 0, 8, [0]),  # empty chunks are no data
    ],
)
def test_chunks_are_gathered_into_parts(count: int, size: int, part: int, expected: list) -> None:
    assert _split(_chunks(count, size), part) == expected


def test_a_large_file_is_uploaded_holding_one_part_and_one_chunk() -> None:
    """Memory is flat in the file size: 64 MiB of 1 MiB chunks into 5 MiB parts never holds
    much more than a part and a chunk (the writer looks one chunk ahead, not one part)."""
    tracemalloc.start()
    try:
        assert sum(_split(_chunks(64, 1024**2), s3.MIN_PART)) == 64 * 1024**2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < s3.MIN_PART + 3 * 1024**2, peak


def _client_error(code: str, status: int, message: str = "") -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")  # type: ignore[arg-type]


def _storage(**fields: object) -> s3.S3Storage:
    config = StorageConfig("s3", endpoint="http://127.0.0.1:1/api/v1/s3", timeout=2, **fields)  # type: ignore[arg-type]
    storage = make_storage(config)
    assert isinstance(storage, s3.S3Storage)
    return storage


def test_an_s3_error_is_one_line_naming_endpoint_bucket_key_and_code() -> None:
    storage = _storage()
    with pytest.raises(StorageError) as raised, storage._calling("get-object", "/b/n0/3"):
        raise _client_error("NoSuchKey", 404, 'Path "/b/n0/3" does not exist.')
    assert str(raised.value) == (
        "s3 http://127.0.0.1:1/api/v1/s3: get-object s3://b/n0/3: NoSuchKey (HTTP 404):"
        ' Path "/b/n0/3" does not exist.'
    )
    assert is_missing(raised.value)
    with pytest.raises(StorageError) as denied, storage._calling("put-object", "/b/k"):
        raise _client_error("AccessDenied", 403, "Access Denied")
    assert str(denied.value).endswith("put-object s3://b/k: AccessDenied (HTTP 403): Access Denied")
    assert not is_missing(denied.value)


def test_botocore_s_own_errors_and_unreachable_endpoints_are_said_in_words() -> None:
    storage = _storage()
    expected = r"list-buckets: NoCredentialsError: Unable to locate"
    with pytest.raises(StorageError, match=expected), storage._calling("list-buckets"):
        raise NoCredentialsError()
    with pytest.raises(StorageError, match=r"s3 http://127.0.0.1:1/api/v1/s3: list-buckets: "):
        storage.connect()  # nothing listens on port 1
    try:
        storage.connect()
    except StorageError as exc:
        assert "connection refused" in str(exc), exc
        assert "\n" not in str(exc)
        assert isinstance(exc.__cause__, EndpointConnectionError)


def test_without_credentials_on_the_node_requests_are_signed_as_its_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alluxio's S3 API takes the access key as the user and checks no signature; a node
    with no AWS credentials still reaches it. The secret is a placeholder, never a value
    from parbench's inventory; with credentials on the node, boto3 uses them."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(s3.getpass, "getuser", lambda: "alice")
    signed = _storage().client._request_signer._credentials
    assert (signed.access_key, signed.secret_key) == ("alice", s3.PLACEHOLDER_SECRET)
    assert _storage(access_key="bob").client._request_signer._credentials.access_key == "bob"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNODE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "node-secret")
    signed = _storage().client._request_signer._credentials
    assert (signed.access_key, signed.secret_key) == ("AKIDNODE", "node-secret")


def test_a_request_for_s3_needs_an_endpoint_url() -> None:
    with pytest.raises(RequestError, match="endpoint: expected an http:// or https:// URL"):
        StorageConfig("s3", endpoint="127.0.0.1:39999").check("request.storage")
    with pytest.raises(RequestError, match="addressing: expected one of path, virtual, auto"):
        StorageConfig("s3", endpoint="http://h/", addressing="dns").check("request.storage")


def test_a_bucket_given_as_dst_is_made_once() -> None:
    calls: list = []

    class Client:
        def head_bucket(self, Bucket: str) -> None:  # noqa: N803 - boto3's keyword
            calls.append(("head", Bucket))
            raise _client_error("404", 404, "Not Found")

        def create_bucket(self, Bucket: str) -> None:  # noqa: N803
            calls.append(("create", Bucket))

    storage = _storage()
    storage.client = Client()  # type: ignore[assignment]
    storage.mkdirs("/bench/n0")
    storage.mkdirs("/bench/n1")
    assert calls == [("head", "bench"), ("create", "bench")]


class _Listing:
    """A stand-in for boto3's list_objects_v2 paginator over one folder's objects."""

    def __init__(self, keys: list) -> None:
        from datetime import datetime, timezone

        self.keys, self.calls = keys, 0
        self.when = datetime(2026, 12, 3, tzinfo=timezone.utc)

    def get_paginator(self, name: str) -> _Listing:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str, Delimiter: str = "") -> list:  # noqa: N803
        self.calls += 1
        found = [k for k in self.keys if k.startswith(Prefix) and "/" not in k[len(Prefix) :]]
        return [{"Contents": [{"Key": k, "Size": 5, "LastModified": self.when} for k in found]}]


def test_verify_s_tags_of_many_files_cost_one_listing_per_folder() -> None:
    """A duration run leaves hundreds of files per client: their tags come from one listing
    of their folder, not one listing per file (a single object's tag is a listing too)."""
    keys = [f"run/n0/0.{k}" if k else "run/n0/0" for k in range(300)] + ["run/n1/0"]
    storage = _storage()
    storage.client = listing = _Listing(keys)  # type: ignore[assignment]
    tag_of = storage.tag_lookup()
    tags = [tag_of(f"/b/{key}") for key in keys]
    assert listing.calls == 2  # run/n0/ and run/n1/
    assert all(tags) and tag_of("/b/run/n0/nope") is None
    assert tags[0] == storage.tag("/b/run/n0/0")  # the same tag as one file's own


def test_a_listing_of_names_is_one_listing() -> None:
    """The meta phase times ``list`` as one operation: one listing, not two."""
    storage = _storage()
    storage.client = listing = _Listing(["run/n0/a", "run/n0/b"])  # type: ignore[assignment]
    assert storage.names("/b/run/n0") == ["a", "b"]
    assert listing.calls == 1


def test_a_key_scoped_to_one_bucket_still_connects() -> None:
    """ListBuckets warms the connection; a key allowed one bucket is refused it, which is
    an answer: the run goes on (any other error is said)."""

    class Scoped:
        def __init__(self, code: str) -> None:
            self.code = code

        def list_buckets(self) -> None:
            raise _client_error(self.code, 403 if self.code == "AccessDenied" else 400, "no")

    storage = _storage()
    storage.client = Scoped("AccessDenied")  # type: ignore[assignment]
    storage.connect()
    storage.client = Scoped("InvalidAccessKeyId")  # type: ignore[assignment]
    with pytest.raises(StorageError, match="list-buckets: InvalidAccessKeyId"):
        storage.connect()


def test_a_profile_the_node_does_not_have_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    with pytest.raises(StorageError) as raised:
        _storage(profile="bench")
    assert str(raised.value) == (
        "s3 http://127.0.0.1:1/api/v1/s3: configure: ProfileNotFound: The config profile"
        " (bench) could not be found"
    )


def test_a_bucket_another_client_made_meanwhile_is_fine() -> None:
    class Racing:
        def head_bucket(self, Bucket: str) -> None:  # noqa: N803
            raise _client_error("404", 404)

        def create_bucket(self, Bucket: str) -> None:  # noqa: N803
            raise _client_error("BucketAlreadyOwnedByYou", 409, "yours already")

    storage = _storage()
    storage.client = Racing()  # type: ignore[assignment]
    storage.mkdirs("/bench/n0")


def test_a_read_stopped_early_times_no_close() -> None:
    """``close`` is a whole read's end on every path: one abandoned or failed is not one."""
    from parbench.worker.meter import Meter
    from parbench.worker.protocol import Measure

    class Body:
        def read(self, size: int) -> bytes:
            return b"x" * size

        def close(self) -> None:
            pass

    class Client:
        def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
            return {"Body": Body()}

    storage = _storage()
    storage.client = Client()  # type: ignore[assignment]
    meter = Meter(Measure())
    stream = storage.read_stream("/b/k", 4, meter)
    next(stream)
    stream.close()
    assert "close" not in meter.latency and "read" in meter.latency


def test_connect_asks_again_after_an_internal_error_but_not_forever() -> None:
    """Alluxio 2.9's S3 handler races itself on its first requests (500 while it makes its
    metadata folder): set-up asks again; an endpoint that always fails is said."""

    class Flaky:
        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, 0

        def list_buckets(self) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise _client_error("500", 500, "Internal Server Error")

    storage = _storage()
    storage.client = flaky = Flaky(2)  # type: ignore[assignment]
    storage.connect()
    assert flaky.calls == 3
    storage.client = broken = Flaky(100)  # type: ignore[assignment]
    with pytest.raises(StorageError, match="list-buckets: 500: Internal Server Error"):
        storage.connect()
    assert broken.calls == s3.CONNECT_TRIES
