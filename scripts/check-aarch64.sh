#!/usr/bin/env bash
# Cross-compile check: the CPU backend (src/cpu) and what it builds on (src/core, src/quant) must
# compile for aarch64 (the x86 SIMD files compile to nothing there; dispatch falls back to the
# scalar kernel table). Objects only: nothing is linked or run. Needs g++-aarch64-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$CXX" >/dev/null || { echo "check-aarch64: $CXX not found (apt install g++-aarch64-linux-gnu)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for f in src/cpu/*.cpp src/core/*.cpp src/quant/*.cpp; do
  "$CXX" -std=c++20 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -Iinclude -Isrc -c "$f" -o "$out/$(basename "$f").o"
  n=$((n + 1))
done
echo "check-aarch64: $n files compiled for aarch64 with $CXX"
