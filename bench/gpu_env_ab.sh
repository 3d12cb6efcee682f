#!/bin/bash
# A/B of run-time switches of one build on one GPU machine: for each model, ROUNDS alternations (default
# 2) of every configuration in CONFIGS (";"-separated lists of VAR=value, "-" for none), each
# `rocforge bench -m FILE --device gpu -p ${PP:-512} -n 128 -r 3`. MODELS="preset:type ..." as in
# gpu_ab.sh (synthesized here, next one while the current one is measured); DEV_DIR as there.
# Example: CONFIGS="ROCFORGE_MV_STAGED=0;-" MODELS="llama3-8b:q4_0" bash bench/gpu_env_ab.sh
D=${DEV_DIR:-$PWD/.devgpu2}
cd "$D" || exit 1
export LD_LIBRARY_PATH=$D/lib:$D ROCFORGE_TEST_DATA=$D/data ROCFORGE_GPU_LIB=$D
nvidia-smi --query-gpu=name --format=csv,noheader
IFS=';' read -r -a configs <<< "${CONFIGS:--}"
file_of() { echo "/tmp/${1%%:*}-${1##*:}.gguf"; }
(for pt in $MODELS; do
   f=$(file_of "$pt")
   [ -f "$f" ] || ./rocforge synth -p "${pt%%:*}" --type "${pt##*:}" --vocab ggml-vocab-llama-bpe.gguf -o "$f.part" -q -t 8 \
     >/dev/null 2>&1 && mv "$f.part" "$f"
 done) &
for pt in $MODELS; do
  f=$(file_of "$pt")
  while [ ! -f "$f" ]; do sleep 1; done
  for ((i = 0; i < ${ROUNDS:-2}; ++i)); do
    for cfg in "${configs[@]}"; do
      vars=(); [ "$cfg" != "-" ] && read -r -a vars <<< "$cfg"
      echo "${pt%%:*} ${pt##*:} [$cfg]: $(env "${vars[@]}" ./rocforge bench -m "$f" --device gpu -p "${PP:-512}" -n 128 -r 3 2>&1 |
        grep -E '^\| ' | tail -2 | awk -F'|' '{print $7, $8}' | tr '\n' ' ')"
    done
  done
  rm -f "$f"
done
wait
