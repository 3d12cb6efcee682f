#!/usr/bin/env bash
# Cross-compile check: the CPU backend (src/cpu) and what it builds on (src/core, src/quant) must
# compile for aarch64 (the x86 SIMD files compile to nothing there; src/cpu/kernels_neon.cpp is the
# aarch64 kernel table). Objects only: nothing is linked or run (scripts/check-aarch64-neon.sh runs
# the NEON kernels under qemu). Needs g++-aarch64-linux-gnu.
# Exit status: 0 all compiled, 1 a file failed, 77 no cross compiler (ctest reports SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
command -v "$CXX" >/dev/null || { echo "check-aarch64: SKIPPED: $CXX not found (apt install g++-aarch64-linux-gnu)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
files=(src/cpu/*.cpp src/core/*.cpp src/quant/*.cpp)
# One compiler per core; -O2 as the Release build's optimizer would see it, -Werror so a warning
# only the aarch64 branch of an #if produces fails here too.
# kernels_neon.cpp gets the -march CMakeLists.txt gives it.
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'm=""; case "$1" in */kernels_neon.cpp) m=-march=armv8.2-a+dotprod;; esac
   "$0" $m -std=c++20 -O2 -Wall -Wextra -Wno-unused-parameter -Werror -Iinclude -Isrc -c "$1" -o "$2/$(basename "$1").o" || exit 255' \
  "$CXX" {} "$out" || { echo "check-aarch64: FAILED (see the compiler output above)"; exit 1; }
echo "check-aarch64: ${#files[@]} files compiled for aarch64 with $CXX"
