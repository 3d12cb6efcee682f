#include "cpu/ops.h"

#include <cmath>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"


namespace rocforge::cpu {

float dot_f32(const float* a, const float* b, int64_t n) {
  // Eight partial sums let the compiler vectorise without -ffast-math reassociation.
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope(float* v, int n_heads, int head_dim, int n_rot, float pos, float base, bool neox, const float* freq_factors) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    float theta = pos * std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(n_rot));
    if (freq_factors) theta /= freq_factors[i];
    const float c = std::cos(theta), s = std::sin(theta);
    for (int h = 0; h < n_heads; ++h) {
      float* head = v + static_cast<int64_t>(h) * head_dim;
      const int a = neox ? i : 2 * i;
      const int b = neox ? i + half : 2 * i + 1;
      const float x0 = head[a], x1 = head[b];
      head[a] = x0 * c - x1 * s;
      head[b] = x0 * s + x1 * c;
    }
  }
}

void swiglu(float* gate, const float* up, int64_t n) {
  if (active_isa() == IsaLevel::Avx512) return avx512_swiglu(gate, up, n);
  if (active_isa() == IsaLevel::Avx2) return avx2_swiglu(gate, up, n);
  swiglu_scalar(gate, up, n);
}

void swiglu_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace rocforge::cpu
