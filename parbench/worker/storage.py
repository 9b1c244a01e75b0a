"""Storage backends the clients write to and read from: the Alluxio REST proxy or a directory.

Every backend failure surfaces as :class:`StorageError`, one line naming the backend
(``alluxio proxy HOST:PORT`` or ``posix root DIR``), the operation and the cause; for the
proxy, the root cause in a few words (``connection refused``), not the chain of requests
and urllib3 exceptions around it, which stays in the StorageError's ``__cause__``.
"""

from __future__ import annotations

import abc
import os
import posixpath
import re
import shutil
import socket
import sys
from contextlib import contextmanager, suppress
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from .meter import NO_METER, Meter
from .protocol import BACKENDS, StorageConfig
from .results import one_line

#: characters of a root cause (:func:`root_cause`)
CAUSE_LIMIT = 200


class StorageError(Exception):
    """A storage operation failed; the message is ready for people."""


def describe_error(exc: BaseException) -> str:
    """One-line cause of an exception: storage errors as is, others with their type."""
    if isinstance(exc, StorageError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def exception_chain(
    exc: BaseException, handled: Optional[BaseException] = None
) -> List[BaseException]:
    """``exc`` and the exceptions behind it, outermost first. Behind one is its cause, else
    the exception it holds (urllib3's ``reason``, or among its arguments, as requests'
    ConnectionError holds a MaxRetryError and urllib3's ProtocolError an OSError), else
    its context. ``handled`` was being handled when the call that raised ``exc`` began
    (a failed write whose partial file is being deleted): Python makes it a context in the
    chain, but it is no cause, so the chain ends before it."""
    chain: List[BaseException] = []
    link: Optional[BaseException] = exc
    while link is not None and link is not handled and len(chain) < 32:
        if any(link is seen for seen in chain):
            break
        chain.append(link)
        link = _behind(link)
    return chain


def _behind(exc: BaseException) -> Optional[BaseException]:
    if exc.__cause__ is not None:
        return exc.__cause__
    for held in (getattr(exc, "reason", None), *reversed(exc.args)):
        if isinstance(held, BaseException):
            return held
    return None if exc.__suppress_context__ else exc.__context__


def root_cause(
    exc: BaseException, timeout: Optional[float] = None, handled: Optional[BaseException] = None
) -> str:
    """The innermost cause behind ``exc`` (:func:`exception_chain`) in a few words, at most
    CAUSE_LIMIT characters: ``connection refused``, ``connection reset by peer``, ``read
    timed out after 600 s``. ``timeout``: the seconds a timeout took if the chain does not
    say them."""
    chain = exception_chain(exc, handled)
    root = chain[-1]
    if isinstance(root, (TimeoutError, socket.timeout)):
        return _timed_out(" ".join(map(str, chain)), timeout)
    return one_line(_in_words(root), CAUSE_LIMIT)


def _timed_out(messages: str, timeout: Optional[float]) -> str:
    """``read timed out after 5 s``, from urllib3's ``... (read timeout=5)`` if it is there."""
    named = re.search(r"\b(read|connect) timeout=([0-9.]+)", messages)
    if named:
        return f"{named.group(1)} timed out after {float(named.group(2)):g} s"
    what = "read timed out" if "read timed out" in messages.lower() else "timed out"
    return what if timeout is None else f"{what} after {timeout:g} s"


def _in_words(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # errno: "Connection refused"
        words = exc.strerror[:1].lower() + exc.strerror[1:]
        return words if exc.filename is None else f"{words}: {exc.filename}"
    text = str(exc)
    if isinstance(exc, ConnectionError) and text:  # "Remote end closed connection ..."
        return text[:1].lower() + text[1:]
    name = type(exc).__name__
    if not text or text.startswith(name):  # "IncompleteRead(10 bytes read, ...)"
        return text or name
    return f"{name}: {text}"


#: what a file's tag is made of: it changes whenever the file at a path is replaced
#: (Alluxio: the file id and creation time the master gave it; a local file: its inode
#: and status-change time, which no user can set back); written into the records of the
#: phase that made the file and compared by verify
TAG = "alluxio: FILEID.CREATED_MS; posix: INODE.CTIME_NS"


def local_tag(status: os.stat_result) -> str:
    """The tag (:data:`TAG`) of a local file from its ``lstat``."""
    return f"{status.st_ino}.{status.st_ctime_ns}"


def local_tag_of(path: str) -> Optional[str]:
    """The tag of the local file ``path``, None when there is none."""
    try:
        return local_tag(os.lstat(path))
    except FileNotFoundError:
        return None


class Storage(abc.ABC):
    """A file namespace with streaming IO; paths are absolute POSIX-style storage paths."""

    where: str  # the backend as messages name it: "alluxio proxy HOST:PORT", "posix root DIR"

    @abc.abstractmethod
    def connect(self) -> None:
        """Make a cheap call that sets up the connection (fails early if unreachable)."""

    @abc.abstractmethod
    def mkdirs(self, path: str) -> None:
        """Create a directory and its parents; an existing directory is fine."""

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, path: str) -> None: ...

    @abc.abstractmethod
    def delete_tree(self, path: str) -> bool:
        """Delete a directory and everything below it; False when nothing was there."""

    @abc.abstractmethod
    def size(self, path: str) -> Optional[int]:
        """Size in bytes from the file's metadata, None when the backend cannot tell."""

    @abc.abstractmethod
    def names(self, path: str) -> List[str]:
        """The names in directory ``path``; none when it does not exist."""

    @abc.abstractmethod
    def tag(self, path: str) -> Optional[str]:
        """The file's tag (:data:`TAG`): what tells it from any other that was ever at
        ``path``; None when nothing is there."""

    @abc.abstractmethod
    def tags(self, folder: str) -> Dict[str, str]:
        """Name -> :meth:`tag` of every file in ``folder``, in one call; none when it does
        not exist."""

    @abc.abstractmethod
    def write_stream(
        self,
        path: str,
        chunks: Iterable[bytes],
        created: Callable[[], None] = lambda: None,
        meter: Meter = NO_METER,
    ) -> None:
        """Create a new file from chunks; fails if it exists; the data is stored on return.
        ``created()`` is called once the file is this call's (so that a failure cleans up
        only what it made, never a file someone else created meanwhile). ``meter`` times
        ``create``, each chunk's ``write`` and ``close``."""

    @abc.abstractmethod
    def read_stream(self, path: str, chunk_size: int, meter: Meter = NO_METER) -> Iterator[bytes]:
        """Yield the file's content in chunks; close the generator to release the file.
        ``meter`` times ``open``, each chunk's ``read``, ``ttfb`` and ``close``."""

    def server_version(self) -> Optional[str]:
        """The storage's own version as its server tells it (``alluxio 2.9.6``), or None
        when it cannot tell."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def preload(backend: str) -> None:
    """Import ``backend``'s client library now, in this process: the processes forked
    from it later (a phase from the agent, its clients, each set up before the common
    start) then share it instead of each importing it again (about 0.1 s of CPU each
    for alluxio and requests)."""
    if backend == "alluxio":
        import alluxio.exceptions
        import alluxio.option
        import alluxio.wire  # noqa: F401


def make_storage(config: StorageConfig) -> Storage:
    if config.backend == "alluxio":
        return AlluxioStorage(config)
    if config.backend == "posix":
        return PosixStorage(config)
    raise ValueError(f"unknown backend {config.backend!r}, expected one of {BACKENDS}")


def _quietly(action: Callable[[], object]) -> None:
    """Run a release step whose failure must not hide an error already being raised."""
    with suppress(Exception):  # best effort while another error propagates
        action()


class PosixStorage(Storage):
    """Storage path /a/b is the file ROOT/a/b of a mounted directory (FUSE, NFS, local).

    Nothing outside the root is read, written or deleted, whatever links are planted below
    it. A path is refused when it resolves (``os.path.realpath``) to a place outside the
    root's real path, or when its file itself is a symbolic link. Resolving rather than
    refusing every link keeps links that stay inside (the root itself may be one, and with
    the root ``/`` the system's own links are fine), and it catches a link at any depth. The
    file itself is never followed, also if it turns into a link after the check: files are
    opened with O_NOFOLLOW or created exclusively, sizes come from lstat, and delete_tree
    (``shutil.rmtree``) refuses a link and never follows one below. A directory swapped for
    a link between the check and the use is not caught.
    """

    def __init__(self, config: StorageConfig) -> None:
        if not config.root:
            raise ValueError("the posix backend needs a root directory (--root)")
        self.root = os.path.abspath(config.root)
        self.where = f"posix root {self.root}"

    def local_path(self, path: str) -> str:
        """Map a storage path under the root; paths escaping it (by ``..`` or a symbolic
        link) and paths whose file is a link are refused."""
        relative = posixpath.normpath("/" + path).lstrip("/")
        if relative.split("/")[0] == "..":
            raise StorageError(f"{self.where}: path {path!r} escapes the root")
        if not relative:
            return self.root
        local = os.path.join(self.root, relative)
        if os.path.islink(local):
            raise StorageError(f"{self.where}: {path}: {local} is a symbolic link; not followed")
        real, real_root = os.path.realpath(local), os.path.realpath(self.root)
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise StorageError(
                f"{self.where}: {path}: a symbolic link leads to {real}, outside the root; "
                "not followed"
            )
        return local

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StorageError(f"{self.where}: {what}: {describe_error(exc)}") from exc

    def connect(self) -> None:
        with self._calling("connect"):
            if not os.path.isdir(self.root):
                raise NotADirectoryError(f"not a directory: {self.root!r}")

    def mkdirs(self, path: str) -> None:
        with self._calling("mkdirs"):
            os.makedirs(self.local_path(path), exist_ok=True)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.local_path(path))

    def delete(self, path: str) -> None:
        with self._calling("delete"):
            os.remove(self.local_path(path))

    def delete_tree(self, path: str) -> bool:
        if not self.exists(path):
            return False
        with self._calling("delete"):
            shutil.rmtree(self.local_path(path))
        return True

    def size(self, path: str) -> Optional[int]:
        with self._calling("stat"):
            return os.lstat(self.local_path(path)).st_size

    def names(self, path: str) -> List[str]:
        with self._calling("list"):
            try:
                return os.listdir(self.local_path(path))
            except FileNotFoundError:
                return []

    def tag(self, path: str) -> Optional[str]:
        with self._calling("stat"):
            return local_tag_of(self.local_path(path))

    def tags(self, folder: str) -> Dict[str, str]:
        with self._calling("list"):
            try:
                with os.scandir(self.local_path(folder)) as entries:
                    return {e.name: local_tag(e.stat(follow_symlinks=False)) for e in entries}
            except FileNotFoundError:
                return {}

    def write_stream(
        self,
        path: str,
        chunks: Iterable[bytes],
        created: Callable[[], None] = lambda: None,
        meter: Meter = NO_METER,
    ) -> None:
        with self._calling("write"):
            began = meter.clock()
            # "x" is O_CREAT | O_EXCL, which fails on a link instead of following it
            with open(self.local_path(path), "xb") as out:
                meter.since("create", began)
                created()
                for chunk in chunks:
                    began = meter.clock()
                    out.write(chunk)
                    meter.moved("write", began, len(chunk))
                began = meter.clock()
                out.flush()
                os.fsync(out.fileno())
            meter.since("close", began)

    def read_stream(self, path: str, chunk_size: int, meter: Meter = NO_METER) -> Iterator[bytes]:
        with self._calling("read"):
            opened = meter.clock()
            descriptor = os.open(self.local_path(path), os.O_RDONLY | os.O_NOFOLLOW)
            meter.since("open", opened)
            with os.fdopen(descriptor, "rb") as stream:
                yield from _metered(lambda: stream.read(chunk_size), meter, opened)


def _metered(read: Callable[[], bytes], meter: Meter, opened: float) -> Iterator[bytes]:
    """The chunks ``read()`` returns until an empty one, each timed as a ``read`` and the
    first also as ``ttfb`` (from ``opened``, before the file was opened)."""
    began = meter.clock()
    chunk = read()
    if chunk:
        meter.moved("read", began, len(chunk))
        meter.since("ttfb", opened)
    while chunk:
        yield chunk
        began = meter.clock()
        chunk = read()
        if chunk:
            meter.moved("read", began, len(chunk))


def _explain_alluxio(exc: BaseException, timeout: float, handled: Optional[BaseException]) -> str:
    """The cause of an alluxio-python or requests exception in a few words: the proxy's
    own error, else the root cause of the chain (:func:`root_cause`)."""
    from alluxio import exceptions

    for link in exception_chain(exc, handled):
        if isinstance(link, exceptions.AlluxioError):
            cause = f"{type(link).__name__} ({link.status}): {link.message}"
            return one_line(cause, CAUSE_LIMIT)
        if type(link).__name__ == "JSONDecodeError":  # json's, or requests' of it
            return one_line(f"the proxy's answer is not JSON ({link})", CAUSE_LIMIT)
    return root_cause(exc, timeout, handled)


class AlluxioStorage(Storage):
    """Alluxio through its REST proxy; one HTTP session (one ``alluxio.Client``) per instance."""

    def __init__(self, config: StorageConfig) -> None:
        import alluxio

        self.config = config
        self.where = f"alluxio proxy {config.host}:{config.port}"
        self.client = alluxio.Client(config.host, config.port, timeout=config.timeout)
        _default_timeout(self.client.session, config.timeout)

    def create_options(self) -> Any:
        """CreateFile options; only fields the 2.x proxy knows (no ttl, no location policy)."""
        from alluxio import option, wire

        return option.CreateFile(write_type=wire.WriteType(self.config.write_type), recursive=True)

    def open_options(self) -> Any:
        from alluxio import option, wire

        return option.OpenFile(read_type=wire.ReadType(self.config.read_type))

    def mkdir_options(self) -> Any:
        from alluxio import option, wire

        return option.CreateDirectory(
            recursive=True, write_type=wire.WriteType(self.config.write_type)
        )

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        handled = sys.exc_info()[1]  # the caller's: e.g. a failed write, cleaning up after it
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            cause = _explain_alluxio(exc, self.config.timeout, handled)
            raise StorageError(f"{self.where}: {what}: {cause}") from exc

    def connect(self) -> None:
        with self._calling("exists /"):
            self.client.exists("/")

    def server_version(self) -> Optional[str]:
        """From the proxy's ``GET /api/v1/proxy/info/`` (Alluxio 2.x: the build the proxy
        runs, which is the cluster's); None when it does not answer with one."""
        url = f"http://{self.config.host}:{self.config.port}/api/v1/proxy/info/"
        try:
            response = self.client.session.get(url, timeout=min(self.config.timeout, 2.0))
            version = response.json().get("version") if response.ok else None
        except Exception:  # noqa: BLE001 - a version is a nicety; the phase's outcome stands
            return None
        return f"alluxio {version}" if isinstance(version, str) and version else None

    def mkdirs(self, path: str) -> None:
        from alluxio.exceptions import AlreadyExistsError

        # AlreadyExists: made by another client or an earlier run
        with self._calling(f"create-directory {path}"), suppress(AlreadyExistsError):
            self.client.create_directory(path, self.mkdir_options())

    def exists(self, path: str) -> bool:
        with self._calling("exists"):
            return bool(self.client.exists(path))

    def delete(self, path: str) -> None:
        with self._calling("delete"):
            self.client.delete(path)

    def delete_tree(self, path: str) -> bool:
        from alluxio import option

        if not self.exists(path):
            return False
        with self._calling(f"delete {path}"):
            self.client.delete(path, option.Delete(recursive=True))
        return True

    def names(self, path: str) -> List[str]:
        from alluxio.exceptions import NotFoundError

        with self._calling(f"list-status {path}"):
            try:
                return [status.name for status in self.client.list_status(path)]
            except NotFoundError:  # one call: a timed listing is one round trip
                return []

    def tag(self, path: str) -> Optional[str]:
        from alluxio.exceptions import NotFoundError

        with self._calling(f"get-status {path}"):
            try:
                return _alluxio_tag(self.client.get_status(path))
            except NotFoundError:
                return None

    def tags(self, folder: str) -> Dict[str, str]:
        from alluxio.exceptions import NotFoundError

        with self._calling(f"list-status {folder}"):
            try:
                listed = self.client.list_status(folder)
            except NotFoundError:
                return {}
            return {status.name: _alluxio_tag(status) for status in listed}

    def size(self, path: str) -> Optional[int]:
        with self._calling(f"get-status {path}"):
            try:
                return int(self.client.get_status(path).length)
            except (KeyError, TypeError, ValueError):  # status JSON this client cannot parse
                return None

    def _release(self, stream: Any, file_id: int, quiet: bool, meter: Meter) -> None:
        """Close the HTTP stream then the proxy's file; errors count only when not ``quiet``."""
        if stream is not None:
            _quietly(stream.close)
        if quiet:
            _quietly(lambda: self.client.close(file_id))
        else:
            with self._calling("close"):
                began = meter.clock()
                self.client.close(file_id)
                meter.since("close", began)

    def write_stream(
        self,
        path: str,
        chunks: Iterable[bytes],
        created: Callable[[], None] = lambda: None,
        meter: Meter = NO_METER,
    ) -> None:
        with self._calling("create-file"):
            began = meter.clock()
            file_id = self.client.create_file(path, self.create_options())
            meter.since("create", began)
        created()
        sent = [0]

        def counted() -> Iterator[bytes]:  # a generator: requests sends it chunked, one POST
            for chunk in chunks:
                sent[0] += len(chunk)
                began = meter.clock()
                yield chunk  # resumed once the connection has taken the chunk
                meter.moved("write", began, len(chunk))

        writer = None
        done = False
        try:
            with self._calling("write"):
                writer = self.client.write(file_id)
                acknowledged = writer.write(counted())
            if isinstance(acknowledged, int) and acknowledged != sent[0]:
                raise StorageError(
                    f"{self.where}: write: proxy stored {acknowledged} of {sent[0]} bytes"
                )
            done = True
        finally:
            self._release(writer, file_id, not done, meter)

    def read_stream(self, path: str, chunk_size: int, meter: Meter = NO_METER) -> Iterator[bytes]:
        with self._calling("open-file"):
            opened = meter.clock()
            file_id = self.client.open_file(path, self.open_options())
            meter.since("open", opened)
        reader = None
        done = False
        try:
            with self._calling("read"):
                reader = self.client.read(file_id)
                yield from _metered(lambda: reader.read(chunk_size), meter, opened)
            done = True
        finally:
            self._release(reader, file_id, not done, meter)

    def close(self) -> None:
        _quietly(self.client.session.close)


def _alluxio_tag(status: Any) -> str:
    """The tag (:data:`TAG`) of a file from the proxy's status of it."""
    return f"{int(status.file_id)}.{int(status.creation_time_ms)}"


def _default_timeout(session: Any, timeout: float) -> None:
    """Give every request of a requests session a timeout unless the call sets one.

    alluxio-python 0.1.4 passes its timeout on metadata calls but not on the stream
    read/write POSTs, which could otherwise hang forever on a stuck proxy.
    """
    request = session.request

    def request_with_timeout(method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
        return request(method, url, **kwargs)

    session.request = request_with_timeout
