#!/usr/bin/env bash
# Runs the aarch64 NEON kernels for real on this x86 machine: cross-builds
# tests/aarch64/neon_vs_scalar.cpp with src/cpu, src/core and src/quant as one static aarch64 binary
# and runs it under qemu-user twice:
#   -cpu max         (has FEAT_DotProd): the NEON table must be chosen and match the scalar table
#   -cpu cortex-a53  (armv8.0, no sdot): neon_kernels() must be nullptr and the scalar table run
# Usage: check-aarch64-neon.sh [WORK_DIR]   (objects are kept there; default: a temporary folder)
# Exit status: 0 pass, 1 build failure or mismatch, 77 no cross compiler or no qemu (ctest: SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX_AARCH64:-aarch64-linux-gnu-g++}
QEMU=${QEMU_AARCH64:-qemu-aarch64-static}
command -v "$CXX" >/dev/null || { echo "check-aarch64-neon: SKIPPED: $CXX not found (apt install g++-aarch64-linux-gnu)"; exit 77; }
command -v "$QEMU" >/dev/null || { echo "check-aarch64-neon: SKIPPED: $QEMU not found (apt install qemu-user-static)"; exit 77; }
if [ $# -ge 1 ]; then
  out=$1
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
launcher=""
command -v ccache >/dev/null && launcher=ccache
srcs=(src/cpu/*.cpp src/core/*.cpp src/quant/*.cpp tests/aarch64/neon_vs_scalar.cpp)
# The Release build's flags (-O3, ISO C++20: the kernels' float contraction must be what ships),
# kernels_neon.cpp with the -march CMakeLists.txt gives it.
printf '%s\n' "${srcs[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'm=""; case "$2" in */kernels_neon.cpp) m=-march=armv8.2-a+dotprod;; esac
   $0 "$1" $m -std=c++20 -O3 -DNDEBUG -Wall -Wextra -Wno-unused-parameter -Werror -Iinclude -Isrc -c "$2" -o "$3/$(echo "$2" | tr / _).o" || exit 255' \
  "$launcher" "$CXX" {} "$out" || { echo "check-aarch64-neon: FAILED to compile (see above)"; exit 1; }
objs=()
for f in "${srcs[@]}"; do objs+=("$out/$(echo "$f" | tr / _).o"); done
"$CXX" -static -pthread "${objs[@]}" -o "$out/neon_vs_scalar" || { echo "check-aarch64-neon: FAILED to link"; exit 1; }
"$QEMU" -cpu max "$out/neon_vs_scalar" --expect-dotprod || { echo "check-aarch64-neon: FAILED under $QEMU -cpu max"; exit 1; }
"$QEMU" -cpu cortex-a53 "$out/neon_vs_scalar" --expect-no-dotprod ||
  { echo "check-aarch64-neon: FAILED under $QEMU -cpu cortex-a53"; exit 1; }
echo "check-aarch64-neon: passed"
