"""The posix backend: storage paths are files below a mounted directory (FUSE, NFS, local)."""

from __future__ import annotations

import errno
import os
import posixpath
import shlex
import shutil
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from ..meter import NO_METER, Meter
from ..protocol import StorageConfig
from .base import Storage, StorageError, _metered, describe_error, local_tag, local_tag_of

#: link(2)'s answers on a file system that has no hard links (Alluxio FUSE: EPERM)
NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK)
RENAME_NOREPLACE = 1  # linux/fs.h
AT_FDCWD = -100


def rename_noreplace(source: str, target: str) -> bool:
    """Move ``source`` to ``target`` in one step only where no file is (Linux renameat2 with
    RENAME_NOREPLACE): False if ``target`` exists. OSError when the system or the file
    system cannot (no renameat2 in the C library: ENOSYS; a file system without the flag:
    EINVAL)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "the C library has no renameat2 (Linux, glibc 2.28+)")
    text, number = ctypes.c_char_p, ctypes.c_int
    renameat2.argtypes = [number, text, number, text, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE):
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            return False
        raise OSError(code, os.strerror(code), source, None, target)
    return True


def preload() -> None:
    """Nothing to import ahead: the standard library is loaded already."""


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

    def publish(self, staged: str, target: str) -> bool:
        """A hard link, made only where no file is; on a file system without hard links
        (Alluxio FUSE answers EPERM) a rename(2) that never replaces (RENAME_NOREPLACE)."""
        source, local = self.local_path(staged), self.local_path(target)
        try:  # a hard link is made only where no file is
            with self._calling(f"link {staged} {target}"):
                os.link(source, local, follow_symlinks=False)
        except StorageError as exc:
            if isinstance(exc.__cause__, FileExistsError):
                return False
            if getattr(exc.__cause__, "errno", None) not in NO_HARD_LINKS:
                raise
            with self._calling(f"rename {staged} {target} (no hard links here)"):
                return rename_noreplace(source, local)
        return True

    def rename(self, source: str, target: str) -> None:
        with self._calling(f"rename {source} {target}"):
            os.rename(self.local_path(source), self.local_path(target))

    def modified(self, path: str) -> float:
        with self._calling(f"stat {path}"):
            return os.lstat(self.local_path(path)).st_mtime

    def remove_command(self, path: str) -> str:
        return f"rm -f -- {shlex.quote(os.path.join(self.root, path.lstrip('/')))}"

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
