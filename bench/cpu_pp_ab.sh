#!/bin/bash
# cpu_pp_ab.sh - one round of pp512 (2 threads) per model: a baseline rocforge build, this one and
# llama.cpp (node-llama-cpp peer, ~/nlc; see ../shared/tools/README.md) back to back, so the three
# figures share the machine's state. Run several rounds and compare medians; skip rounds where the
# load average shows other work.
#   bench/cpu_pp_ab.sh BASE_ROCFORGE NEW_ROCFORGE [MODEL.gguf ...]
# Models default to /tmp/m1b-{q4_0,q4_k_m,q8_0,f16}.gguf (rocforge synth --preset llama3.2-1b).
set -u
BASE=${1:?baseline rocforge binary}
NEW=${2:?rocforge binary to compare}
shift 2
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(/tmp/m1b-q4_0.gguf /tmp/m1b-q4_k_m.gguf /tmp/m1b-q8_0.gguf /tmp/m1b-f16.gguf)
PEER=$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/llama-peer.mjs
pp() { "$1" bench -m "$2" -p 512 -n 0 -t 2 -r 3 2>&1 | grep pp512 | awk -F'|' '{print $8}'; }
for M in "${MODELS[@]}"; do
  L=$(cut -d' ' -f1 /proc/loadavg)
  B=$(pp "$BASE" "$M")
  N=$(pp "$NEW" "$M")
  # The peer wants n_gen >= 1; its pp512 line is the median of 3 runs.
  P=$(cd ~/nlc && node "$PEER" bench "$M" 2 512 1 2>&1 | grep "^pp512" | cut -d' ' -f2)
  echo "$(date -u +%H:%M:%S) load=$L $(basename "$M") base=$B new=$N peer=$P"
done
