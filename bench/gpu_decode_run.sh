#!/bin/bash
# Device-side runner for GPU decode/prefill measurements (run from the repo root on the device
# machine, with the binaries and libraries carried in .devgpu2/, see docs/performance.md).
# Usage: bench/gpu_decode_run.sh "<presets:types>" [tests]
#   e.g. bench/gpu_decode_run.sh "llama3.2-1b:q4_k_m llama3-8b:q4_k_m" tests
D=$PWD/.devgpu2
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_TEST_DATA=$D/data ROCFORGE_GPU_LIB=$D
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader
if [ "$2" = tests ]; then
  ./test_gpu 2>&1 | grep -E "PASSED|FAILED|Failure|error:" | head -20
  ./test_engine --gtest_filter='GpuEngine*' 2>&1 | grep -E "OK|FAIL|PASSED|SKIPPED|Failure|Expected|actual|Which" | head -30
fi
for pt in $1; do
  p=${pt%%:*}; t=${pt##*:}; f=/tmp/$p-$t.gguf
  [ -f "$f" ] || ./rocforge synth -p "$p" --type "$t" --vocab ggml-vocab-llama-bpe.gguf -o "$f" -q -t 16 >/dev/null 2>&1
  echo "== $p $t ($(stat -c %s "$f") bytes)"
  ./rocforge bench -m "$f" --device gpu -p 512 -n 128 -r 3 2>&1 | grep -E "^\|" | tail -2
  if [ -n "$BLASAB" ]; then echo "-- no blas"; ROCFORGE_GPU_BLAS=0 ./rocforge bench -m "$f" --device gpu -p 512 -n 0 -r 3 2>&1 | grep -E "^\|" | tail -1; fi
  if [ -n "$AB" ]; then
    echo "-- no graphs"; ROCFORGE_GPU_GRAPHS=0 ./rocforge bench -m "$f" --device gpu -p 0 -n 128 -r 3 2>&1 | grep -E "^\|" | tail -1
    echo "-- no graphs, no fusion"; ROCFORGE_GPU_GRAPHS=0 ROCFORGE_GPU_FUSE=0 ./rocforge bench -m "$f" --device gpu -p 0 -n 128 -r 3 2>&1 | grep -E "^\|" | tail -1
    echo "-- run (device sampling)"; ./rocforge run -m "$f" -p "Hello world" -n 128 --temp 0 --device gpu 2>&1 | grep -iE "tok/s|tokens/s|speed" | tail -3
  fi
done
