"""What the controller needs to know about a node before it pushes: run as
``python -c "<this file's source>" WORKDIR FILE...``, so it works before anything is
installed there. Prints one JSON object. Stdlib only, Python 3.9+.
"""

import hashlib
import json
import os
import platform
import socket
import sys


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


def probe(workdir, files):
    package = os.path.join(workdir, "worker")
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": list(sys.version_info[:3]),
        "hashes": {name: _sha256(os.path.join(workdir, name)) for name in files},
        "worker_files": sorted(os.listdir(package)) if os.path.isdir(package) else [],
        "runtime": _read(os.path.join(workdir, "venv", ".parbench-runtime")),
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], sys.argv[2:])))
