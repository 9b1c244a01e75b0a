"""Provision the worker's runtime on a node without network access or pip:
``python -m worker.bootstrap --wheels DIR --venv DIR --stamp TEXT``.

Creates a venv (without pip, so Debian's python3 without python3-venv's ensurepip works)
and unpacks the pure-Python wheels the controller pushed (alluxio and its dependencies)
into its site-packages. A wheel's files are laid out to be installed by unpacking; the
controller downloads only ``py3-none-any`` wheels, so no build step is ever needed.
Stdlib only, Python 3.9+.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import zipfile


def site_packages(venv):
    python = os.path.join(venv, "bin", "python")
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def install(wheels, venv, stamp):
    found = sorted(glob.glob(os.path.join(wheels, "*.whl")))
    if not found:
        raise SystemExit(f"bootstrap: no wheels in {wheels}")
    impure = [os.path.basename(w) for w in found if not w.endswith("-none-any.whl")]
    if impure:
        raise SystemExit("bootstrap: not pure-Python wheels: " + ", ".join(impure))
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    target = site_packages(venv)
    for wheel in found:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    check = "import alluxio, requests; print(alluxio.__name__)"
    subprocess.run(
        [os.path.join(venv, "bin", "python"), "-c", check], check=True, stdout=subprocess.DEVNULL
    )
    with open(os.path.join(venv, ".parbench-runtime"), "w") as stream:
        stream.write(stamp + "\n")
    print(f"bootstrap: {len(found)} wheels installed into {target}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m worker.bootstrap")
    parser.add_argument("--wheels", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--stamp", required=True)
    args = parser.parse_args(argv)
    install(args.wheels, args.venv, args.stamp)


if __name__ == "__main__":
    main()
