// quant/search.h - error-minimizing scale searches shared by the quantizers.
//
// All searches minimise the plain squared error sum_i (x_i - w_i)^2 of a group of n values (the
// quantity the RMS bounds in docs/quantization.md measure). The common idea: the integer codes q
// depend on the scale only through rounding, so we try a fan of candidate scales, round with each,
// and for the resulting codes solve the least-squares scale (and offset) in closed form, keeping the
// best. `naive` skips the fan and uses the plain max-abs / min-max scale (tests compare the two).
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace rocforge::quant {

// x ~= s * q with integer q in [qmin, qmax] (qmin < 0 < qmax). Writes q, returns s (may be negative:
// the sign that lets the largest-magnitude value use the longer side of the range wins).
float search_symmetric(const float* x, int n, int qmin, int qmax, int8_t* q, bool naive);

// x ~= s * q + b with q in [0, qmax], s >= 0. When `offset_nonpositive` (K-quant mins, stored as a
// subtracted unsigned value) b is forced <= 0. Writes q and b, returns s.
float search_affine(const float* x, int n, int qmax, bool offset_nonpositive, uint8_t* q, float* b, bool naive);

// x ~= s * levels[q] with q in [0, 16) indexing the sorted non-uniform kIQ4Levels. Writes q, returns s.
float search_iq4(const float* x, int n, uint8_t* q, bool naive);

// Index of the kIQ4Levels entry nearest to v, by table: every midpoint between two levels is a
// multiple of 0.5, so one entry per half-unit interval of v is exact.
struct IQ4NearestTable {
  uint8_t idx[486];  // v in [-128, 115) -> idx[floor(2v) + 256]
};
constexpr IQ4NearestTable make_iq4_nearest_table() {
  IQ4NearestTable t{};
  for (int k = 0; k < 486; ++k) {
    const double v = (k - 256) / 2.0 + 0.25;  // inside the half-unit interval, never on a midpoint
    int best = 0;
    for (int j = 1; j < 16; ++j) {
      const double dj = v - kIQ4Levels[j], db = v - kIQ4Levels[best];
      if (dj * dj < db * db) best = j;
    }
    t.idx[k] = static_cast<uint8_t>(best);
  }
  return t;
}
inline constexpr IQ4NearestTable kIQ4Nearest = make_iq4_nearest_table();

inline int nearest_iq4(float v) {
  v = v > -128.0f ? v : -128.0f;  // NaN -> -128
  v = v < 114.5f ? v : 114.5f;
  return kIQ4Nearest.idx[static_cast<int>(2.0f * v + 256.0f)];
}

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the fraction out of the
// float's mantissa (rounded by the FPU's default mode), subtracting it back leaves the integer.
// Branch-free and much cheaper than a libm call; requires no -ffast-math (which would fold it).
inline float round_rne(float v) { return (v + 12582912.0f) - 12582912.0f; }

// quant_code as a float (saves the int round trip in error loops).
inline float quant_codef(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  v = v < hi ? v : hi;
  return round_rne(v);
}

// Integer code nearest to v, clamped to [lo, hi]. Safe for any float: NaN gives lo, +-inf clamp.
inline int quant_code(float v, int lo, int hi) {
  v = v > static_cast<float>(lo) ? v : static_cast<float>(lo);
  v = v < static_cast<float>(hi) ? v : static_cast<float>(hi);
  return static_cast<int>(round_rne(v));
}

inline int round_int(float v) { return quant_code(v, -(1 << 21), 1 << 21); }
inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace rocforge::quant
