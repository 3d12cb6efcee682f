#!/bin/bash
# A/B of run-time switches of one build on one GPU machine: for each model, ROUNDS alternations (default
# 2) of every configuration in CONFIGS (";"-separated lists of VAR=value, "-" for none), each
# `rocforge bench -m FILE --device gpu -p ${PP:-512} -n 128 -r 3`. MODELS="preset:type ..." as in
# gpu_ab.sh (synthesized here, next one while the current one is measured); DEV_DIR as there.
# Example: CONFIGS="ROCFORGE_MV_STAGED=0;-" MODELS="llama3-8b:q4_0" bash bench/gpu_env_ab.sh
IFS=';' read -r -a configs <<< "${CONFIGS:--}"
source "$(dirname "$0")/gpu_ab_common.sh"
export ROCFORGE_GPU_LIB=$D
for pt in $MODELS; do
  f=$(model_file "$pt")
  for ((i = 0; i < ${ROUNDS:-2}; ++i)); do
    for cfg in "${configs[@]}"; do
      vars=(); [ "$cfg" != "-" ] && read -r -a vars <<< "$cfg"
      echo "${pt%%:*} ${pt##*:} [$cfg]: $(env "${vars[@]}" ./rocforge bench -m "$f" --device gpu -p "${PP:-512}" -n 128 -r 3 2>&1 | bench_cols)"
    done
  done
  rm -f "$f"
done
wait
