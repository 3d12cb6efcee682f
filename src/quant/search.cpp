// search.cpp - the scale searches of search.h.
//
// Groups are at most 32 elements, so float accumulators are plenty for ranking candidates; the
// inner loops are branch-free (quant_code, table lookups) because they dominate quantize time.
#include "quant/search.h"

#include <cmath>

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

// sum(x*q)^2 / sum(q^2): for fixed codes q the best scale is sxq/sqq and the squared error is
// sum(x^2) minus this score, so a larger score is a better candidate.
struct SymScore {
  float sxq = 0, sqq = 0;
  float score() const { return sqq > 0 ? sxq * sxq / sqq : -1.0f; }
};

SymScore sym_codes(const float* x, int n, float iscale, int qmin, int qmax, int8_t* q) {
  SymScore s;
  for (int i = 0; i < n; ++i) {
    const float c = quant_codef(iscale * x[i], static_cast<float>(qmin), static_cast<float>(qmax));
    q[i] = static_cast<int8_t>(c);
    s.sxq += x[i] * c;
    s.sqq += c * c;
  }
  return s;
}

}  // namespace

float search_symmetric(const float* x, int n, int qmin, int qmax, int8_t* q, bool naive) {
  float amax;
  const float vmax = signed_absmax(x, n, &amax);
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return 0;
  }
  if (naive) {  // the largest magnitude maps onto the longer (negative) end of the range
    const float iscale = static_cast<float>(qmin) / vmax;
    sym_codes(x, n, iscale, qmin, qmax, q);
    return 1.0f / iscale;
  }
  // Fan of candidate inverse scales: vmax lands near either end of the range, a little inside or
  // outside it (outside = the extreme value saturates but everything else gets finer steps).
  // 7 candidates per side; wider steps for the 16+-level ranges, where one step matters less.
  // (Denser fans were measured: they change the error by < 0.1%.)
  const int fan = 3;
  const float step = qmax >= 15 ? 0.3f : 0.2f;
  int8_t cand[256];
  float best_score = -1, best_iscale = 0;
  for (int side = 0; side < 2; ++side) {
    const float end = side == 0 ? static_cast<float>(qmin) : static_cast<float>(qmax);
    for (int k = -fan; k <= fan; ++k) {
      const float target = end + (end < 0 ? -step : step) * static_cast<float>(k);
      const float iscale = target / vmax;
      const float score = sym_codes(x, n, iscale, qmin, qmax, cand).score();
      if (score > best_score) {
        best_score = score;
        best_iscale = iscale;
      }
    }
  }
  SymScore best = sym_codes(x, n, best_iscale, qmin, qmax, q);
  float s = best.sxq / best.sqq;
  // Alternate: re-round with the fitted scale, refit; keep while it improves.
  for (int it = 0; it < 2 && s != 0; ++it) {
    const SymScore next = sym_codes(x, n, 1.0f / s, qmin, qmax, cand);
    if (!(next.score() > best.score())) break;
    for (int i = 0; i < n; ++i) q[i] = cand[i];
    best = next;
    s = best.sxq / best.sqq;
  }
  return s;
}

