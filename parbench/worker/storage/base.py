"""The storage interface every backend implements, and the errors they raise.

Every backend failure surfaces as :class:`StorageError`, one line naming the backend
(``alluxio proxy HOST:PORT`` or ``posix root DIR``), the operation and the cause; for the
proxy, the root cause in a few words (``connection refused``), not the chain of requests
and urllib3 exceptions around it, which stays in the StorageError's ``__cause__``.
"""

from __future__ import annotations

import abc
import os
import re
import socket
from contextlib import suppress
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from ..meter import NO_METER, Meter
from ..results import one_line

#: characters of a root cause (:func:`root_cause`)
CAUSE_LIMIT = 200


class StorageError(Exception):
    """A storage operation failed; the message is ready for people."""


#: names of the exceptions (by type name, as no client library is imported here) that say
#: a file is not there: the OS's, alluxio-python's; the s3 backend raises NotFoundError
MISSING = ("FileNotFoundError", "NotFoundError")


def is_missing(exc: BaseException) -> bool:
    """Whether a storage call failed because the file was not there."""
    return any(type(e).__name__ in MISSING for e in (exc, exc.__cause__))


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

    def tag_lookup(self) -> Callable[[str], Optional[str]]:
        """:meth:`tag` for many files, as cheap as the backend can: by default one call
        each; a backend whose single-file tag costs a listing lists each folder once."""
        return self.tag

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

    @abc.abstractmethod
    def publish(self, staged: str, target: str) -> bool:
        """Give the file ``staged`` the name ``target`` too, atomically and only if no file
        has it: False if one has. (A lock is published this way, never seen half written.)"""

    @abc.abstractmethod
    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target`` in one step; a StorageError that
        :func:`is_missing` knows when ``source`` is not there."""

    @abc.abstractmethod
    def modified(self, path: str) -> float:
        """When the file was last written, seconds since the epoch (storage's clock)."""

    @abc.abstractmethod
    def remove_command(self, path: str) -> str:
        """The shell command a person runs to delete ``path`` by hand."""

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


def _quietly(action: Callable[[], object]) -> None:
    """Run a release step whose failure must not hide an error already being raised."""
    with suppress(Exception):  # best effort while another error propagates
        action()


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
