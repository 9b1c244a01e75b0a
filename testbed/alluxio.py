"""Alluxio 2.9.6 master, worker and REST proxy as three JVMs on loopback, from thin jars.

Settings and flags were checked on Java 17 (see docs/testing.md, "The testbed"). The NOOP journal
needs no format step and keeps nothing across restarts; the proxy must have the S3 v2
handler off, or ``/api/v1/paths`` answers an empty 200.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from . import fuse
from .layout import REPO, Layout
from .procs import PidFile, TestbedError, require_free, spawn, wait_until, which

VERSION = "2.9.6"
POM = REPO / "testbed" / "pom.xml"
MAVEN_SETTINGS = REPO / "testbed" / "settings.xml"
#: a second SLF4J binding (log4j 1 via reload4j) comes in transitively: keep log4j2's
EXCLUDED_JARS = ("slf4j-reload4j-",)

#: Java 17 needs these openings for Alluxio's (and netty's) reflective access
JAVA_MODULE_FLAGS = [
    *(
        f"--add-opens=java.base/{pkg}=ALL-UNNAMED"
        for pkg in (
            "java.lang",
            "java.lang.reflect",
            "java.io",
            "java.net",
            "java.nio",
            "sun.nio.ch",
            "java.util",
            "java.util.concurrent",
            "jdk.internal.misc",
        )
    ),
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


@dataclass(frozen=True)
class Ports:
    master_rpc: int = 19998
    master_web: int = 19999
    worker_rpc: int = 29999
    worker_web: int = 30000
    proxy: int = 39999

    @classmethod
    def from_env(cls) -> Ports:
        """The default ports moved up by ``$PARBENCH_TESTBED_PORT_OFFSET`` (0 when unset), so
        that two checkouts can each run a testbed on one machine."""
        raw = os.environ.get("PARBENCH_TESTBED_PORT_OFFSET", "0")
        try:
            offset = int(raw)
        except ValueError:
            raise TestbedError(
                f"PARBENCH_TESTBED_PORT_OFFSET={raw!r}: expected an integer"
            ) from None
        return cls(*(port + offset for port in asdict(cls()).values()))


@dataclass(frozen=True)
class Daemon:
    name: str
    main_class: str
    heap: tuple[str, ...]


#: heaps are limits, taken only as used. The worker's direct memory holds a netty buffer
#: per block being read: 256 MiB ran out at 64 nodes x 2 clients reading at once (the
#: worker exits on that: "Fatal error: Error while reading", OutOfDirectMemoryError), so
#: the testbed's 32-64 node runs get 1 GiB, and the proxy a heap to match its streams
DAEMONS = (
    Daemon("alluxio-master", "alluxio.master.AlluxioMaster", ("-Xmx384m",)),
    Daemon(
        "alluxio-worker",
        "alluxio.worker.AlluxioWorker",
        ("-Xmx512m", "-XX:MaxDirectMemorySize=1g"),
    ),
    Daemon("alluxio-proxy", "alluxio.proxy.AlluxioProxy", ("-Xmx512m",)),
)


def ensure_jars(layout: Layout) -> list[Path]:
    """The classpath jars, fetched by Maven into ``.testbed/jars`` (cached in ``~/.m2``)."""
    marker = layout.jars / ".complete"
    if not marker.exists():
        mvn = which("mvn", "Maven (apt-get install maven)")
        which("java", "a Java runtime, 11 or 17 (apt-get install openjdk-17-jre-headless)")
        shutil.rmtree(layout.jars, ignore_errors=True)
        cmd = [
            mvn,
            "-B",
            "-q",
            "-s",
            str(MAVEN_SETTINGS),
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={layout.jars}",
        ]
        if os.environ.get("PARBENCH_MAVEN_REPO"):  # another local repository (cold-cache bench)
            cmd.append(f"-Dmaven.repo.local={os.environ['PARBENCH_MAVEN_REPO']}")
        print(f"testbed: fetching Alluxio {VERSION} jars with Maven ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TestbedError(
                f"Maven could not fetch the Alluxio jars ({' '.join(cmd)}):\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )
        marker.write_text(VERSION)
    jars = sorted(p for p in layout.jars.glob("*.jar") if not p.name.startswith(EXCLUDED_JARS))
    if not any(p.name.startswith("alluxio-core-server-proxy") for p in jars):
        raise TestbedError(f"{layout.jars} lacks the Alluxio proxy jar: delete it and retry")
    return jars


def site_properties(layout: Layout, ports: Ports) -> str:
    data = layout.alluxio_data
    props = {
        "alluxio.master.hostname": "localhost",
        "alluxio.worker.hostname": "localhost",
        "alluxio.user.hostname": "localhost",
        "alluxio.master.bind.host": "127.0.0.1",
        "alluxio.master.web.bind.host": "127.0.0.1",
        "alluxio.worker.bind.host": "127.0.0.1",
        "alluxio.worker.web.bind.host": "127.0.0.1",
        "alluxio.proxy.web.bind.host": "127.0.0.1",
        "alluxio.master.rpc.port": ports.master_rpc,
        "alluxio.master.web.port": ports.master_web,
        "alluxio.worker.rpc.port": ports.worker_rpc,
        "alluxio.worker.web.port": ports.worker_web,
        "alluxio.proxy.web.port": ports.proxy,
        "alluxio.master.journal.type": "NOOP",
        "alluxio.master.metastore": "HEAP",
        "alluxio.master.mount.table.root.ufs": data / "ufs",
        "alluxio.worker.tieredstore.levels": 1,
        "alluxio.worker.tieredstore.level0.alias": "MEM",
        "alluxio.worker.tieredstore.level0.dirs.path": data / "cache",
        # a disk folder, not RAM: room for a block (64 MiB) being written by each of 32+
        # concurrent clients, which the worker reserves up front
        "alluxio.worker.tieredstore.level0.dirs.quota": "4GB",
        "alluxio.worker.ramdisk.size": "4GB",
        "alluxio.user.file.writetype.default": "CACHE_THROUGH",
        "alluxio.proxy.s3.v2.version.enabled": "false",
        "alluxio.web.ui.enabled": "false",
        "alluxio.master.update.check.enabled": "false",
        **fuse.properties(layout),  # read by the FUSE JVM only (`up --fuse`)
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = {target}
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = %d{{ISO8601}} %-5p [%t] %c{{1}}: %m%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
"""


