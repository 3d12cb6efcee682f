// scratch_buffer.h - a grow-only, 64-byte aligned scratch buffer; kernels keep one per thread
// (thread_local) for the packing they do on every call.
#pragma once

#include <cstddef>
#include <cstdlib>

namespace rocforge::cpu {

struct ScratchBuffer {
  void* p = nullptr;
  size_t cap = 0;
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(p); }
  // At least `bytes` (rounded up to 4 KiB); nullptr when the allocation fails.
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      cap = (bytes + 4095) / 4096 * 4096;
      p = std::aligned_alloc(64, cap);
      if (!p) cap = 0;
    }
    return p;
  }
};

}  // namespace rocforge::cpu
