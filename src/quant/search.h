// quant/search.h - error-minimizing scale searches shared by the quantizers.
//
// All searches minimise the plain squared error sum_i (x_i - w_i)^2 of a group of n values (the
// quantity the RMS bounds in docs/quantization.md measure). The common idea: the integer codes q
// depend on the scale only through rounding, so we try a fan of candidate scales, round with each,
// and for the resulting codes solve the least-squares scale (and offset) in closed form, keeping the
// best. `naive` skips the fan and uses the plain max-abs / min-max scale (tests compare the two).
#pragma once

#include <cstdint>

namespace rocforge::quant {

// x ~= s * q with integer q in [qmin, qmax] (qmin < 0 < qmax). Writes q, returns s (may be negative:
// the sign that lets the largest-magnitude value use the longer side of the range wins).
float search_symmetric(const float* x, int n, int qmin, int qmax, int8_t* q, bool naive);

// x ~= s * q + b with q in [0, qmax], s >= 0. When `offset_nonpositive` (K-quant mins, stored as a
// subtracted unsigned value) b is forced <= 0. Writes q and b, returns s.
float search_affine(const float* x, int n, int qmax, bool offset_nonpositive, uint8_t* q, float* b, bool naive);

// x ~= s * levels[q] with q in [0, 16) indexing the sorted non-uniform kIQ4Levels. Writes q, returns s.
float search_iq4(const float* x, int n, uint8_t* q, bool naive);

// Index of the kIQ4Levels entry nearest to v.
int nearest_iq4(float v);

// Round to nearest integer, halves away from zero (the rounding every quantizer uses for codes).
inline int round_int(float v) { return static_cast<int>(v >= 0 ? v + 0.5f : v - 0.5f); }
inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace rocforge::quant
