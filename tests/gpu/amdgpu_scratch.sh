#!/usr/bin/env bash
# amdgpu_scratch.sh BUILD_DIR ALLOW_FILE - every AMD kernel the build compiled runs without scratch
# memory, unless ALLOW_FILE names it with a reason.
#
# Why: no AMD GPU runs here, so what the code objects say is the evidence AMD gets. A kernel with a
# private segment spills registers to memory, or keeps an array indexed at run time there (each
# access a round trip to memory, per lane); on NVIDIA the same source may not show it at all.
# The code objects come from the HIP library's objects (their offload bundles, one per target), or
# the device-only .hsaco files where no HIP library is built. Exit 77 (ctest: skipped) where neither
# was built or the tools are missing.
set -uo pipefail
build=$1 allow=$2
skip() { echo "SKIPPED: $*"; exit 77; }
readelf=$(command -v llvm-readelf || ls /usr/lib/llvm-*/bin/llvm-readelf 2>/dev/null | tail -1)
bundler=$(command -v clang-offload-bundler-19 || ls /usr/lib/llvm-19/bin/clang-offload-bundler 2>/dev/null | tail -1)
[ -n "$readelf" ] || skip "llvm-readelf not found (Debian package llvm)"
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT

# <source>.<target>.co files in $tmp.
shopt -s nullglob
objs=("$build"/src/gpu/hip/*.o)
if [ ${#objs[@]} -gt 0 ]; then
  [ -n "$bundler" ] || skip "clang-offload-bundler (clang-tools-19) not found"
  for o in "${objs[@]}"; do
    n=$(basename "$o" .o)
    objcopy -O binary --only-section=.hip_fatbin "$o" "$tmp/$n.fatbin" || { echo "FAIL: objcopy $o"; exit 1; }
    [ -s "$tmp/$n.fatbin" ] || continue  # no device code (backend.hip; NVIDIA-only kernels)
    targets=$("$bundler" --list --type=o --input="$tmp/$n.fatbin") || { echo "FAIL: unreadable bundle in $o"; exit 1; }
    for t in $(grep amdgcn <<<"$targets"); do
      "$bundler" --unbundle --type=o --input="$tmp/$n.fatbin" --targets="$t" --output="$tmp/$n.${t##*--}.co" ||
        { echo "FAIL: could not unbundle $t from $o"; exit 1; }
    done
  done
else
  for h in "$build"/src/gpu/amdgpu/*.hsaco; do n=$(basename "$h" .hsaco); cp "$h" "$tmp/$n.co"; done
fi
cos=("$tmp"/*.co)
[ ${#cos[@]} -gt 0 ] || skip "no AMD code objects in $build (no HIP library, no .hsaco files)"

# One line per kernel with scratch: source target bytes vgpr-spills mangled-name.
for co in "${cos[@]}"; do
  base=$(basename "$co" .co)
  "$readelf" --notes "$co" | awk -v src="${base%.*}" -v tgt="${base##*.}" '
    /\.name:/ { name = $2 }
    /\.private_segment_fixed_size:/ { ps = $2 }
    /\.vgpr_spill_count:/ { vs = $2 }
    /\.wavefront_size:/ { if (ps > 0) print src, tgt, ps, vs, name; ps = 0; vs = 0 }'
done > "$tmp/found"

# Allow lines: source target-glob mangled-substring max-bytes # reason
fail=0 co_bytes=$(cat "$tmp"/*.co | wc -c)
while read -r src tgt bytes spills name; do
  ok=0
  while read -r asrc atgt asub amax _; do
    [[ -z "$asrc" || "$asrc" == \#* ]] && continue
    if [[ "$src" == "$asrc" && "$tgt" == $atgt && "$name" == *"$asub"* && "$bytes" -le "$amax" ]]; then ok=1; break; fi
  done < "$allow"
  if [ $ok -eq 0 ]; then
    echo "FAIL: $src.hip for $tgt: $(echo "$name" | c++filt | cut -c1-160) takes $bytes bytes of scratch a lane ($spills VGPRs spilled)"
    fail=1
  fi
done < "$tmp/found"
echo "checked ${#cos[@]} code objects ($((co_bytes / 1048576)) MB); kernels with scratch: $(wc -l < "$tmp/found"), each must be in $(basename "$allow")"
[ $fail -eq 0 ] || { echo "A kernel above takes scratch on an AMD target: lower its register use there (or index its arrays by constants), or add it to $allow with the reason."; exit 1; }
echo "PASSED"
