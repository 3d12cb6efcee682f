#include "cpu/kv_q8.h"

#include <cmath>

#include "core/half.h"
#include "quant/blocks.h"
#include "rocforge/kv_type.h"

namespace rocforge::cpu {

static_assert(sizeof(quant::BlockQ8_0) == kKvQ8BlockBytes && quant::kQ32 == kKvQ8Block, "a cache block is ggml's block_q8_0");

void quantize_kv_row_q8_0(const float* x, int64_t n, void* dst) {
  auto* blocks = static_cast<quant::BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / quant::kQ32; ++b) {
    const float* xb = x + b * quant::kQ32;
    float amax = 0.0f;
    for (int i = 0; i < quant::kQ32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    // The codes come from the f32 scale (ggml's rule), so |x - d q| <= d / 2 before d is rounded
    // to f16; |q| <= 127 holds either way.
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    quant::BlockQ8_0& blk = blocks[b];
    blk.d = f32_to_fp16(d);
    for (int i = 0; i < quant::kQ32; ++i) blk.qs[i] = static_cast<int8_t>(std::round(xb[i] * id));
  }
}

void dequantize_kv_row_q8_0(const void* src, int64_t n, float* x) {
  const auto* blocks = static_cast<const quant::BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / quant::kQ32; ++b) {
    const float d = fp16_to_f32(blocks[b].d);
    for (int i = 0; i < quant::kQ32; ++i) x[b * quant::kQ32 + i] = d * static_cast<float>(blocks[b].qs[i]);
  }
}

}  // namespace rocforge::cpu
