// attention_avx2.cpp - the tiled prompt attention (attention.h: attend_tile) for AVX2 + FMA + F16C.
//
// The same tiling as attention_avx512.cpp, on 8-lane ymm registers: a tile is R = n_tok x group
// query rows (several tokens of one sequence, all query heads sharing one kv head) against the
// cache in blocks of 16 positions, each block's scores held as two ymm halves per row:
//   K block -> f32, transposed to kt[D][16]   (two 8 x 8 transposes per 8 columns, once for all R rows)
//   s[r][0..15] = q[r] . kt                   (2 x D FMAs per row, no horizontal sum per position)
//   online softmax per row on the two halves  (running max m, denominator l, rescaled O)
//   O[r] += P[r][j] * V[j]                    (V block converted once; 2 rows x 32 columns per pass,
//                                              as 16 ymm registers cannot hold a whole D = 128 row)
// The per-token kernel (attend_impl in kernels_x86.inc) takes one dot product per position with a
// horizontal reduction, converts every K/V row for `group` rows only and calls expf per score.
// Causality is a per-token lane mask: token i sees positions < n_pos[i].
//
// Shapes: q/out rows of D floats (token i, head g at + i * stride + g * D); K/V cache rows of
// row_elems f16, f32 or Q8_0 values (dequantized as the blocks are read), this kv head at head_off.
#if defined(__x86_64__)
#include <cstdint>

#include "cpu/attention.h"
#include "cpu/kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#include "cpu/exp_avx2.h"

namespace rocforge::cpu {
namespace {

constexpr int kB = kAttnTileBlock;  // 16 positions = two ymm of scores
constexpr int kW = 8;               // lanes per ymm

// 8 x 8 transpose of 32-bit lanes: r[i] holds (i, 0..7); afterwards r[j] holds (0..7, j).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // (2i,0)(2i+1,0)(2i,1)(2i+1,1) | cols 4,5
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // cols 2,3 | cols 6,7
  }
  for (int i = 0; i < 2; ++i) {  // u[4i + c]: rows 4i..4i+3 of column c (low half), c + 4 (high half)
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// Elements [c0, c0 + 8) of this kv head in the cache row of position j, as f32. A Q8_0 row is
// blocks of 32 (f16 scale, 32 int8 codes): c0 is a multiple of 8, so the 8 lie in one block.
template <KvType T>
inline __m256 load8(const AttnTileArgs& a, const void* base, int64_t j, int c0) {
  const uint8_t* p = kv_head_row(base, T, a.row_elems, a.head_off, a.slots[j]);
  if constexpr (T == KvType::F16)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * c0)));
  else if constexpr (T == KvType::F32)
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + c0);
  const uint8_t* blk = p + (c0 / kKvQ8Block) * kKvQ8BlockBytes;
  uint16_t d;
  __builtin_memcpy(&d, blk, 2);
  const __m256 codes = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + c0 % kKvQ8Block))));
  return _mm256_mul_ps(codes, _mm256_set1_ps(_cvtsh_ss(d)));
}

