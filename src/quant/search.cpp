// search.cpp - the scale searches of search.h.
#include "quant/search.h"

#include <cmath>

#include "quant/blocks.h"

namespace rocforge::quant {
namespace {

// Below this magnitude a group is treated as all zeros (keeps 1/amax finite).
constexpr float kTiny = 1e-30f;

// Signed value of largest magnitude.
float signed_absmax(const float* x, int n, float* amax_out) {
  float amax = 0, vmax = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > amax) { amax = a; vmax = x[i]; }
  }
  *amax_out = amax;
  return vmax;
}

// Rounds v = iscale * x and clamps it, safely for any float (NaN and huge values clamp).
int code_for(float v, int lo, int hi) {
  if (!(v > lo - 1.0f)) return lo;
  if (!(v < hi + 1.0f)) return hi;
  return clamp_int(round_int(v), lo, hi);
}

}  // namespace

int nearest_iq4(float v) {
  // Midpoints between consecutive levels; the answer is how many midpoints lie below v.
  static constexpr float kMid[15] = {-115.5f, -93.5f, -74.f, -57.f, -42.f, -28.5f, -16.f, -4.5f,
                                     7.f,      19.f,   31.5f, 45.5f, 61.f,  79.f,   101.f};
  int lo = 0, hi = 15;  // answer in [lo, hi]
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (v > kMid[mid]) lo = mid + 1; else hi = mid;
  }
  return lo;
}

float search_symmetric(const float* x, int n, int qmin, int qmax, int8_t* q, bool naive) {
  float amax;
  const float vmax = signed_absmax(x, n, &amax);
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return 0;
  }
  if (naive) {  // the largest magnitude maps onto the longer (negative) end of the range
    const float iscale = static_cast<float>(qmin) / vmax;
    for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(code_for(iscale * x[i], qmin, qmax));
    return 1.0f / iscale;
  }
  // Fan of candidate inverse scales: vmax lands near either end of the range, a little inside or
  // outside it (outside = the extreme value saturates but everything else gets finer steps).
  const int fan = qmax >= 15 ? 4 : 8;
  const float step = qmax >= 15 ? 0.25f : 0.1f;
  double best_score = -1;
  float best_iscale = 0;
  for (int side = 0; side < 2; ++side) {
    const float end = side == 0 ? static_cast<float>(qmin) : static_cast<float>(qmax);
    for (int k = -fan; k <= fan; ++k) {
      const float target = end + (end < 0 ? -step : step) * static_cast<float>(k);
      const float iscale = target / vmax;
      double sxq = 0, sqq = 0;
      for (int i = 0; i < n; ++i) {
        const int c = code_for(iscale * x[i], qmin, qmax);
        sxq += static_cast<double>(x[i]) * c;
        sqq += static_cast<double>(c) * c;
      }
      // For fixed codes the best scale is sxq/sqq and the error is sum x^2 - sxq^2/sqq.
      if (sqq > 0 && sxq * sxq / sqq > best_score) {
        best_score = sxq * sxq / sqq;
        best_iscale = iscale;
      }
    }
  }
  double sxq = 0, sqq = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = static_cast<int8_t>(code_for(best_iscale * x[i], qmin, qmax));
    sxq += static_cast<double>(x[i]) * q[i];
    sqq += static_cast<double>(q[i]) * q[i];
  }
  float s = static_cast<float>(sxq / sqq);
  // A couple of alternating steps: re-round with the fitted scale, refit, keep while it improves.
  for (int it = 0; it < 2; ++it) {
    int8_t q2[256];
    double sxq2 = 0, sqq2 = 0;
    for (int i = 0; i < n; ++i) {
      q2[i] = static_cast<int8_t>(code_for(x[i] / s, qmin, qmax));
      sxq2 += static_cast<double>(x[i]) * q2[i];
      sqq2 += static_cast<double>(q2[i]) * q2[i];
    }
    if (!(sqq2 > 0) || sxq2 * sxq2 / sqq2 <= sxq * sxq / sqq) break;
    for (int i = 0; i < n; ++i) q[i] = q2[i];
    sxq = sxq2; sqq = sqq2;
    s = static_cast<float>(sxq / sqq);
  }
  return s;
}

namespace {

// Least-squares s, b for x ~= s*q + b given codes; returns the squared error.
struct AffineFit {
  float s = 0, b = 0;
  double err = 0;
};

AffineFit fit_affine(const float* x, const uint8_t* q, int n, bool offset_nonpositive) {
  double sx = 0, sq = 0, sqq = 0, sxq = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    const double xi = x[i], qi = q[i];
    sx += xi; sq += qi; sqq += qi * qi; sxq += xi * qi; sxx += xi * xi;
  }
  const double det = n * sqq - sq * sq;
  double s = 0, b = 0;
  if (det > 0) {
    s = (n * sxq - sq * sx) / det;
    b = (sqq * sx - sq * sxq) / det;
  } else {
    b = sx / n;  // every code equal: only the offset carries information
  }
  if (offset_nonpositive && b > 0) {
    b = 0;
    s = sqq > 0 ? sxq / sqq : 0;
  }
  if (s < 0) {  // codes anti-correlated with x (degenerate); fall back to the offset alone
    s = 0;
    b = sx / n;
    if (offset_nonpositive && b > 0) b = 0;
  }
  AffineFit f;
  f.s = static_cast<float>(s);
  f.b = static_cast<float>(b);
  f.err = sxx - 2 * s * sxq - 2 * b * sx + s * s * sqq + 2 * s * b * sq + n * b * b;
  return f;
}

}  // namespace

