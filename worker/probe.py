"""What the controller needs to know about a node before it pushes: run as
``python -c "<this file's source>" WORKDIR FILE...``, so it works before anything is
installed there. Prints one JSON object. Stdlib only, Python 3.9+.

First it checks that parbench may use WORKDIR: a new or empty directory, one it marked
(``.parbench-workdir``), or one holding its own runtime (made before the marker existed).
Otherwise it says why on stderr and exits with ``REFUSED``, having touched nothing.
No f-strings: an old Python must still get as far as reporting its version.
"""

import hashlib
import json
import os
import platform
import socket
import sys

MARKER = ".parbench-workdir"
# runs as `python -c` source, so it cannot import: keep in step with bootstrap.STAMP and
# the venv folder push gives bootstrap
RUNTIME = os.path.join("venv", ".parbench-runtime")
REFUSED = 3


def _sha256(path):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _read(path):
    try:
        with open(path) as stream:
            return stream.read().strip()
    except OSError:
        return None


def refusal(workdir):
    """Why parbench must not use ``workdir``, or None if it may."""
    if not os.path.lexists(workdir):
        return None
    if not os.path.isdir(workdir):
        return "workdir " + workdir + " is not a directory; choose an empty or new directory"
    if os.path.isfile(os.path.join(workdir, MARKER)):
        return None
    if os.path.isfile(os.path.join(workdir, RUNTIME)) or not os.listdir(workdir):
        return None
    why = " is not empty and was not made by parbench (no " + MARKER + ")"
    return "workdir " + workdir + why + "; choose an empty or new directory"


def probe(workdir, files):
    package = os.path.join(workdir, "worker")
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": list(sys.version_info[:3]),
        "hashes": {name: _sha256(os.path.join(workdir, name)) for name in files},
        "worker_files": sorted(os.listdir(package)) if os.path.isdir(package) else [],
        "runtime": _read(os.path.join(workdir, RUNTIME)),
    }


if __name__ == "__main__":
    reason = refusal(sys.argv[1])
    if reason is not None:
        sys.stderr.write(reason + "\n")
        sys.exit(REFUSED)
    print(json.dumps(probe(sys.argv[1], sys.argv[2:])))