inline float hmax8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float hsum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// Score rows s[r][h] = q[r] . kt[:, 8h .. 8h + 7] for NR rows; the two halves are independent
// chains, so NR = 4 keeps 8 FMAs in flight.
template <int NR, int D>
inline void scores(const float* const q[NR], const float* kt, __m256 s[NR][2]) {
  __m256 acc[NR][2];
  for (int r = 0; r < NR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int d = 0; d < D; ++d) {
    const __m256 k0 = _mm256_load_ps(kt + d * kB), k1 = _mm256_load_ps(kt + d * kB + kW);
    for (int r = 0; r < NR; ++r) {
      const __m256 qd = _mm256_broadcast_ss(q[r] + d);
      acc[r][0] = _mm256_fmadd_ps(qd, k0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(qd, k1, acc[r][1]);
    }
  }
  for (int r = 0; r < NR; ++r) s[r][0] = acc[r][0], s[r][1] = acc[r][1];
}

// O[r0 .. r0 + NR) += P V for columns [c0, c0 + 32): 4 ymm per row, so NR = 2 uses 8 accumulators
// and each V vector feeds two FMAs.
template <int NR, int D>
inline void accumulate_pv(float* O, const float* P, const float* vb, int r0, int c0, int nb) {
  __m256 acc[NR][4];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < 4; ++c) acc[r][c] = _mm256_load_ps(O + static_cast<int64_t>(r0 + r) * D + c0 + kW * c);
  for (int j = 0; j < nb; ++j) {
    __m256 p[NR];
    for (int r = 0; r < NR; ++r) p[r] = _mm256_broadcast_ss(P + (r0 + r) * kB + j);
    for (int c = 0; c < 4; ++c) {
      const __m256 v = _mm256_load_ps(vb + j * D + c0 + kW * c);
      for (int r = 0; r < NR; ++r) acc[r][c] = _mm256_fmadd_ps(p[r], v, acc[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < 4; ++c) _mm256_store_ps(O + static_cast<int64_t>(r0 + r) * D + c0 + kW * c, acc[r][c]);
}

template <int D, KvType T>  // D a multiple of 32
void tile_kernel(const AttnTileArgs& a, float* scratch) {
  constexpr int DV = D / kW;  // ymm per row
  const int G = a.group, R = a.n_tok * G;
  float* O = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 31) & ~uintptr_t(31));  // [R][D]
  float* P = O + static_cast<int64_t>(R) * D;    // [R][16] probabilities of the current block
  float* kt = P + static_cast<int64_t>(R) * kB;  // [D][16] K block, transposed
  float* vb = kt + D * kB;                       // [16][D] V block
  float* m = vb + kB * D;                        // [R] running max
  float* l = m + R;                              // [R] running denominator
  int64_t max_pos = 0;
  for (int i = 0; i < a.n_tok; ++i) max_pos = a.n_pos[i] > max_pos ? a.n_pos[i] : max_pos;
  for (int64_t i = 0; i < static_cast<int64_t>(R) * D; i += kW) _mm256_store_ps(O + i, _mm256_setzero_ps());
  for (int r = 0; r < R; ++r) m[r] = -__builtin_inff(), l[r] = 0.0f;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_inff());

  for (int64_t j0 = 0; j0 < max_pos; j0 += kB) {
    const int nb = max_pos - j0 < kB ? static_cast<int>(max_pos - j0) : kB;
    // kt[(8c + k) * 16 + 8h + i] = K[j0 + 8h + i][8c + k]; positions past nb are zero.
    for (int c = 0; c < DV; ++c)
      for (int h = 0; h < 2; ++h) {
        __m256 rows[kW];
        for (int i = 0; i < kW; ++i) rows[i] = kW * h + i < nb ? load8<T>(a, a.k, j0 + kW * h + i, kW * c) : _mm256_setzero_ps();
        transpose8(rows);
        for (int k = 0; k < kW; ++k) _mm256_store_ps(kt + (kW * c + k) * kB + kW * h, rows[k]);
      }
    for (int j = 0; j < nb; ++j)
      for (int c = 0; c < DV; ++c) _mm256_store_ps(vb + j * D + kW * c, load8<T>(a, a.v, j0 + j, kW * c));

    for (int tok = 0; tok < a.n_tok; ++tok) {
      const int64_t lim = a.n_pos[tok] - j0;  // this token sees lanes j < lim
      float* Pt = P + static_cast<int64_t>(tok) * G * kB;
      if (lim <= 0) {  // the whole block is in this token's future
        for (int g = 0; g < G; ++g) _mm256_store_ps(Pt + g * kB, _mm256_setzero_ps()), _mm256_store_ps(Pt + g * kB + kW, _mm256_setzero_ps());
        continue;
      }
      const int lim16 = lim >= kB ? kB : static_cast<int>(lim);
      const __m256 valid0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(lim16), lane));
      const __m256 valid1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(lim16 - kW), lane));
      const float* qt = a.q + tok * a.q_stride;
      for (int g = 0; g < G; g += 4) {
        const int nr = G - g < 4 ? G - g : 4;
        __m256 s[4][2];
        const float* q[4] = {qt + g * D, qt + (g + (nr > 1)) * D, qt + (g + 2 * (nr > 2)) * D, qt + (g + 3 * (nr > 3)) * D};
        if (nr == 4) scores<4, D>(q, kt, s);
        else for (int r = 0; r < nr; ++r) scores<1, D>(&q[r], kt, &s[r]);
        for (int r = 0; r < nr; ++r) {
          const int row = tok * G + g + r;
          const __m256 sc = _mm256_set1_ps(a.scale);
          const __m256 s0 = _mm256_mul_ps(s[r][0], sc), s1 = _mm256_mul_ps(s[r][1], sc);
          // Masked lanes read -inf, so they never raise the max (lane 0 is always valid here).
          const float bm = hmax8(_mm256_max_ps(_mm256_blendv_ps(neg_inf, s0, valid0), _mm256_blendv_ps(neg_inf, s1, valid1)));
          const float mnew = bm > m[row] ? bm : m[row];
          const float corr = __builtin_expf(m[row] - mnew);  // 0 on this row's first block
          const __m256 mv = _mm256_set1_ps(mnew);
          const __m256 p0 = _mm256_and_ps(valid0, exp8(_mm256_sub_ps(s0, mv)));
          const __m256 p1 = _mm256_and_ps(valid1, exp8(_mm256_sub_ps(s1, mv)));
          l[row] = l[row] * corr + hsum8(_mm256_add_ps(p0, p1));
          m[row] = mnew;
          _mm256_store_ps(Pt + (g + r) * kB, p0);
          _mm256_store_ps(Pt + (g + r) * kB + kW, p1);
          if (corr != 1.0f) {
            float* o = O + static_cast<int64_t>(row) * D;
            const __m256 cv = _mm256_set1_ps(corr);
            for (int c = 0; c < DV; ++c) _mm256_store_ps(o + kW * c, _mm256_mul_ps(_mm256_load_ps(o + kW * c), cv));
          }
        }
      }
    }

    // O += P V in 32-column strips, two rows at a time.
    for (int c0 = 0; c0 < D; c0 += 4 * kW) {
      int r = 0;
      for (; r + 2 <= R; r += 2) accumulate_pv<2, D>(O, P, vb, r, c0, nb);
      if (r < R) accumulate_pv<1, D>(O, P, vb, r, c0, nb);
    }
  }

  for (int tok = 0; tok < a.n_tok; ++tok)
    for (int g = 0; g < G; ++g) {
      const int row = tok * G + g;
      const __m256 inv = _mm256_set1_ps(1.0f / l[row]);
      float* dst = a.out + tok * a.out_stride + g * D;
      for (int c = 0; c < DV; ++c)
        _mm256_storeu_ps(dst + kW * c, _mm256_mul_ps(_mm256_load_ps(O + static_cast<int64_t>(row) * D + kW * c), inv));
    }
}

template <int D>
bool for_kv_type(const AttnTileArgs& a, float* scratch) {
  switch (a.kv_type) {
    case KvType::F16: tile_kernel<D, KvType::F16>(a, scratch); return true;
    case KvType::F32: tile_kernel<D, KvType::F32>(a, scratch); return true;
    case KvType::Q8_0: tile_kernel<D, KvType::Q8_0>(a, scratch); return true;
  }
  return false;
}

}  // namespace

bool avx2_attend_tile(const AttnTileArgs& a, float* scratch) {
  for (int i = 0; i < a.n_tok; ++i)
    if (a.n_pos[i] < 1) return false;  // nothing to attend to: leave it to the per-token path
  switch (a.D) {
    case 32: return for_kv_type<32>(a, scratch);
    case 64: return for_kv_type<64>(a, scratch);
    case 128: return for_kv_type<128>(a, scratch);
    default: return false;
  }
}

}  // namespace rocforge::cpu
#pragma GCC pop_options

#else

#include "cpu/kernels.h"

namespace rocforge::cpu {
bool avx2_attend_tile(const AttnTileArgs&, float*) { return false; }
}  // namespace rocforge::cpu

#endif
