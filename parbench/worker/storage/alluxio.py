"""The alluxio backend: Alluxio through its REST proxy, with alluxio-python (``alluxio==0.1.4``)."""

from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager, suppress
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from ..meter import NO_METER, Meter
from ..protocol import StorageConfig
from ..results import one_line
from .base import (
    CAUSE_LIMIT,
    Storage,
    StorageError,
    _metered,
    _quietly,
    exception_chain,
    root_cause,
)


def preload() -> None:
    """Import alluxio-python and requests (about 0.1 s of CPU per process that would)."""
    import alluxio.exceptions
    import alluxio.option
    import alluxio.wire  # noqa: F401


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

    def publish(self, staged: str, target: str) -> bool:
        from alluxio.exceptions import AlreadyExistsError

        try:  # one master operation, which fails where a file exists
            with self._calling(f"rename {staged} {target}"):
                self.client.rename(staged, target)
        except StorageError as exc:
            if isinstance(exc.__cause__, AlreadyExistsError):
                return False
            raise
        return True

    def rename(self, source: str, target: str) -> None:
        with self._calling(f"rename {source} {target}"):
            self.client.rename(source, target)

    def modified(self, path: str) -> float:
        with self._calling(f"get-status {path}"):
            return float(self.client.get_status(path).last_modification_time_ms) / 1000.0

    def remove_command(self, path: str) -> str:
        return f"alluxio fs rm {shlex.quote(path)}"

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
