#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - builds the GGUF reader fuzzer (clang, libFuzzer, ASan+UBSan) in its own
# build dir and runs it for SECONDS (default 60). Exits non-zero on any finding: a sanitizer report,
# an escaping exception, a timeout or an out-of-memory. `make test` runs it after ctest.
#
# Seed corpus: every .gguf under $ROCFORGE_TEST_DATA (default ../shared), copied into a temporary
# directory (never into the repo), plus small files written by fuzz_gguf_seeds. Findings are kept in
# $FUZZ_BUILD_DIR/artifacts/ ; reproduce one with: $FUZZ_BUILD_DIR/fuzz/fuzz_gguf_reader FILE
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build parallelism, default nproc),
# CXX_FUZZ / CC_FUZZ (default clang++-14 / clang-14, else clang++ / clang).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
cxx=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
cc=${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$cxx" ] || [ -z "$cc" ]; then
  echo "fuzz/run.sh: clang not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

echo "fuzz: building fuzz_gguf_reader with $cxx in $build"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DROCFORGE_FUZZ=ON -DROCFORGE_BUILD_TESTS=OFF -DROCFORGE_BUILD_BENCH=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target fuzz_gguf_reader fuzz_gguf_seeds -j "$jobs"

work=$(mktemp -d "${TMPDIR:-/tmp}/rocforge-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$build/artifacts"
data=${ROCFORGE_TEST_DATA:-../shared}
n_real=0
if [ -d "$data" ]; then
  while IFS= read -r -d '' f; do
    cp "$f" "$work/corpus/"
    n_real=$((n_real + 1))
  done < <(find -L "$data" -name '*.gguf' -type f -print0)
fi
"$build/fuzz/fuzz_gguf_seeds" "$work/corpus"
echo "fuzz: seed corpus: $n_real real files from $data + $(($(ls "$work/corpus" | wc -l) - n_real)) generated; running ${seconds}s"

# -max_len keeps mutated inputs small enough for a useful exec rate; the real files are truncated to
# it when loaded, which still covers the header, metadata and tensor-info parsing.
status=0
"$build/fuzz/fuzz_gguf_reader" "$work/corpus" \
  -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
  -dict=fuzz/gguf.dict -artifact_prefix="$build/artifacts/" -print_final_stats=1 \
  >"$work/fuzz.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  # The sanitizer / libFuzzer report from its first line (else the end of the log).
  report=$(sed -n '/ERROR: \|runtime error\|deadly signal\|uncaught exception\|out-of-memory\|timeout after/,$p' "$work/fuzz.log" | head -n 80)
  if [ -n "$report" ]; then echo "$report" >&2; else tail -n 60 "$work/fuzz.log" >&2; fi
  echo "fuzz: FAILED (exit $status); reproducer(s) in $build/artifacts/:" >&2
  ls -l "$build/artifacts/" >&2
  exit 1
fi
grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/fuzz.log" || true
echo "fuzz: no findings in ${seconds}s"
