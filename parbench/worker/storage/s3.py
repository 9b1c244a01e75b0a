"""The s3 backend: any S3 API through boto3 (by default Alluxio's, which the 2.9 REST proxy
serves at ``/api/v1/s3``).

Storage path ``/bucket/a/b`` is key ``a/b`` of bucket ``bucket``: the first segment of
``dst`` is the bucket (on Alluxio, a bucket is a top-level directory, so the files are where
the alluxio backend puts them). Writes are streamed: one ``PutObject`` for a file that fits
one part, else a multipart upload of parts of ``part_size`` bytes, one part in memory at a
time whatever the file size; reads stream ``GetObject``'s body in chunks.

No retries (a retried request would hide a failure and distort the timing), and checksums
only where the API requires them (botocore adds CRC32 trailers by default since 1.36,
which Alluxio 2.9's S3 API does not know and which the other backends do not pay for).

Credentials are never parbench's: boto3 takes them from the node (its environment,
``~/.aws/credentials``, optionally the profile ``profile``). With no secret on the node and an
access key given, or with none at all, requests are signed with a placeholder secret as the
access key (or the node's user) names: what Alluxio's proxy accepts, as it checks no
signature; a real S3 refuses them in one line (``InvalidAccessKeyId``).
"""

from __future__ import annotations

import getpass
import posixpath
import shlex
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..meter import NO_METER, Meter
from ..protocol import S3_MAX_PARTS, S3_MIN_PART, StorageConfig
from ..results import one_line
from .base import CAUSE_LIMIT, Storage, StorageError, _metered, _quietly, root_cause

#: smaller chunk sizes are gathered into parts of S3's smallest; a file of more than
#: MAX_PARTS parts is refused by the controller before a run
MIN_PART, MAX_PARTS = S3_MIN_PART, S3_MAX_PARTS
#: signs requests when the node has no secret (Alluxio's S3 API checks no signature)
PLACEHOLDER_SECRET = "parbench-no-secret"  # noqa: S105 - not a secret: a stand-in for none
#: how many times connect() asks before an internal error is the client's failure
CONNECT_TRIES = 5
#: S3 error codes that say the object (or its bucket) is not there
_MISSING_CODES = ("404", "NoSuchKey", "NoSuchBucket", "NotFound")


class NotFoundError(StorageError):
    """The object or bucket is not there (``storage.base.is_missing`` knows the name)."""


def preload() -> None:
    """Import boto3 and botocore (about 0.3 s of CPU per process that would)."""
    import boto3  # noqa: F401
    import botocore.config  # noqa: F401


def split(path: str) -> Tuple[str, str]:
    """``/bucket/a/b`` -> (``bucket``, ``a/b``); the key is empty for the bucket itself."""
    clean = posixpath.normpath("/" + path).lstrip("/")
    bucket, _, key = clean.partition("/")
    if not bucket or bucket == "..":
        raise StorageError(f"s3: {path!r} names no bucket (the first segment of dst is one)")
    return bucket, key


