#!/bin/bash
# A/B of two builds on one GPU machine, per model: $DEV_DIR/base/{rocforge,librocforge-cuda.so} (the
# baseline) against $DEV_DIR/{rocforge,librocforge-cuda.so}, alternating base/new twice. MODELS="preset:type ..."
# (synth presets of ../shared/notes/peer-baselines.md); DEV_DIR holds lib/ and the vocab as in docs/performance.md.
D=${DEV_DIR:-$PWD/.devgpu2}
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_TEST_DATA=$D/data
nvidia-smi --query-gpu=name --format=csv,noheader
for pt in $MODELS; do
  p=${pt%%:*}; t=${pt##*:}; f=/tmp/$p-$t.gguf
  [ -f "$f" ] || ./rocforge synth -p "$p" --type "$t" --vocab ggml-vocab-llama-bpe.gguf -o "$f" -q -t 16 >/dev/null 2>&1
  for v in base new base new; do
    if [ $v = base ]; then b=$D/base/rocforge; lib=$D/base; else b=$D/rocforge; lib=$D; fi
    echo "$p $t $v: $(ROCFORGE_GPU_LIB=$lib $b bench -m $f --device gpu -p 512 -n 128 -r 3 2>&1 | grep -E '^\| ' | tail -2 | awk -F'|' '{print $7, $8}' | tr '\n' ' ') $(stat -c %s $f)B"
  done
  rm -f "$f"
done
