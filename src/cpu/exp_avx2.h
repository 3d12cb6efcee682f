// exp_avx2.h - e^x on 8 float lanes, for the AVX2 files of src/cpu (attention_avx2.cpp,
// ops_avx2.cpp). Include only after `#pragma GCC target("avx2,fma,...")` and <immintrin.h>: the
// function is in an anonymous namespace, so each such file gets its own AVX2 copy and none can be
// picked by code compiled for baseline x86-64.
#pragma once

namespace rocforge::cpu {
namespace {

// e^x on 8 lanes, the same method as exp16 (exp_avx512.h): x = n ln2 + r, |r| <= ln2/2, e^r by its
// Taylor polynomial to degree 7 (truncation < 5e-9 relative), times 2^n. AVX2 has no scalef, so 2^n
// is built in the exponent field: (n + 127) << 23. The clamp to [-87, 88] keeps n in [-126, 127],
// where that is a normal float; -inf therefore gives a tiny positive value: callers mask lanes that
// must be exactly 0.
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 split in two: exact n*hi
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

}  // namespace
}  // namespace rocforge::cpu
