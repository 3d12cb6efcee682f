// x_slot.hip - per-stream slots of static device memory for the small-batch GEMMs' X, prepared once
// per call as f16 (matmul_mma's A fragments, matmul_small's runs).
//
// Static memory, not an allocation: a graph capture may record a call's first use, and two streams
// never share a slot (a stream's calls run in order, so one slot a stream suffices). Four slots of
// kXSlotTokens x kXSlotMaxCols halves a device (16 MiB; stream_slots.h); a fifth stream gets none
// and its products read X's fp32 rows themselves.
#include <atomic>

#include "gpu/kernels.h"
#include "gpu/stream_slots.h"

namespace rocforge::gpu {
namespace {

constexpr int kXSlots = 4;
constexpr size_t kXSlotWords = kXSlotBytes / sizeof(uint4);
__device__ uint4 g_x_slots[kXSlots][kXSlotWords];
StreamSlots g_owners(kXSlots);

}  // namespace

uint4* x_slot(hipStream_t s) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return nullptr;
  const int slot = g_owners.claim(s);
  if (slot < 0) return nullptr;
  static std::atomic<void*> base[64] = {};
  void* b = base[dev].load(std::memory_order_acquire);
  if (!b) {
    if (rf_symbol_address(&b, g_x_slots) != hipSuccess) {
      (void)hipGetLastError();
      return nullptr;
    }
    base[dev].store(b, std::memory_order_release);
  }
  return static_cast<uint4*>(b) + static_cast<size_t>(slot) * kXSlotWords;
}

void x_slot_release(hipStream_t s) { g_owners.release(s); }

}  // namespace rocforge::gpu
