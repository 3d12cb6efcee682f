// ops_avx2.cpp - AVX2 versions of elementwise ops of ops.h (ops.cpp dispatches to them at the
// AVX2 level).
//   swiglu: the scalar loop calls expf once per element (8192 per token and layer on a 1B model);
//   here 8 lanes at a time with exp8 (exp_avx2.h), as ops_avx512.cpp does with 16.
#if defined(__x86_64__)
#include <cstdint>

#include "cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#include "cpu/exp_avx2.h"

namespace rocforge::cpu {
namespace {

// silu(g) * u = g / (1 + e^-g) * u on 8 lanes. e^-g saturates (exp8 clamps): g << 0 gives
// g / ~6e37 ~ 0, g >> 0 gives g.
inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

}  // namespace

void avx2_swiglu(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    // Tail of 1..7 elements: lanes k < n - i are loaded and stored, the rest masked off.
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), lane);
    const __m256 g = _mm256_maskload_ps(gate + i, m), u = _mm256_maskload_ps(up + i, m);
    _mm256_maskstore_ps(gate + i, m, swiglu8(g, u));
  }
}

}  // namespace rocforge::cpu
#pragma GCC pop_options

#else

#include "cpu/kernels.h"

namespace rocforge::cpu {
void avx2_swiglu(float*, const float*, int64_t) {}  // never called: no AVX2 level off x86
}  // namespace rocforge::cpu

#endif
