#!/bin/bash
# A/B of two builds on one GPU machine, per model: $DEV_DIR/${BASE:-base}/{rocforge,librocforge-cuda.so} (the
# baseline) against $DEV_DIR/{rocforge,librocforge-cuda.so}, alternating base/new ROUNDS times (default 2).
# MODELS="preset:type ..." (synth presets of ../shared/notes/peer-baselines.md); DEV_DIR holds lib/ and the
# vocab as in docs/performance.md. The next model is synthesized (CPU) while the current one is measured.
source "$(dirname "$0")/gpu_ab_common.sh"
for pt in $MODELS; do
  f=$(model_file "$pt")
  for ((i = 0; i < ${ROUNDS:-2}; ++i)); do
    for v in base new; do
      if [ $v = base ]; then b=$D/${BASE:-base}/rocforge; lib=$D/${BASE:-base}; else b=$D/rocforge; lib=$D; fi
      echo "${pt%%:*} ${pt##*:} $v: $(ROCFORGE_GPU_LIB=$lib $b bench -m $f --device gpu -p 512 -n 128 -r 3 2>&1 | bench_cols) $(stat -c %s $f)B"
    done
  done
  rm -f "$f"
done
wait
