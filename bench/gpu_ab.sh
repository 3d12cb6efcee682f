#!/bin/bash
# A/B of two builds on one GPU machine, per model: $DEV_DIR/${BASE:-base}/{rocforge,librocforge-cuda.so} (the
# baseline) against $DEV_DIR/{rocforge,librocforge-cuda.so}, alternating base/new ROUNDS times (default 2).
# MODELS="preset:type ..." (synth presets of ../shared/notes/peer-baselines.md); DEV_DIR holds lib/ and the
# vocab as in docs/performance.md. The next model is synthesized (CPU) while the current one is measured.
D=${DEV_DIR:-$PWD/.devgpu2}
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_TEST_DATA=$D/data
nvidia-smi --query-gpu=name --format=csv,noheader
file_of() { echo "/tmp/${1%%:*}-${1##*:}.gguf"; }
(for pt in $MODELS; do
   f=$(file_of "$pt")
   [ -f "$f" ] || ./rocforge synth -p "${pt%%:*}" --type "${pt##*:}" --vocab ggml-vocab-llama-bpe.gguf -o "$f.part" -q -t 16 \
     >/dev/null 2>&1 && mv "$f.part" "$f"
 done) &
for pt in $MODELS; do
  f=$(file_of "$pt")
  while [ ! -f "$f" ]; do sleep 1; done
  for ((i = 0; i < ${ROUNDS:-2}; ++i)); do
    for v in base new; do
      if [ $v = base ]; then b=$D/${BASE:-base}/rocforge; lib=$D/${BASE:-base}; else b=$D/rocforge; lib=$D; fi
      echo "${pt%%:*} ${pt##*:} $v: $(ROCFORGE_GPU_LIB=$lib $b bench -m $f --device gpu -p 512 -n 128 -r 3 2>&1 | grep -E '^\| ' | tail -2 | awk -F'|' '{print $7, $8}' | tr '\n' ' ') $(stat -c %s $f)B"
    done
  done
  rm -f "$f"
done
wait
