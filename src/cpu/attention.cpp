#include "cpu/attention.h"

#include <cmath>
#include <cstring>

#include "core/half.h"
#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kv_q8.h"

namespace rocforge::cpu {

void attend_scalar(const AttnArgs& a) {
  const int G = a.group, D = a.D;
  float* acc = a.scratch;                 // [G, D]
  float* mx = acc + G * D;                // [G]
  float* den = mx + G;                    // [G]
  float* s = den + G;                     // [G, kAttnBlock]
  float* row = s + G * kAttnBlock;        // [D]
  for (int i = 0; i < G * D; ++i) acc[i] = 0.0f;
  for (int g = 0; g < G; ++g) mx[g] = -INFINITY, den[g] = 0.0f;
  auto load = [&](const void* base, int64_t slot) {
    const uint8_t* p = kv_head_row(base, a.kv_type, a.row_elems, a.head_off, slot);
    switch (a.kv_type) {
      case KvType::F16: {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
        for (int i = 0; i < D; ++i) row[i] = fp16_to_f32(h[i]);
        break;
      }
      case KvType::F32: std::memcpy(row, p, D * sizeof(float)); break;
      case KvType::Q8_0: dequantize_kv_row_q8_0(p, D, row); break;
    }
  };
  for (int64_t j0 = 0; j0 < a.n_pos; j0 += kAttnBlock) {
    const int nb = static_cast<int>(std::min<int64_t>(kAttnBlock, a.n_pos - j0));
    for (int j = 0; j < nb; ++j) {
      load(a.k, a.slots[j0 + j]);
      for (int g = 0; g < G; ++g) {
        float d = 0;
        for (int i = 0; i < D; ++i) d += a.q[g * D + i] * row[i];
        s[g * kAttnBlock + j] = d * a.scale;
      }
    }
    for (int g = 0; g < G; ++g) {
      float m = mx[g];
      for (int j = 0; j < nb; ++j) m = std::max(m, s[g * kAttnBlock + j]);
      const float r = std::exp(mx[g] - m);  // exp(-inf) = 0 on the first block
      den[g] *= r;
      for (int i = 0; i < D; ++i) acc[g * D + i] *= r;
      for (int j = 0; j < nb; ++j) {
        const float p = std::exp(s[g * kAttnBlock + j] - m);
        s[g * kAttnBlock + j] = p;
        den[g] += p;
      }
      mx[g] = m;
    }
    for (int j = 0; j < nb; ++j) {
      load(a.v, a.slots[j0 + j]);
      for (int g = 0; g < G; ++g) {
        const float p = s[g * kAttnBlock + j];
        for (int i = 0; i < D; ++i) acc[g * D + i] += p * row[i];
      }
    }
  }
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < D; ++i) a.out[g * D + i] = acc[g * D + i] / den[g];
}

void attend(const AttnArgs& a) {
  const KernelTable* t = nullptr;
  switch (active_isa()) {
    case IsaLevel::Avx512: t = avx512_kernels(); break;
    case IsaLevel::Avx2: t = avx2_kernels(); break;
    case IsaLevel::Neon: t = neon_kernels(); break;
    case IsaLevel::Scalar: break;
  }
  if (t && t->attend) t->attend(a);
  else attend_scalar(a);
}

void attend_tile(const AttnTileArgs& a, float* scratch) {
  if (a.n_tok > 1 || a.n_pos[0] >= kDecodeTileMinPos) {
    const IsaLevel isa = active_isa();
    if (isa == IsaLevel::Avx512 && avx512_attend_tile(a, scratch)) return;
    if (isa == IsaLevel::Avx2 && avx2_attend_tile(a, scratch)) return;
  }
  // One token at a time; the per-token scratch sits after the tile's.
  const int64_t R = static_cast<int64_t>(a.n_tok) * a.group;
  float* tok_scratch = scratch + R * a.D + 2 * R + R * kAttnTileBlock + 2 * static_cast<int64_t>(a.D) * kAttnTileBlock + 16;
  for (int i = 0; i < a.n_tok; ++i) {
    AttnArgs t;
    t.q = a.q + i * a.q_stride;
    t.group = a.group;
    t.D = a.D;
    t.scale = a.scale;
    t.n_pos = a.n_pos[i];
    t.slots = a.slots;
    t.k = a.k;
    t.v = a.v;
    t.row_elems = a.row_elems;
    t.head_off = a.head_off;
    t.kv_type = a.kv_type;
    t.out = a.out + i * a.out_stride;
    t.scratch = tok_scratch;
    attend(t);
  }
}

}  // namespace rocforge::cpu