namespace {

// Least-squares s, b for x ~= s*q + b given codes, with the squared error.
struct AffineFit {
  float s = 0, b = 0;
  float err = -1;
};

// Rounds x to codes with (iscale, offset) and fits (s, b) to them in the same pass. The sums are
// taken over y = x - offset (offset is near the group's minimum), so a group with a large common
// offset does not drown its small residual error in cancellation.
AffineFit affine_round_and_fit(const float* x, int n, float iscale, float offset, int qmax, bool offset_nonpositive,
                               uint8_t* q) {
  float sy = 0, sq = 0, sqq = 0, syq = 0, syy = 0;
  for (int i = 0; i < n; ++i) {
    const float y = x[i] - offset;
    const float qi = quant_codef(iscale * y, 0.0f, static_cast<float>(qmax));
    q[i] = static_cast<uint8_t>(qi);
    sy += y; sq += qi; sqq += qi * qi; syq += y * qi; syy += y * y;
  }
  const float fn = static_cast<float>(n);
  const float det = fn * sqq - sq * sq;
  float s = 0, c = 0;  // y ~= s*q + c, so b = c + offset
  if (det > 0) {
    s = (fn * syq - sq * sy) / det;
    c = (sqq * sy - sq * syq) / det;
  } else {
    c = sy / fn;  // every code equal: only the offset carries information
  }
  if (offset_nonpositive && c + offset > 0) {  // pin b = 0 and refit s alone
    c = -offset;
    s = sqq > 0 ? (syq - c * sq) / sqq : 0;
  }
  if (s < 0) {  // codes anti-correlated with x (degenerate); fall back to the offset alone
    s = 0;
    c = sy / fn;
    if (offset_nonpositive && c + offset > 0) c = -offset;
  }
  AffineFit f;
  f.s = s;
  f.b = c + offset;
  // Expanded sum (y - s q - c)^2; clamped since rounding can make it slightly negative.
  const float err = syy - 2 * s * syq - 2 * c * sy + s * s * sqq + 2 * s * c * sq + fn * c * c;
  f.err = err > 0 ? err : 0;
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
    *b = xmin;
    return 0;
  }
  if (naive) {
    const float iscale = static_cast<float>(qmax) / range;
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(quant_code(iscale * (x[i] - xmin), 0, qmax));
    *b = xmin;
    return range / static_cast<float>(qmax);
  }
  uint8_t cand[256];
  AffineFit best;
  // Candidate steps from slightly coarser to slightly finer than range/qmax.
  const int fan = 4;
  const float step = qmax >= 15 ? 0.25f : 0.15f;
  for (int k = -fan; k <= fan; ++k) {
    const float iscale = (static_cast<float>(qmax) + step * static_cast<float>(k)) / range;
    const AffineFit f = affine_round_and_fit(x, n, iscale, xmin, qmax, offset_nonpositive, cand);
    if (best.err < 0 || f.err < best.err) {
      best = f;
      for (int i = 0; i < n; ++i) q[i] = cand[i];
    }
  }
  // Alternate: re-round with the fitted (s, b), refit; stop when it no longer improves.
  for (int it = 0; it < 3 && best.s > 0; ++it) {
    const AffineFit f = affine_round_and_fit(x, n, 1.0f / best.s, best.b, qmax, offset_nonpositive, cand);
    if (!(f.err < best.err)) break;
    best = f;
    for (int i = 0; i < n; ++i) q[i] = cand[i];
  }
  *b = best.b;
  return best.s;
}

namespace {

SymScore iq4_codes(const float* x, int n, float iscale, uint8_t* q) {
  SymScore s;
  for (int i = 0; i < n; ++i) {
    const int c = nearest_iq4(iscale * x[i]);
    q[i] = static_cast<uint8_t>(c);
    const float l = static_cast<float>(kIQ4Levels[c]);
    s.sxq += x[i] * l;
    s.sqq += l * l;
  }
  return s;
}

}  // namespace

float search_iq4(const float* x, int n, uint8_t* q, bool naive) {
  float amax;
  const float vmax = signed_absmax(x, n, &amax);
  if (amax < kTiny) {
    for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(nearest_iq4(0));
    return 0;
  }
  if (naive) {
    const float s = vmax / -127.0f;
    iq4_codes(x, n, 1.0f / s, q);
    return s;
  }
  // vmax near the outermost level of either side; level gaps there are ~23, so steps of 3.
  uint8_t cand[256];
  float best_score = -1, best_iscale = 0;
  for (int side = 0; side < 2; ++side) {
    const float end = side == 0 ? -127.0f : 113.0f;
    for (int k = -3; k <= 3; ++k) {
      const float target = end + (end < 0 ? -3.0f : 3.0f) * static_cast<float>(k);
      const float iscale = target / vmax;
      const float score = iq4_codes(x, n, iscale, cand).score();
      if (score > best_score) {
        best_score = score;
        best_iscale = iscale;
      }
    }
  }
  SymScore best = iq4_codes(x, n, best_iscale, q);
  float s = best.sxq / best.sqq;
  for (int it = 0; it < 2 && s != 0; ++it) {
    const SymScore next = iq4_codes(x, n, 1.0f / s, cand);
    if (!(next.score() > best.score())) break;
    for (int i = 0; i < n; ++i) q[i] = cand[i];
    best = next;
    s = best.sxq / best.sqq;
  }
  return s;
}

}  // namespace rocforge::quant
