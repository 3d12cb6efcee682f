#!/usr/bin/env bash
# Installs the Debian 12 packages rocforge builds and tests with. The one list of dependencies.
# Runs apt-get only for packages that are missing, and only as root; otherwise it says what is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  clang lld libclang-rt-dev          # libFuzzer + sanitizers for the GGUF fuzz target
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
  libpcre2-dev libhwy-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # GPU backends (src/gpu): clang 19 compiles the .hip kernels for gfx90a/gfx942/gfx1100/gfx1201 (clang-tools-19
  # has clang-offload-bundler, lld-19 links device code); HIP 5.2 headers + libamdhip64 build librocforge-hip.so;
  # rocm-device-libs gives the device bitcode. (~35 s, ~900 MB.) nvcc comes from /usr/local/cuda, not Debian.
  clang-19 lld-19 clang-tools-19 libamdhip64-dev rocm-device-libs
  llvm                               # llvm-readelf: the AMD code objects' register and scratch use (amdgpu_scratch test)
  g++-aarch64-linux-gnu              # cross-compile check of the CPU backend for aarch64 (scripts/check-aarch64.sh)
  qemu-user-static                   # runs the cross-built NEON kernel check (scripts/check-aarch64-neon.sh)
)

# Node.js (with npm) drives the server tests through the real `openai` npm client. Machines that
# carry NodeSource's nodejs already have npm inside it, and Debian's npm package conflicts with it.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing Debian packages (run as root to install): ${missing[*]}" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
