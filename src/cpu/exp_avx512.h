// exp_avx512.h - e^x on 16 float lanes, for the AVX-512 files of src/cpu (attention_avx512.cpp,
// ops_avx512.cpp). Include only after `#pragma GCC target(... avx512f ...)` and <immintrin.h>:
// the function is in an anonymous namespace, so each such file gets its own AVX-512 copy and none
// can be picked by code that runs at a lower ISA level.
#pragma once

namespace rocforge::cpu {
namespace {

// e^x on 16 lanes: x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor polynomial to degree 7
// (truncation < 0.35^8 / 8! = 5e-9 relative), times 2^n. Inputs are clamped to [-87, 88], so
// -inf gives a tiny positive value: callers mask lanes that must be exactly 0.
inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 split in two: exact n*hi
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace
}  // namespace rocforge::cpu
