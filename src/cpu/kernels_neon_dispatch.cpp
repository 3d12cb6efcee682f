// kernels_neon_dispatch.cpp - neon_kernels(): the NEON table only on CPUs that have the dot-product
// instructions. Kept apart from kernels_neon.cpp because that file is compiled for
// armv8.2-a+dotprod and this check has to run on any armv8-a CPU (sdot is optional before v8.4).
#include "cpu/kernels.h"

#if defined(__aarch64__)
#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)  // Linux arm64 hwcap bit for SDOT/UDOT (asm/hwcap.h)
#endif

namespace rocforge::cpu {
const KernelTable* neon_kernels() {
  static const bool dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return dotprod ? neon_dotprod_kernels() : nullptr;
}
}  // namespace rocforge::cpu

#else  // not aarch64: no NEON table (matmul and attention use the x86 or scalar tables)

namespace rocforge::cpu {
const KernelTable* neon_kernels() { return nullptr; }
}  // namespace rocforge::cpu

#endif
