// attention_avx512.cpp - the tiled prompt attention (attention.h: attend_tile) for AVX-512.
//
// A tile is R = n_tok x group query rows (several tokens of one sequence, all query heads sharing
// one kv head) against the cache in blocks of 16 positions:
//   K block -> f32, transposed to kt[D][16]   (read and converted once for all R rows)
//   s[r][0..15] = q[r] . kt                   (D FMAs per row across 16 positions at once)
//   online softmax per row on the 16-lane vector (running max m, denominator l, rescaled O)
//   O[r] += P[r][j] * V[j]                    (V block converted once, rows taken in pairs)
// The per-token kernel (attend_impl in kernels_x86.inc) computes one dot product per position and
// reduces it horizontally, converts every K/V row for `group` rows only, and calls expf per score;
// for prompts that made attention ~18% of a 1B pp512 step.
// Causality is a per-token lane mask: token i sees positions < n_pos[i].
//
// Shapes: q/out rows of D floats (token i, head g at + i * stride + g * D); K/V cache rows of
// row_elems f16, f32 or Q8_0 values (dequantized as the blocks are read), this kv head at head_off.
#if defined(__x86_64__)
#include <cstdint>

#include "cpu/attention.h"
#include "cpu/kernels.h"

#pragma GCC push_options
// GCC 12 flags its own _mm512 helpers (undefined-vector idiom) as uninitialised: not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#include <immintrin.h>

#include "cpu/exp_avx512.h"
#include "cpu/transpose_avx512.h"

namespace rocforge::cpu {
namespace {

constexpr int kB = kAttnTileBlock;  // 16 positions = one zmm of scores

// Elements [c0, c0 + 16) of this kv head in the cache row of position j, as f32. A Q8_0 row is
// blocks of 32 (f16 scale, 32 int8 codes): c0 is a multiple of 16, so the 16 lie in one block.
template <KvType T>
inline __m512 load16(const AttnTileArgs& a, const void* base, int64_t j, int c0) {
  const uint8_t* p = kv_head_row(base, T, a.row_elems, a.head_off, a.slots[j]);
  if constexpr (T == KvType::F16)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * c0)));
  else if constexpr (T == KvType::F32)
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p) + c0);
  const uint8_t* blk = p + (c0 / kKvQ8Block) * kKvQ8BlockBytes;
  uint16_t d;
  __builtin_memcpy(&d, blk, 2);
  const __m512 codes = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + c0 % kKvQ8Block))));
  return _mm512_mul_ps(codes, _mm512_set1_ps(_cvtsh_ss(d)));
}

// Score rows s[r] = q[r] . kt for NR rows (two chains per row over d, for FMA latency).
template <int NR, int D>
inline void scores(const float* const q[NR], const float* kt, __m512 s[NR]) {
  __m512 acc[2][NR];
  for (int r = 0; r < NR; ++r) acc[0][r] = acc[1][r] = _mm512_setzero_ps();
  for (int d = 0; d < D; d += 2) {
    const __m512 k0 = _mm512_load_ps(kt + d * kB), k1 = _mm512_load_ps(kt + (d + 1) * kB);
    for (int r = 0; r < NR; ++r) {
      acc[0][r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d]), k0, acc[0][r]);
      acc[1][r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d + 1]), k1, acc[1][r]);
    }
  }
  for (int r = 0; r < NR; ++r) s[r] = _mm512_add_ps(acc[0][r], acc[1][r]);
}

