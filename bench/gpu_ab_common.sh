# gpu_ab_common.sh - sourced by gpu_ab.sh and gpu_env_ab.sh: enters $DEV_DIR (default .devgpu2: lib/,
# vocab, binaries as in docs/performance.md), prints the card, and synthesizes the MODELS ("preset:type
# ...", peer-baselines.md's presets) in the background, the next one while the current one is measured.
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
# Waits for model $1's file and prints its path.
model_file() {
  local f
  f=$(file_of "$1")
  while [ ! -f "$f" ]; do sleep 1; done
  echo "$f"
}
# The pp and tg columns of `rocforge bench` output on stdin, on one line.
bench_cols() { grep -E '^\| ' | tail -2 | awk -F'|' '{print $7, $8}' | tr '\n' ' '; }