float search_affine(const float* x, int n, int qmax, bool offset_nonpositive, uint8_t* q, float* b, bool naive) {
  float xmin = x[0], xmax = x[0];
  for (int i = 1; i < n; ++i) {
    xmin = x[i] < xmin ? x[i] : xmin;
    xmax = x[i] > xmax ? x[i] : xmax;
  }
  if (offset_nonpositive && xmin > 0) xmin = 0;
  const float range = xmax - xmin;
  if (!(range > kTiny)) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    *b = (offset_nonpositive && xmin > 0) ? 0 : xmin;
    return 0;
  }
  if (naive) {
    const float s = range / static_cast<float>(qmax);
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(code_for((x[i] - xmin) / s, 0, qmax));
    *b = xmin;
    return s;
  }
  uint8_t cand[256];
  AffineFit best;
  best.err = -1;
  // Candidate steps from slightly coarser to slightly finer than range/qmax.
  const int fan = qmax >= 15 ? 5 : 8;
  const float step = qmax >= 15 ? 0.2f : 0.1f;
  for (int k = -fan; k <= fan; ++k) {
    const float iscale = (static_cast<float>(qmax) + step * static_cast<float>(k)) / range;
    for (int i = 0; i < n; ++i) cand[i] = static_cast<uint8_t>(code_for(iscale * (x[i] - xmin), 0, qmax));
    const AffineFit f = fit_affine(x, cand, n, offset_nonpositive);
    if (best.err < 0 || f.err < best.err) {
      best = f;
      for (int i = 0; i < n; ++i) q[i] = cand[i];
    }
  }
  // Alternate: re-round with the fitted (s, b), refit; stop when it no longer improves.
  for (int it = 0; it < 3 && best.s > 0; ++it) {
    for (int i = 0; i < n; ++i) cand[i] = static_cast<uint8_t>(code_for((x[i] - best.b) / best.s, 0, qmax));
    const AffineFit f = fit_affine(x, cand, n, offset_nonpositive);
    if (!(f.err < best.err)) break;
    best = f;
    for (int i = 0; i < n; ++i) q[i] = cand[i];
  }
  *b = best.b;
  return best.s;
}

float search_iq4(const float* x, int n, uint8_t* q, bool naive) {
  float amax;
  const float vmax = signed_absmax(x, n, &amax);
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(nearest_iq4(0));
    return 0;
  }
  if (naive) {
    const float s = vmax / -127.0f;
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(nearest_iq4(x[i] / s));
    return s;
  }
  double best_score = -1;
  float best_iscale = 0;
  for (int side = 0; side < 2; ++side) {
    const float end = side == 0 ? -127.0f : 113.0f;
    for (int k = -7; k <= 7; ++k) {
      const float target = end + (end < 0 ? -1.5f : 1.5f) * static_cast<float>(k);
      const float iscale = target / vmax;
      double sxl = 0, sll = 0;
      for (int i = 0; i < n; ++i) {
        const int l = kIQ4Levels[nearest_iq4(iscale * x[i])];
        sxl += static_cast<double>(x[i]) * l;
        sll += static_cast<double>(l) * l;
      }
      if (sxl * sxl / sll > best_score) {
        best_score = sxl * sxl / sll;
        best_iscale = iscale;
      }
    }
  }
  double sxl = 0, sll = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = static_cast<uint8_t>(nearest_iq4(best_iscale * x[i]));
    sxl += static_cast<double>(x[i]) * kIQ4Levels[q[i]];
    sll += static_cast<double>(kIQ4Levels[q[i]]) * kIQ4Levels[q[i]];
  }
  float s = static_cast<float>(sxl / sll);
  for (int it = 0; it < 2; ++it) {
    uint8_t q2[256];
    double sxl2 = 0, sll2 = 0;
    for (int i = 0; i < n; ++i) {
      q2[i] = static_cast<uint8_t>(nearest_iq4(x[i] / s));
      sxl2 += static_cast<double>(x[i]) * kIQ4Levels[q2[i]];
      sll2 += static_cast<double>(kIQ4Levels[q2[i]]) * kIQ4Levels[q2[i]];
    }
    if (sxl2 * sxl2 / sll2 <= sxl * sxl / sll) break;
    for (int i = 0; i < n; ++i) q[i] = q2[i];
    sxl = sxl2; sll = sll2;
    s = static_cast<float>(sxl / sll);
  }
  return s;
}

}  // namespace rocforge::quant