template <int DV, KvType T>  // D = 16 * DV
void tile_kernel(const AttnTileArgs& a, float* scratch) {
  constexpr int D = 16 * DV;
  const int G = a.group, R = a.n_tok * G;
  float* O = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));  // [R][D]
  float* P = O + static_cast<int64_t>(R) * D;  // [R][16] probabilities of the current block
  float* kt = P + static_cast<int64_t>(R) * kB;  // [D][16] K block, transposed
  float* vb = kt + D * kB;                     // [16][D] V block
  float* m = vb + kB * D;                      // [R] running max
  float* l = m + R;                            // [R] running denominator
  int64_t max_pos = 0;
  for (int i = 0; i < a.n_tok; ++i) max_pos = a.n_pos[i] > max_pos ? a.n_pos[i] : max_pos;
  for (int64_t i = 0; i < static_cast<int64_t>(R) * D; i += 16) _mm512_store_ps(O + i, _mm512_setzero_ps());
  for (int r = 0; r < R; ++r) m[r] = -__builtin_inff(), l[r] = 0.0f;

  for (int64_t j0 = 0; j0 < max_pos; j0 += kB) {
    const int nb = max_pos - j0 < kB ? static_cast<int>(max_pos - j0) : kB;
    for (int c = 0; c < DV; ++c) {
      __m512i rows[16];
      for (int j = 0; j < kB; ++j)
        rows[j] = j < nb ? _mm512_castps_si512(load16<T>(a, a.k, j0 + j, 16 * c)) : _mm512_setzero_si512();
      transpose16(rows);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(kt + (16 * c + k) * kB, rows[k]);
    }
    for (int j = 0; j < nb; ++j)
      for (int c = 0; c < DV; ++c) _mm512_store_ps(vb + j * D + 16 * c, load16<T>(a, a.v, j0 + j, 16 * c));

    for (int tok = 0; tok < a.n_tok; ++tok) {
      const int64_t lim = a.n_pos[tok] - j0;  // this token sees lanes j < lim
      float* Pt = P + static_cast<int64_t>(tok) * G * kB;
      if (lim <= 0) {  // the whole block is in this token's future
        for (int g = 0; g < G; ++g) _mm512_store_ps(Pt + g * kB, _mm512_setzero_ps());
        continue;
      }
      const __mmask16 valid = lim >= kB ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << lim) - 1);
      const float* qt = a.q + tok * a.q_stride;
      for (int g = 0; g < G; g += 4) {
        const int nr = G - g < 4 ? G - g : 4;
        __m512 s[4];
        const float* q[4] = {qt + g * D, qt + (g + (nr > 1)) * D, qt + (g + 2 * (nr > 2)) * D, qt + (g + 3 * (nr > 3)) * D};
        if (nr == 4) scores<4, D>(q, kt, s);
        else for (int r = 0; r < nr; ++r) scores<1, D>(&q[r], kt, &s[r]);
        for (int r = 0; r < nr; ++r) {
          const int row = tok * G + g + r;
          const __m512 sv = _mm512_mul_ps(s[r], _mm512_set1_ps(a.scale));
          const float bm = _mm512_mask_reduce_max_ps(valid, sv);
          const float mnew = bm > m[row] ? bm : m[row];
          const float corr = __builtin_expf(m[row] - mnew);  // 0 on this row's first block
          const __m512 p = _mm512_maskz_mov_ps(valid, exp16(_mm512_sub_ps(sv, _mm512_set1_ps(mnew))));
          l[row] = l[row] * corr + _mm512_reduce_add_ps(p);
          m[row] = mnew;
          _mm512_store_ps(Pt + (g + r) * kB, p);
          if (corr != 1.0f) {
            float* o = O + static_cast<int64_t>(row) * D;
            for (int c = 0; c < DV; ++c) _mm512_store_ps(o + 16 * c, _mm512_mul_ps(_mm512_load_ps(o + 16 * c), _mm512_set1_ps(corr)));
          }
        }
      }
    }

    // O += P V, two rows at a time so each V vector feeds two FMAs.
    int r = 0;
    for (; r + 2 <= R; r += 2) {
      float* o0 = O + static_cast<int64_t>(r) * D;
      float* o1 = o0 + D;
      __m512 acc0[DV], acc1[DV];
      for (int c = 0; c < DV; ++c) acc0[c] = _mm512_load_ps(o0 + 16 * c), acc1[c] = _mm512_load_ps(o1 + 16 * c);
      for (int j = 0; j < nb; ++j) {
        const __m512 p0 = _mm512_set1_ps(P[r * kB + j]), p1 = _mm512_set1_ps(P[(r + 1) * kB + j]);
        for (int c = 0; c < DV; ++c) {
          const __m512 v = _mm512_load_ps(vb + j * D + 16 * c);
          acc0[c] = _mm512_fmadd_ps(p0, v, acc0[c]);
          acc1[c] = _mm512_fmadd_ps(p1, v, acc1[c]);
        }
      }
      for (int c = 0; c < DV; ++c) _mm512_store_ps(o0 + 16 * c, acc0[c]), _mm512_store_ps(o1 + 16 * c, acc1[c]);
    }
    for (; r < R; ++r) {
      float* o0 = O + static_cast<int64_t>(r) * D;
      __m512 acc0[DV];
      for (int c = 0; c < DV; ++c) acc0[c] = _mm512_load_ps(o0 + 16 * c);
      for (int j = 0; j < nb; ++j) {
        const __m512 p0 = _mm512_set1_ps(P[r * kB + j]);
        for (int c = 0; c < DV; ++c) acc0[c] = _mm512_fmadd_ps(p0, _mm512_load_ps(vb + j * D + 16 * c), acc0[c]);
      }
      for (int c = 0; c < DV; ++c) _mm512_store_ps(o0 + 16 * c, acc0[c]);
    }
  }

  for (int tok = 0; tok < a.n_tok; ++tok)
    for (int g = 0; g < G; ++g) {
      const int row = tok * G + g;
      const __m512 inv = _mm512_set1_ps(1.0f / l[row]);
      float* dst = a.out + tok * a.out_stride + g * D;
      for (int c = 0; c < DV; ++c)
        _mm512_storeu_ps(dst + 16 * c, _mm512_mul_ps(_mm512_load_ps(O + static_cast<int64_t>(row) * D + 16 * c), inv));
    }
}

template <int DV>
bool for_kv_type(const AttnTileArgs& a, float* scratch) {
  switch (a.kv_type) {
    case KvType::F16: tile_kernel<DV, KvType::F16>(a, scratch); return true;
    case KvType::F32: tile_kernel<DV, KvType::F32>(a, scratch); return true;
    case KvType::Q8_0: tile_kernel<DV, KvType::Q8_0>(a, scratch); return true;
  }
  return false;
}

}  // namespace

bool avx512_attend_tile(const AttnTileArgs& a, float* scratch) {
  for (int i = 0; i < a.n_tok; ++i)
    if (a.n_pos[i] < 1) return false;  // nothing to attend to: leave it to the per-token path
  switch (a.D) {
    case 32: return for_kv_type<2>(a, scratch);
    case 64: return for_kv_type<4>(a, scratch);
    case 128: return for_kv_type<8>(a, scratch);
    default: return false;
  }
}

}  // namespace rocforge::cpu
#pragma GCC pop_options

#else

#include "cpu/kernels.h"

namespace rocforge::cpu {
bool avx512_attend_tile(const AttnTileArgs&, float*) { return false; }
}  // namespace rocforge::cpu

#endif