def java_argv(
    layout: Layout, jars: list[Path], main_class: str, heap: tuple[str, ...], log_config: str
) -> list[str]:
    home = layout.alluxio_home
    return [
        which("java", "a Java runtime, 11 or 17 (apt-get install openjdk-17-jre-headless)"),
        *heap,
        "-XX:+UseSerialGC",
        *JAVA_MODULE_FLAGS,
        "-Djava.net.preferIPv4Stack=true",
        f"-Dalluxio.home={home}",
        f"-Dalluxio.conf.dir={home / 'conf'}",
        f"-Dalluxio.logs.dir={layout.logs}",
        f"-Dlog4j2.configurationFile={home / 'conf' / log_config}",
        "-cp",
        ":".join(str(j) for j in jars),
        main_class,
    ]


def write_home(layout: Layout, ports: Ports, jars: list[Path]) -> None:
    """conf/ for the daemons and ``bin/alluxio``, a wrapper that runs the real FS shell."""
    conf = layout.alluxio_home / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "alluxio-site.properties").write_text(site_properties(layout, ports))
    (conf / "log4j2.properties").write_text(LOG4J2.format(target="SYSTEM_OUT", level="info"))
    (conf / "log4j2-shell.properties").write_text(LOG4J2.format(target="SYSTEM_ERR", level="warn"))
    # the JVM of both commands; the class comes after it (`fs`: the shell; `runClass`: the
    # one named, as in a real install's bin/alluxio)
    jvm = java_argv(layout, jars, "", ("-Xmx256m",), "log4j2-shell.properties")[:-1]
    quoted = " ".join(shlex.quote(arg) for arg in jvm)
    wrapper = layout.alluxio_home / "bin" / "alluxio"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        "# parbench testbed: `alluxio fs <command> ...` runs Alluxio's own FileSystemShell;\n"
        "# `alluxio runClass <class> ...` runs a class of the classpath (StressClientIOBench).\n"
        'case "$1" in\n'
        "  fs) shift; main=alluxio.cli.fs.FileSystemShell ;;\n"
        '  runClass) if [ -z "$2" ]; then echo "usage: alluxio runClass CLASS [ARGS]" >&2;'
        " exit 2; fi; main=$2; shift 2 ;;\n"
        "  *) echo \"testbed alluxio wrapper: only 'fs' and 'runClass' are supported\" >&2;"
        " exit 2 ;;\n"
        "esac\n"
        f'exec {quoted} "$main" "$@"\n'
    )
    wrapper.chmod(0o755)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def _post_json(url: str, body: dict):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    if not raw:
        raise TestbedError("empty answer: is alluxio.proxy.s3.v2.version.enabled still on?")
    return json.loads(raw)


