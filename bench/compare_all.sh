#!/usr/bin/env bash
# Next-token agreement with llama.cpp for every architecture preset x weight format.
# usage: NODE_PATH=~/nlc/node_modules bench/compare_all.sh [OUT_DIR] [types...]
# Needs node-llama-cpp (see ../shared/tools/README.md) and a built build/rocforge.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/rocforge-compare}
shift || true
types=${*:-f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs mxfp4 q4_k_m}
data=${ROCFORGE_TEST_DATA:-../shared}
mkdir -p "$out"
declare -A vocab=([tiny]=llama-bpe [qwen3-tiny]=qwen2 [moe-tiny]=llama-spm [qwen2.5-0.5b]=qwen2)
for preset in tiny qwen3-tiny moe-tiny qwen2.5-0.5b; do
  for t in $types; do
    f="$out/$preset-$t.gguf"
    [ -f "$f" ] || build/rocforge synth -p "$preset" --type "$t" --vocab "$data/vocab/ggml-vocab-${vocab[$preset]}.gguf" -o "$f" -q >/dev/null
    printf '%-14s %-7s ' "$preset" "$t"
    python3 bench/compare_logits.py "$f" "The quick brown fox jumps over the lazy dog" || echo "FAILED"
  done
done
