// rope_math.h - the rotation of one RoPE pair, shared by the rope kernel (elementwise.hip) and the
// decode step's fused rope + KV store (attention.hip), so both paths compute the same bits.
#pragma once

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

// Rotates pair i (< n_rot / 2) of one head at position pos in place: elements (i, i + n_rot/2) in
// NeoX style, (2i, 2i + 1) otherwise; theta = pos * freq_scale * base^(-2i / n_rot) / ff[i].
__device__ inline void rope_rotate_pair(float* head, int i, int pos, int n_rot, float base, float freq_scale,
                                        const float* __restrict__ ff, int neox) {
  const int half = n_rot / 2;
  float theta = static_cast<float>(pos) * freq_scale * powf(base, -2.0f * i / n_rot);
  if (ff) theta /= ff[i];
  float sn, cs;
  sincosf(theta, &sn, &cs);
  const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
  const float x0 = head[a], x1 = head[b];
  head[a] = x0 * cs - x1 * sn;
  head[b] = x0 * sn + x1 * cs;
}

}  // namespace rocforge::gpu
