#!/usr/bin/env bash
# Make the reference file(s) in data/, deterministically and without network access.
#   ./get_data.sh            -> data/5mb.txt (5 MiB)
#   ./get_data.sh 64mb 1gb   -> data/64mb.txt, data/1gb.txt
# Sizes: <n>kb, <n>mb, <n>gb (powers of 1024). Each line is numbered, so any changed,
# lost or repeated chunk changes the checksum. Prints "sha256  path" for each file.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p data

bytes_of() {
  local size=${1,,} n unit
  if [[ ! $size =~ ^([0-9]+)(kb|mb|gb)$ ]]; then
    echo "get_data.sh: size '$1' is not <n>kb, <n>mb or <n>gb" >&2
    exit 2
  fi
  n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]}
  case $unit in kb) echo $((n * 1024)) ;; mb) echo $((n * 1024 ** 2)) ;; gb) echo $((n * 1024 ** 3)) ;; esac
}

for size in "${@:-5mb}"; do
  bytes=$(bytes_of "$size")
  out="data/${size,,}.txt"
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
