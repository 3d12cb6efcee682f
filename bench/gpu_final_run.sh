#!/bin/bash
# The figures of docs/performance.md (GPU section): kernel tests, then rocforge bench pp512/tg128 for
# each synthetic model, then rocforge run (device sampling). Device machine, repo root, binaries in
# .devgpu2/ (see docs/performance.md for how that folder is made).
D=$PWD/.devgpu2
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_TEST_DATA=$D/data ROCFORGE_GPU_LIB=$D
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
./test_gpu 2>&1 | grep -E "PASSED|FAILED" | head -5
./test_engine --gtest_filter='GpuEngine*' 2>&1 | grep -E "PASSED|FAILED" | head -5
./gpu_bench --types q4_k,q6_k,q4_0,q8_0,f16 --reps 5 --matvec-only 2>&1 | grep -E "^copy|^q|^f16|^type" | tail -7
for pt in ${MODELS:-llama3.2-1b:q4_k_m llama3.2-1b:q4_0 llama3.2-1b:q8_0 llama3.2-1b:f16 llama3-8b:q4_k_m llama3-8b:q4_0 llama3-8b:q8_0 llama3-8b:f16}; do
  p=${pt%%:*}; t=${pt##*:}; f=/tmp/$p-$t.gguf
  [ -f "$f" ] || ./rocforge synth -p "$p" --type "$t" --vocab ggml-vocab-llama-bpe.gguf -o "$f" -q -t 16 >/dev/null 2>&1
  ./rocforge bench -m "$f" --device gpu -p 512 -n 128 -r 3 2>&1 | grep -E "^\| llama" | sed "s/$/ $(stat -c %s "$f")B/"
  ./rocforge run -m "$f" -p "Hello world" -n 128 --temp 0 --device gpu 2>&1 | grep -oE "generated 128 tokens, [0-9.]+ s, [0-9.]+ tok/s"
  [ "$p" = llama3-8b ] && rm -f "$f"
done
