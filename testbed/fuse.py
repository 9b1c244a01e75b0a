"""Alluxio FUSE: Alluxio's ``/`` mounted at ``.testbed/fuse`` by a fourth JVM.

``alluxio.fuse.AlluxioFuse`` (jars alluxio-integration-fuse and -jnifuse-*) through libfuse 3
(Debian ``fuse3``: libfuse3.so.3 for Alluxio's libjnifuse3.so, fusermount3 to unmount). Its
settings are ``PROPERTIES`` in the testbed's alluxio-site.properties. Alluxio 2.9's command
line option ``-u`` is ``--root-ufs`` (an under storage mounted directly, not through
Alluxio): the Alluxio path is given by property only. The JVM does not exit on SIGTERM while
mounted: it is unmounted first, then stopped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from .layout import Layout
from .procs import PidFile, TestbedError, spawn, wait_until

NAME = "alluxio-fuse"
MAIN_CLASS = "alluxio.fuse.AlluxioFuse"
HEAP = ("-Xmx512m", "-XX:MaxDirectMemorySize=512m")
FS_TYPE = "fuse.alluxio-fuse"
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2


def properties(layout: Layout) -> dict:
    """The FUSE keys of alluxio-site.properties (Alluxio 2.9, integration/fuse)."""
    return {
        "alluxio.fuse.mount.point": layout.fuse,
        "alluxio.fuse.mount.alluxio.path": "/",
        "alluxio.fuse.jnifuse.enabled": "true",
        "alluxio.fuse.jnifuse.libfuse.version": 3,
        # no kernel cache of attributes and names: a file another node (or the REST proxy)
        # wrote is seen at once, and a file's times are Alluxio's, not the kernel's guess
        "alluxio.fuse.mount.options": "attr_timeout=0,entry_timeout=0",
        "alluxio.fuse.web.enabled": "false",
    }


def _probe_mount() -> Optional[str]:
    """Mount a FUSE file system nobody serves on a temporary directory and detach it at
    once: the kernel's own answer to "may this process mount FUSE" (root only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        with tempfile.TemporaryDirectory(prefix="parbench-fuse-probe-") as target:
            data = f"fd={fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()}"
            if libc.mount(
                b"parbench-probe",
                target.encode(),
                b"fuse.parbench-probe",
                MS_NOSUID | MS_NODEV,
                data.encode(),
            ):
                code = ctypes.get_errno()
                return f"mount(2) of a FUSE file system failed: {os.strerror(code)}"
            libc.umount2(target.encode(), MNT_DETACH)
    finally:
        os.close(fd)
    return None


def unavailable() -> Optional[str]:
    """Why FUSE cannot work on this machine, or None when it can (checked, not assumed:
    /dev/fuse, libfuse 3, fusermount3, and as root a real mount(2))."""
    dev = Path("/dev/fuse")
    try:
        if not stat.S_ISCHR(dev.stat().st_mode):
            return "/dev/fuse is not a character device"
    except OSError:
        return "no /dev/fuse (the fuse kernel module is not loaded, or a container without it)"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"/dev/fuse is not readable and writable by uid {os.getuid()}"
    if not ctypes.util.find_library("fuse3"):
        return "no libfuse3.so.3 (install Debian's fuse3: `make setup`)"
    fusermount = shutil.which("fusermount3")
    if not fusermount:
        return "no fusermount3 (install Debian's fuse3: `make setup`)"
    if not shutil.which("java"):
        return "no java to run Alluxio FUSE (`make setup`)"
    if os.geteuid() != 0:
        if not os.stat(fusermount).st_mode & stat.S_ISUID:
            return f"{fusermount} is not setuid root, so uid {os.getuid()} cannot mount"
        return None
    try:
        return _probe_mount()
    except OSError as exc:
        return f"cannot open /dev/fuse: {exc.strerror}"


def _unescape(field: str) -> str:
    """A /proc/mounts field: space, tab, newline and backslash are octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def mounted(mount_point: Path) -> Optional[str]:
    """The file system type mounted at ``mount_point`` (``fuse.alluxio-fuse``), or None."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and _unescape(fields[1]) == str(mount_point):
            found = fields[2]  # the last one mounted there is the one seen
    return found


def unmount(mount_point: Path) -> bool:
    """Unmount ``mount_point`` if something is mounted there (also a dead FUSE server's
    mount, "Transport endpoint is not connected"); True if one was."""
    if mounted(mount_point) is None:
        return False
    attempts = [["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]]
    errors = []
    for argv in attempts:
        if not shutil.which(argv[0]):
            continue
        proc = subprocess.run([*argv, str(mount_point)], capture_output=True, text=True)
        if proc.returncode == 0 and mounted(mount_point) is None:
            return True
        errors.append(f"{argv[0]}: {(proc.stderr or proc.stdout).strip() or proc.returncode}")
    raise TestbedError(
        f"cannot unmount {mount_point} ({'; '.join(errors) or 'no fusermount3 or umount'}): "
        f"unmount it by hand (fusermount3 -u {mount_point})"
    )


def _answers(mount_point: Path) -> bool:
    return mounted(mount_point) == FS_TYPE and isinstance(os.listdir(mount_point), list)


def start(layout: Layout, argv: list[str], timeout: float = 60.0) -> None:
    """Start the FUSE JVM (``argv``: java and its classpath, without the main class) and
    return once the mount answers; a TestbedError with the log's tail otherwise."""
    why = unavailable()
    if why:
        raise TestbedError(f"Alluxio FUSE cannot be mounted here: {why}")
    unmount(layout.fuse)
    layout.fuse.mkdir(parents=True, exist_ok=True)
    if any(layout.fuse.iterdir()):
        raise TestbedError(f"FUSE mount point {layout.fuse} is not empty: empty or remove it")
    log = layout.logs / f"{NAME}.log"
    spawn(NAME, [*argv, MAIN_CLASS], layout.run, log)
    pid = PidFile(layout.run / f"{NAME}.pid")
    try:
        wait_until(
            lambda: _answers(layout.fuse), timeout, f"Alluxio FUSE at {layout.fuse}", log, pid
        )
    except TestbedError:
        stop(layout)
        raise


def stop(layout: Layout) -> bool:
    """Unmount, then stop the FUSE JVM; True if either was there."""
    was_mounted = unmount(layout.fuse)
    stopped = PidFile(layout.run / f"{NAME}.pid").stop(timeout=5)
    return was_mounted or stopped


def describe(layout: Layout) -> str:
    kind = mounted(layout.fuse)
    return f"{layout.fuse} ({kind})" if kind else f"{layout.fuse} NOT MOUNTED"


__all__ = ["unavailable", "mounted", "unmount", "start", "stop", "describe"]
