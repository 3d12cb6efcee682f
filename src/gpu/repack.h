// repack.h - host-side rewrites of weight rows into device-friendly layouts of the same bytes, done
// once while the GPU executor uploads a model (quant_formats.h documents each layout). Host code
// only: included by the executor and the kernel tests, never compiled into device code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gpu/backend_api.h"

namespace rocforge::gpu {

// The layout a `cols`-wide matrix of GGUF type `type` gets on the device: the type itself, or an
// RF_GPU_TYPE_* layout of it.
inline uint32_t device_layout(uint32_t type, int64_t cols) {
  switch (type) {
    case 2u: return cols % 256 == 0 ? RF_GPU_TYPE_Q4_0_G8 : type;    // Q4_0: planes of 8 blocks
    case 8u: return cols % 256 == 0 ? RF_GPU_TYPE_Q8_0_G8 : type;    // Q8_0: planes of 8 blocks
    case 11u: return cols % 2048 == 0 ? RF_GPU_TYPE_Q3_K_G8 : type;  // Q3_K: planes of 8 super-blocks
    case 14u: return cols % 2048 == 0 ? RF_GPU_TYPE_Q6_K_G8 : type;  // Q6_K: planes of 8 super-blocks
    default: return type;
  }
}

// Every layout above is "planes of 8 blocks": a group of 8 consecutive blocks becomes one plane per
// part of the block, each holding that part of the 8 blocks in order. A block's parts, in order:
struct BlockParts {
  int block_bytes;
  int sizes[5];  // bytes of each part; 0 ends the list
};
inline BlockParts block_parts(uint32_t layout) {
  switch (layout) {
    case RF_GPU_TYPE_Q4_0_G8: return {18, {2, 16}};                // d, qs
    case RF_GPU_TYPE_Q8_0_G8: return {34, {2, 32}};                // d, qs
    case RF_GPU_TYPE_Q3_K_G8: return {110, {32, 64, 8, 4, 2}};     // hmask, qs, scales[0..8), scales[8..12), d
    case RF_GPU_TYPE_Q6_K_G8: return {210, {128, 64, 16, 2}};      // ql, qh, scales, d
    default: return {0, {}};
  }
}

// Rewrites `rows` rows of `row_bytes` bytes (back to back at src) into dst in layout
// device_layout(type, cols); returns false (dst untouched) when the type keeps its layout.
inline bool repack_rows(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols,
                        size_t row_bytes) {
  const uint32_t layout = device_layout(type, cols);
  if (layout == type) return false;
  const BlockParts bp = block_parts(layout);
  const size_t group = 8 * static_cast<size_t>(bp.block_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = src + static_cast<size_t>(r) * row_bytes;
    uint8_t* out = dst + static_cast<size_t>(r) * row_bytes;
    for (size_t g = 0; g + group <= row_bytes; g += group) {
      size_t plane = 0, part = 0;  // where the current part's plane starts; the part's offset in a block
      for (int k = 0; k < 5 && bp.sizes[k] > 0; ++k) {
        const size_t n = static_cast<size_t>(bp.sizes[k]);
        for (int j = 0; j < 8; ++j) std::memcpy(out + g + plane + n * j, in + g + bp.block_bytes * j + part, n);
        plane += 8 * n;
        part += n;
      }
    }
  }
  return true;
}

}  // namespace rocforge::gpu
