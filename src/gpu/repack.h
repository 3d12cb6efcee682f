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

// Rewrites `rows` rows of `row_bytes` bytes (back to back at src) into dst in layout
// device_layout(type, cols); returns false (dst untouched) when the type keeps its layout.
inline bool repack_rows(uint32_t type, const uint8_t* src, uint8_t* dst, int64_t rows, int64_t cols,
                        size_t row_bytes) {
  const uint32_t layout = device_layout(type, cols);
  if (layout == type) return false;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* in = src + static_cast<size_t>(r) * row_bytes;
    uint8_t* out = dst + static_cast<size_t>(r) * row_bytes;
    if (layout == RF_GPU_TYPE_Q3_K_G8) {
      // Q3_K super-block: hmask[32] qs[64] scales[12] d[2] (110 bytes). A group of 8 becomes the
      // planes [hmask x 8][qs x 8][scales[0..8) x 8][scales[8..12) x 8][d x 8] = 880 bytes.
      for (int64_t g = 0; g < cols / 2048; ++g, in += 880, out += 880) {
        for (int j = 0; j < 8; ++j) {
          const uint8_t* b = in + 110 * j;
          std::memcpy(out + 32 * j, b, 32);
          std::memcpy(out + 256 + 64 * j, b + 32, 64);
          std::memcpy(out + 768 + 8 * j, b + 96, 8);
          std::memcpy(out + 832 + 4 * j, b + 104, 4);
          std::memcpy(out + 864 + 2 * j, b + 108, 2);
        }
      }
    } else if (layout == RF_GPU_TYPE_Q6_K_G8) {
      // Q6_K super-block: ql[128] qh[64] scales[16] d[2] (210 bytes). A group of 8 becomes the
      // planes [ql x 8][qh x 8][scales x 8][d x 8] = 1680 bytes.
      for (int64_t g = 0; g < cols / 2048; ++g, in += 1680, out += 1680) {
        for (int j = 0; j < 8; ++j) {
          const uint8_t* b = in + 210 * j;
          std::memcpy(out + 128 * j, b, 128);
          std::memcpy(out + 1024 + 64 * j, b + 128, 64);
          std::memcpy(out + 1536 + 16 * j, b + 192, 16);
          std::memcpy(out + 1664 + 2 * j, b + 208, 2);
        }
      }
    } else {
      // Q4_0 / Q8_0 block: d[2] qs[n] (n = 16 / 32). A group of 8 becomes [d x 8][qs x 8].
      const size_t n = layout == RF_GPU_TYPE_Q4_0_G8 ? 16 : 32, group = 8 * (2 + n);
      for (int64_t g = 0; g < cols / 256; ++g, in += group, out += group) {
        for (int j = 0; j < 8; ++j) {
          const uint8_t* b = in + (2 + n) * j;
          std::memcpy(out + 2 * j, b, 2);
          std::memcpy(out + 16 + n * j, b + 2, n);
        }
      }
    }
  }
  return true;
}

}  // namespace rocforge::gpu
