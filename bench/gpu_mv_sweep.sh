#!/bin/bash
# Sweep of the int8 decode matvec launch shape (ROCFORGE_MV_ROWS x ROCFORGE_MV_GROUP) with gpu_bench,
# run on the device machine from the repo root with the binaries in .devgpu2/ (docs/performance.md).
D=$PWD/.devgpu2
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_GPU_LIB=$D
types=${TYPES:-q4_k,q6_k,q4_0,q8_0}
./gpu_bench --types "$types" --reps 5 --matvec-only > /tmp/mv_default.txt 2>&1
grep -E "^copy|^device" /tmp/mv_default.txt
echo "== default"; sed -n '/8B decode/,$p' /tmp/mv_default.txt
grep -E "q8 us|attn_|ffn_|output" /tmp/mv_default.txt
for r in 1 2 4; do for g in 32 64 128 256; do
  echo "== rows $r group $g"
  ROCFORGE_MV_ROWS=$r ROCFORGE_MV_GROUP=$g ./gpu_bench --types "$types" --reps 5 --matvec-only 2>&1 | sed -n '/8B decode/,$p' | tail -n +3
done; done
