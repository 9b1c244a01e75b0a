"""The node's folder layout: the one place it is written. Part of the contract (with
protocol/, results.py): the worker, the controller (the paths it puts in a
request, where push puts files) and the probe (worker/probe.py, which runs before this
package is on the node and keeps checked copies: ``PROBE_COPIES``) all use it.

Below a node's workdir::

    .parbench-workdir          MARKER: the workdir is parbench's
    .parbench-lock             LOCK_NAME: the lock of the run using it (worker/lock.py)
    venv/                      the worker's runtime (bin/python; .parbench-runtime: its stamp)
    worker/                    the worker package
    wheels/                    the runtime's wheels, as pushed
    data/<name>                reference files (generated-<size>.bin: generated ones)
    runs/<run>/<phase>.jsonl   a phase's records; <phase>.request.json: its request

Paths are POSIX (nodes are). Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import posixpath

MARKER = ".parbench-workdir"
LOCK_NAME = ".parbench-lock"
VENV = "venv"
#: the venv's stamp, in VENV (worker/bootstrap.py writes it)
RUNTIME_STAMP = ".parbench-runtime"
WORKER = "worker"
WHEELS = "wheels"
DATA = "data"
RUNS = "runs"
#: the folders the probe makes when it claims a workdir
FOLDERS = (WORKER, DATA, WHEELS, RUNS)
#: the suffix of a file being written, renamed to its name once whole
PARTIAL = ".parbench-new"
#: parbench's own files in a workdir, a pattern (MARKER, LOCK_NAME)
OWN_FILES = ".parbench*"

#: the probe's copies (it cannot import): its name -> the value here
PROBE_COPIES = {
    "MARKER": MARKER,
    "LOCK_NAME": LOCK_NAME,
    "RUNTIME": posixpath.join(VENV, RUNTIME_STAMP),
    "FOLDERS": FOLDERS,
    "PYTHON": posixpath.join(VENV, "bin", "python"),
}


def reserved() -> tuple[str, ...]:
    """What a workdir holds for parbench, as patterns (fnmatch): its folders, the runtime
    and its own files. No read copy (``local_dst``) goes into any of them."""
    return (*FOLDERS, VENV, OWN_FILES)


def venv_python(workdir: str) -> str:
    """The runtime's python."""
    return posixpath.join(workdir, VENV, "bin", "python")


def data(workdir: str, name: str) -> str:
    """A reference file."""
    return posixpath.join(workdir, DATA, name)


def generated_file(size: int) -> str:
    """The file (in DATA) a node keeps the generated data of ``size`` bytes in."""
    return f"generated-{size}.bin"


def run_dir(workdir: str, run_id: str) -> str:
    return posixpath.join(workdir, RUNS, run_id)


def records(workdir: str, run_id: str, phase: str) -> str:
    """The records file of a phase of a run."""
    return posixpath.join(run_dir(workdir, run_id), f"{phase}.jsonl")


def request_file(workdir: str, run_id: str, phase: str) -> str:
    """Where the request of a phase of a run is kept."""
    return posixpath.join(run_dir(workdir, run_id), f"{phase}.request.json")