def _error_code(exc: BaseException) -> Optional[Tuple[str, str, int]]:
    """(code, message, HTTP status) of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return None
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(error.get("Code", "")), str(error.get("Message", "")), int(status)


def _answered(exc: StorageError) -> Tuple[str, int]:
    """(S3 error code, HTTP status) the server answered with behind ``exc``, ("", 0) when
    it did not answer (unreachable, no credentials)."""
    coded = _error_code(exc.__cause__) if exc.__cause__ is not None else None
    return (coded[0], coded[2]) if coded else ("", 0)


def explain(exc: BaseException, timeout: float, handled: Optional[BaseException] = None) -> str:
    """The cause of a boto3 exception in a few words: the S3 error code, HTTP status and
    message, else botocore's own message when nothing is behind it (no credentials), else
    the root cause of the chain (``connection refused``, ``read timed out after 5 s``)."""
    coded = _error_code(exc)
    if coded is not None:
        code, message, status = coded
        said = f"{code} (HTTP {status})" if status and str(status) != code else code
        return one_line(f"{said}: {message}" if message else said, CAUSE_LIMIT)
    if exc.__cause__ is None and exc.__context__ in (None, handled):  # botocore's own
        return one_line(f"{type(exc).__name__}: {exc}", CAUSE_LIMIT)  # (no credentials...)
    return root_cause(exc, timeout, handled)


def _tag(listed: Dict[str, Any]) -> str:
    """The tag (base.TAG) of an object from its listing: when it was last written (ms, as
    precise as the server says), its size and its ETag where the listing has one."""
    modified = listed.get("LastModified")
    ms = int(modified.timestamp() * 1000) if isinstance(modified, datetime) else 0
    etag = str(listed.get("ETag") or "-").strip('"')
    return f"{ms}.{listed.get('Size', 0)}.{etag}"


class S3Storage(Storage):
    """One boto3 client (one HTTP connection pool) per instance."""

    def __init__(self, config: StorageConfig) -> None:
        import boto3
        from botocore.config import Config

        if not config.endpoint:
            raise ValueError("the s3 backend needs an endpoint URL")
        self.config = config
        self.where = f"s3 {config.endpoint}"
        self.part_size = max(config.part_size, MIN_PART)
        with self._calling("configure"):  # no such profile, half a key pair, ...
            session = boto3.Session(profile_name=config.profile or None)
            key, secret = self._credentials(session)
        self.client = session.client(
            "s3",
            endpoint_url=config.endpoint,
            region_name=config.region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(
                s3={"addressing_style": config.addressing},
                retries={"total_max_attempts": 1},
                connect_timeout=config.timeout,
                read_timeout=config.timeout,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._buckets: set = set()

    def _credentials(self, session: Any) -> Tuple[Optional[str], Optional[str]]:
        """(access key, secret) for the client: None, None to let boto3 use the node's own
        (they exist); else the configured access key (or the node's user) with the node's
        secret for it, or the placeholder."""
        found = session.get_credentials()
        wanted = self.config.access_key
        if found is not None and (wanted is None or found.access_key == wanted):
            return None, None
        return wanted or getpass.getuser(), PLACEHOLDER_SECRET

    @contextmanager
    def _calling(self, what: str, path: str = "") -> Iterator[None]:
        handled = sys.exc_info()[1]
        named = f"{what} s3://{path.lstrip('/')}" if path else what
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            cause = explain(exc, self.config.timeout, handled)
            coded = _error_code(exc)
            kind = NotFoundError if coded and coded[0] in _MISSING_CODES else StorageError
            raise kind(f"{self.where}: {named}: {cause}") from exc

    def connect(self) -> None:
        """One ListBuckets, to open the connection before the start: an answer of any
        kind will do (a key scoped to one bucket is refused it: AccessDenied is an answer).
        An internal error is asked again (at most CONNECT_TRIES times, untimed): Alluxio
        2.9's S3 handler makes its metadata folder on each request, and the first
        requests of several clients at once fail with 500 where it races itself."""
        for attempt in range(1, CONNECT_TRIES + 1):
            try:
                with self._calling("list-buckets"):
                    self.client.list_buckets()
                return
            except StorageError as exc:
                code, status = _answered(exc)
                if code in ("AccessDenied", "403"):
                    return
                if status != 500 or attempt == CONNECT_TRIES:
                    raise
                time.sleep(0.05 * attempt)

    def _bucket(self, bucket: str) -> None:
        """Make ``bucket`` if it is not there (once per instance)."""
        if bucket in self._buckets:
            return
        try:
            with self._calling("head-bucket", bucket):
                self.client.head_bucket(Bucket=bucket)
        except NotFoundError:
            try:
                with self._calling("create-bucket", bucket):
                    self.client.create_bucket(Bucket=bucket)
            except StorageError as exc:  # made by another client meanwhile: fine
                if _answered(exc)[0] not in ("BucketAlreadyOwnedByYou", "409"):
                    raise
        self._buckets.add(bucket)

    def mkdirs(self, path: str) -> None:
        """Only the bucket: S3 has no directories (a key's prefixes need no making)."""
        self._bucket(split(path)[0])

    def _listing(self, path: str, delimiter: bool) -> Iterator[Dict[str, Any]]:
        """Every page of the listing of folder ``path`` (one level with ``delimiter``)."""
        bucket, key = split(path)
        prefix = key.rstrip("/") + "/" if key else ""
        args: Dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter:
            args["Delimiter"] = "/"
        with self._calling("list-objects", path):
            try:
                yield from self.client.get_paginator("list_objects_v2").paginate(**args)
            except Exception as exc:
                coded = _error_code(exc)
                if coded and coded[0] in _MISSING_CODES:
                    return  # no bucket: nothing in it
                raise

    def _files(self, folder: str) -> Dict[str, Dict[str, Any]]:
        """Name -> listing entry of the objects right in ``folder``."""
        found: Dict[str, Dict[str, Any]] = {}
        for page in self._listing(folder, delimiter=True):
            for entry in page.get("Contents") or ():
                name = posixpath.basename(entry["Key"])
                if name:  # "a/b/": a folder's own marker (Alluxio lists directories so)
                    found[name] = entry
        return found

    def exists(self, path: str) -> bool:
        try:
            self.size(path)
        except NotFoundError:
            return False
        return True

    def size(self, path: str) -> Optional[int]:
        bucket, key = split(path)
        with self._calling("head-object", path):
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def delete(self, path: str) -> None:
        bucket, key = split(path)
        with self._calling("delete-object", path):
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_tree(self, path: str) -> bool:
        """Every object below ``path`` (and ``path`` itself), deepest first, then the
        folder's own marker (Alluxio lists a directory as ``a/b/``). False, deleting
        nothing, when nothing is there (no bucket either). A bucket stays (it may hold more
        than this run)."""
        bucket, key = split(path)
        keys = [e["Key"] for page in self._listing(path, False) for e in page.get("Contents") or ()]
        if key and (keys or posixpath.basename(key) in self.names(posixpath.dirname(path))):
            keys += [key, key.rstrip("/") + "/"]
        for name in sorted(set(keys), key=lambda k: (-k.rstrip("/").count("/"), k)):
            with self._calling("delete-object", f"{bucket}/{name}"):
                self.client.delete_object(Bucket=bucket, Key=name)
        return bool(keys)

    def names(self, path: str) -> List[str]:
        """One listing (a timed ``list`` of the meta phase is one, as on the other paths)."""
        names = set()
        for page in self._listing(path, delimiter=True):
            for entry in page.get("Contents") or ():
                names.add(posixpath.basename(entry["Key"]))
            for common in page.get("CommonPrefixes") or ():
                names.add(posixpath.basename(common["Prefix"].rstrip("/")))
        names.discard("")  # a folder's own marker
        return sorted(names)

    def _entry(self, path: str) -> Optional[Dict[str, Any]]:
        """The listing entry of the object ``path`` (a listing of its folder), None if none."""
        return self._files(posixpath.dirname(path)).get(posixpath.basename(path))

    def tag(self, path: str) -> Optional[str]:
        listed = self._entry(path)
        return None if listed is None else _tag(listed)

    def tag_lookup(self) -> Callable[[str], Optional[str]]:
        """One listing per folder, on its first file (a single object's tag is a listing
        too: HEAD's Last-Modified has whole seconds only, a listing has milliseconds)."""
        listed: Dict[str, Dict[str, str]] = {}

        def lookup(path: str) -> Optional[str]:
            folder = posixpath.dirname(path)
            if folder not in listed:
                listed[folder] = self.tags(folder)
            return listed[folder].get(posixpath.basename(path))

        return lookup

    def tags(self, folder: str) -> Dict[str, str]:
        return {name: _tag(entry) for name, entry in self._files(folder).items()}

    def modified(self, path: str) -> float:
        listed = self._entry(path)
        if listed is None:
            raise NotFoundError(f"{self.where}: list-objects s3://{path.lstrip('/')}: not there")
        return float(listed["LastModified"].timestamp())

    def publish(self, staged: str, target: str) -> bool:
        """A conditional put (``If-None-Match: *``) of the staged content: atomic where the
        server honours it (AWS S3, MinIO). Alluxio 2.9's S3 API ignores it, so parbench
        takes a run's lock there through the REST proxy instead (controller/nodes/locks.py)."""
        bucket, key = split(target)
        data = b"".join(self.read_stream(staged, 1 << 16))
        try:
            with self._calling("put-object (if none)", target):
                self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except StorageError as exc:
            if _answered(exc)[0] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def rename(self, source: str, target: str) -> None:
        """A copy then a delete: S3 has no rename (not atomic)."""
        bucket, key = split(source)
        to_bucket, to_key = split(target)
        with self._calling("copy-object", f"{source} -> {target}"):
            self.client.copy_object(
                Bucket=to_bucket, Key=to_key, CopySource={"Bucket": bucket, "Key": key}
            )
        self.delete(source)

    def remove_command(self, path: str) -> str:
        url, endpoint = f"s3://{path.lstrip('/')}", self.config.endpoint or ""
        return f"aws s3 rm {shlex.quote(url)} --endpoint-url {shlex.quote(endpoint)}"

    def write_stream(
        self,
        path: str,
        chunks: Iterable[bytes],
        created: Callable[[], None] = lambda: None,
        meter: Meter = NO_METER,
    ) -> None:
        """One put for a file within one part, else a multipart upload; the object appears
        only when it is whole, and ``created()`` is called just before the request that
        makes it appear (a failure then cleans up whatever that request left). Unlike
        the other backends this does not refuse an existing file: S3 replaces it (the
        write phase looks first, under the run's lock). Holds one part and one chunk."""
        bucket, key = split(path)
        parts = _Parts(chunks, self.part_size)
        part = parts.take()
        if not parts.more():  # one part: one request, timed as the file's write
            created()
            with self._calling("put-object", path):
                began = meter.clock()
                self.client.put_object(Bucket=bucket, Key=key, Body=part)
                meter.moved("write", began, len(part))
            return
        with self._calling("create-multipart-upload", path):
            began = meter.clock()
            upload = self.client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            meter.since("create", began)
        done: List[Dict[str, Any]] = []
        try:
            while True:
                number = len(done) + 1
                if number > MAX_PARTS:
                    raise StorageError(
                        f"{self.where}: upload s3://{path.lstrip('/')}: more than {MAX_PARTS}"
                        f" parts of {self.part_size} bytes; raise chunk_size (the part size)"
                    )
                with self._calling(f"upload-part {number}", path):
                    began = meter.clock()
                    answer = self.client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part
                    )
                    meter.moved("write", began, len(part))
                done.append({"ETag": answer["ETag"], "PartNumber": number})
                del part  # sent: not held while the next one is gathered
                if not parts.more():
                    break
                part = parts.take()
            created()
            with self._calling("complete-multipart-upload", path):
                began = meter.clock()
                self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
                )
                meter.since("close", began)
        except BaseException:
            _quietly(
                lambda: self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            )
            raise

    def read_stream(self, path: str, chunk_size: int, meter: Meter = NO_METER) -> Iterator[bytes]:
        bucket, key = split(path)
        with self._calling("get-object", path):
            opened = meter.clock()
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            meter.since("open", opened)
        done = False
        try:
            with self._calling("read", path):
                yield from _metered(lambda: body.read(chunk_size), meter, opened)
            done = True
        finally:
            began = meter.clock()
            _quietly(body.close)
            if done:  # timed as on the other paths: a whole read's close only
                meter.since("close", began)

    def close(self) -> None:
        _quietly(self.client.close)


class _Parts:
    """The chunks of a stream gathered into parts of ``size`` bytes, taken one at a time;
    :meth:`more` looks one chunk ahead, so that a writer holds a part and a chunk, never
    two parts. Each part is a new buffer handed over, never copied."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._left = memoryview(b"")

    def more(self) -> bool:
        """Whether any byte is left (an empty chunk is none)."""
        while not len(self._left):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._left = memoryview(chunk)
        return True

    def take(self) -> bytearray:
        """The next part: ``size`` bytes, or what is left (empty for an empty stream)."""
        held = bytearray()
        while len(held) < self._size and self.more():
            count = min(self._size - len(held), len(self._left))
            held += self._left[:count]
            self._left = self._left[count:]
        return held
