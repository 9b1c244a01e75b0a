#!/usr/bin/env bash
# Make the reference file(s) in data/, deterministically and without network access.
#   ./get_data.sh              -> data/5mb.txt (5 MiB, the name the inventories use)
#   ./get_data.sh 64MiB 1G     -> data/64MiB.txt, data/1G.txt
# Sizes in parbench's one grammar (parbench/worker/protocol/units.py, which reads them here):
# 4K, 64KiB, 1G: powers of 1024; 4KB, 2MB: powers of 1000; 64mb is refused (ambiguous).
# Each line is numbered, so any changed, lost or repeated chunk changes the checksum.
# Prints "sha256  path" for each file.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p data

default=0
(($#)) || { set -- 5MiB; default=1; }
for size in "$@"; do
  # the one grammar of sizes, from the worker's own parser (stdlib only)
  bytes=$("${PYTHON:-python3}" -c 'import sys; from parbench.worker.protocol.units import print_bytes
sys.exit(print_bytes(sys.argv[1:], "get_data.sh"))' "$size") || exit 2
  name=${size// /}
  ((default)) && name=5mb
  out="data/$name.txt"
  # 64-byte numbered lines, the last one cut so that the file has exactly $bytes bytes
  awk -v size="$bytes" 'BEGIN {
    for (i = 0; size > 0; i++) {
      line = sprintf("%011d parbench reference %08x%08x%08x%08x\n", i,
                     i * 2654435761 % 4294967296, i, 4294967295 - i, i * 40503 % 65536)
      if (size < 64) line = substr(line, 1, size)
      printf "%s", line
      size -= 64
    }
  }' > "$out.tmp"
  mv "$out.tmp" "$out"
  sha256sum "$out"
done