def start(layout: Layout, ports: Ports, timeout: float = 120.0) -> None:
    """Start the three daemons and return once a file round-trips through the proxy."""
    for field, port in asdict(ports).items():
        require_free(port, f"Alluxio {field.replace('_', ' ')}")
    jars = ensure_jars(layout)
    shutil.rmtree(layout.alluxio_data, ignore_errors=True)
    (layout.alluxio_data / "ufs").mkdir(parents=True)
    (layout.alluxio_data / "cache").mkdir(parents=True)
    write_home(layout, ports, jars)
    for daemon in DAEMONS:
        spawn(
            daemon.name,
            java_argv(layout, jars, daemon.main_class, daemon.heap, "log4j2.properties"),
            layout.run,
            layout.logs / f"{daemon.name}.log",
        )
    master, worker, proxy = (layout.logs / f"{d.name}.log" for d in DAEMONS)
    pid = {d.name: PidFile(layout.run / f"{d.name}.pid") for d in DAEMONS}
    base = "http://127.0.0.1"
    wait_until(
        lambda: _get_json(f"{base}:{ports.master_web}/api/v1/master/info"),
        timeout,
        "Alluxio master",
        master,
        pid["alluxio-master"],
    )
    wait_until(
        lambda: _get_json(f"{base}:{ports.master_web}/api/v1/master/info")["workers"],
        timeout,
        "Alluxio worker (registered with the master)",
        worker,
        pid["alluxio-worker"],
    )
    wait_until(
        lambda: isinstance(
            _post_json(f"{base}:{ports.proxy}/api/v1/paths///list-status", {}), list
        ),
        timeout,
        "Alluxio REST proxy",
        proxy,
        pid["alluxio-proxy"],
    )
    smoke_test(ports.proxy)


def start_fuse(layout: Layout, timeout: float = 60.0) -> None:
    """Mount Alluxio's ``/`` at ``layout.fuse`` (a fourth JVM), the daemons being up."""
    jars = ensure_jars(layout)
    if not any(p.name.startswith("alluxio-integration-fuse-") for p in jars):
        raise TestbedError(f"{layout.jars} lacks the Alluxio FUSE jar: delete it and retry")
    argv = java_argv(layout, jars, fuse.MAIN_CLASS, fuse.HEAP, "log4j2.properties")
    # its settings also as system properties (which Alluxio reads before the site file):
    # a testbed brought up before FUSE settings existed mounts the same way
    given = [f"-D{key}={value}" for key, value in fuse.properties(layout).items()]
    fuse.start(layout, [argv[0], *given, *argv[1:-1]], timeout)


def smoke_test(proxy_port: int) -> None:
    """Write a file through ``alluxio.Client`` and read it back identical."""
    import alluxio
    from alluxio import option, wire

    client = alluxio.Client("127.0.0.1", proxy_port, timeout=30)
    path = f"/.testbed-smoke-{os.getpid()}-{time.time_ns()}"
    payload = os.urandom(256 * 1024)
    opt = option.CreateFile(write_type=wire.WRITE_TYPE_CACHE_THROUGH, recursive=True)
    with client.open(path, "w", opt) as writer:
        writer.write(payload)
    with client.open(path, "r") as reader:
        echoed = reader.read()
    client.delete(path)
    if hashlib.sha256(echoed).digest() != hashlib.sha256(payload).digest():
        raise TestbedError(
            f"Alluxio proxy on port {proxy_port}: a {len(payload)}-byte file "
            f"read back as {len(echoed)} different bytes"
        )
