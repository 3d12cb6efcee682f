// rope_math.h - the rotation of one RoPE pair, shared by the rope kernel (elementwise.hip) and the
// decode step's fused rope + KV store (attention_decode.hip, and the q/k/v matvec's epilogue in matvec.hip),
// so every path computes the same bits.
#pragma once

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

// Rotates the values (x0, x1) of pair i (< n_rot / 2) at position pos:
// theta = pos * freq_scale * base^(-2i / n_rot) / ff[i].
__device__ inline void rope_rotate(float& x0, float& x1, int i, int pos, int n_rot, float base, float freq_scale,
                                   const float* __restrict__ ff) {
  float theta = static_cast<float>(pos) * freq_scale * powf(base, -2.0f * i / n_rot);
  if (ff) theta /= ff[i];
  float sn, cs;
  sincosf(theta, &sn, &cs);
  const float a = x0, b = x1;
  x0 = a * cs - b * sn;
  x1 = a * sn + b * cs;
}

// Rotates pair i (< n_rot / 2) of one head in place: elements (i, i + n_rot/2) in NeoX style,
// (2i, 2i + 1) otherwise.
__device__ inline void rope_rotate_pair(float* head, int i, int pos, int n_rot, float base, float freq_scale,
                                        const float* __restrict__ ff, int neox) {
  const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
  rope_rotate(head[a], head[b], i, pos, n_rot, base, freq_scale, ff);
}

}  // namespace rocforge::gpu
