"""The bare-client reference the worker is measured against (issue 9): what a person
would write with ``alluxio==0.1.4`` and nothing else.

``python -m bench.bare write|read --host H --port P --clients N --src S --dst D``: N
processes, one ``alluxio.Client`` each, released together by a barrier; each writes the
file ``S`` to ``D/<client>`` (``create_file``, ``write`` of a generator of 1 MiB chunks,
``close``; no hashing, no timing per chunk), or reads ``S`` with ``{cid}`` replaced by its
number (``open_file``, ``read`` in 1 MiB chunks, ``close``) and saves the copy to
``D/<client>``. Prints one JSON line per client (``start``, ``end``, ``bytes``), the same
figures the worker's records give, so that both aggregates are computed alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

CHUNK = 1 << 20


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _write(args: argparse.Namespace, client: int) -> int:
    import alluxio
    from alluxio import option, wire

    fs = alluxio.Client(args.host, args.port)
    target = f"{args.dst}/{client}"
    if fs.exists(target):
        fs.delete(target)
    options = option.CreateFile(write_type=wire.WriteType(args.write_type), recursive=True)
    args.barrier.wait()
    args.times[client * 2] = time.time()
    file_id = fs.create_file(target, options)
    writer = fs.write(file_id)
    moved = writer.write(_chunks(args.src))
    writer.close()
    fs.close(file_id)
    args.times[client * 2 + 1] = time.time()
    return int(moved)


def _read(args: argparse.Namespace, client: int) -> int:
    import alluxio
    from alluxio import option, wire

    fs = alluxio.Client(args.host, args.port)
    source = args.src.replace("{cid}", str(client))
    options = option.OpenFile(read_type=wire.ReadType(args.read_type))
    os.makedirs(args.dst, exist_ok=True)
    args.barrier.wait()
    args.times[client * 2] = time.time()
    moved = 0
    file_id = fs.open_file(source, options)
    reader = fs.read(file_id)
    with open(f"{args.dst}/{client}", "wb") as copy:
        while chunk := reader.read(CHUNK):
            copy.write(chunk)
            moved += len(chunk)
    reader.close()
    fs.close(file_id)
    args.times[client * 2 + 1] = time.time()
    return moved


def _client(args: argparse.Namespace, client: int, moved: Any) -> None:
    moved[client] = (_write if args.phase == "write" else _read)(args, client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare")
    parser.add_argument("phase", choices=("write", "read"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=39999)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--write-type", default="MUST_CACHE")
    parser.add_argument("--read-type", default="CACHE")
    args = parser.parse_args(argv)
    args.barrier = multiprocessing.Barrier(args.clients)
    args.times = multiprocessing.RawArray("d", 2 * args.clients)
    moved = multiprocessing.RawArray("q", args.clients)
    clients = [
        multiprocessing.Process(target=_client, args=(args, c, moved)) for c in range(args.clients)
    ]
    for process in clients:
        process.start()
    for process in clients:
        process.join()
    if any(p.exitcode for p in clients):
        print(f"bench.bare: a client failed: {[p.exitcode for p in clients]}", file=sys.stderr)
        return 1
    for c in range(args.clients):
        record = {"client": c, "start": args.times[2 * c], "end": args.times[2 * c + 1]}
        print(json.dumps({**record, "bytes": moved[c], "status": "ok"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
