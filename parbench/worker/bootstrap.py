"""Provision the worker's runtime on a node without network access or pip:
``python -m worker.bootstrap --wheels DIR --venv DIR --stamp TEXT WHEEL...``.

Creates a venv (without pip, so Debian's python3 without python3-venv's ensurepip works)
and unpacks the pure-Python wheels the controller pushed (alluxio and its dependencies)
into its site-packages. A wheel's files are laid out to be installed by unpacking; the
controller downloads only ``py3-none-any`` wheels, so no build step is ever needed.

The WHEELs named are the controller's whole set: any other ``*.whl`` in the wheels folder
is left over from an older runtime and removed. An existing venv is replaced only if it
carries parbench's stamp file, which is written as soon as the folder is made.
Stdlib only, Python 3.9+.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import zipfile

from .layout import RUNTIME_STAMP

STAMP = RUNTIME_STAMP  # in the venv (worker/layout.py)
UNFINISHED = "unfinished"  # the stamp until the install succeeds: never a real stamp


def site_packages(venv):
    python = os.path.join(venv, "bin", "python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def remove_venv(venv):
    """Remove ``venv`` if parbench made it; refuse to touch anything else there."""
    if not os.path.lexists(venv):
        return
    if not os.path.isfile(os.path.join(venv, STAMP)):
        raise SystemExit(
            f"bootstrap: {os.path.abspath(venv)} exists and was not made by parbench "
            f"(no {STAMP}); move it away"
        )
    shutil.rmtree(venv)


def prune(wheels, names):
    """Remove the ``*.whl`` files in ``wheels`` that are not among ``names``."""
    for path in glob.glob(os.path.join(wheels, "*.whl")):
        if os.path.basename(path) not in names and not os.path.isdir(path):
            os.remove(path)


def write_stamp(venv, text):
    with open(os.path.join(venv, STAMP), "w") as stream:
        stream.write(text + "\n")


def install(wheels, venv, stamp, names):
    if not names:
        raise SystemExit("bootstrap: no wheels named")
    impure = [n for n in names if os.path.basename(n) != n or not n.endswith("-none-any.whl")]
    if impure:
        raise SystemExit(
            "bootstrap: expected bare file names of pure-Python wheels: " + ", ".join(impure)
        )
    missing = [n for n in names if not os.path.isfile(os.path.join(wheels, n))]
    if missing:
        raise SystemExit(f"bootstrap: not in {wheels}: " + ", ".join(missing))
    remove_venv(venv)
    prune(wheels, names)
    os.makedirs(venv)
    write_stamp(venv, UNFINISHED)  # ours from here on, even if the install fails
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    target = site_packages(venv)
    for name in sorted(names):
        with zipfile.ZipFile(os.path.join(wheels, name)) as archive:
            archive.extractall(target)
    check = "import alluxio, requests; print(alluxio.__name__)"
    subprocess.run(
        [os.path.join(venv, "bin", "python"), "-c", check], check=True, stdout=subprocess.DEVNULL
    )
    write_stamp(venv, stamp)
    print(f"bootstrap: {len(names)} wheels installed into {target}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m worker.bootstrap")
    parser.add_argument("--wheels", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--stamp", required=True)
    parser.add_argument("names", nargs="+", metavar="WHEEL", help="file names in --wheels")
    args = parser.parse_args(argv)
    install(args.wheels, args.venv, args.stamp, args.names)


if __name__ == "__main__":
    main()
