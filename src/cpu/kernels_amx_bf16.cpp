// kernels_amx_bf16.cpp - prompt GEMM for F16 / BF16 weights on Intel AMX-BF16 tiles (TDPBF16PS:
// 16 x 16 f32 += 16 x 32 bf16 . 32 x 16 bf16, products exact, sums in f32). Built with AMX and
// AVX-512 BF16 flags (CMakeLists.txt); reached only through amx_kernels() after cpu_features.cpp
// checked cpuid and got the kernel's permission to use tile data, and only when cpuid also
// reports AMX-BF16 and AVX512_BF16 (amx_bf16_usable below).
//
// Accuracy: bf16 keeps 8 significand bits, so a plain bf16 product would lose most of an f32
// result. Instead every operand is split exactly or nearly so into two bf16 parts and the three
// significant cross products are summed in the f32 tile accumulators:
//   F16 weight w (11-bit significand, exponent inside bf16's range): w = w_hi + w_lo exactly,
//     w_hi = w with the f32 significand cut to its top 8 bits, w_lo = w - w_hi (3 bits, exact).
//   BF16 weight: w = w_hi, w_lo = 0 (one product fewer).
//   f32 activation x: x_hi = bf16(x) (round to nearest), x_lo = bf16(x - x_hi); x - x_hi is exact
//     in f32 and |x - x_hi - x_lo| <= 2^-9 * 2^-9 |x| = 2^-18 |x| (16 significand bits kept).
//   w.x ~= w_hi.x_lo + w_hi.x_hi + w_lo.x_hi; the dropped w_lo.x_lo is <= 2^-8 * 2^-9 = 2^-17 of
//   |w x|. Per product the error is so at most ~2^-16 |w x|, below the f32 summation error of a
//   long row and far below llama.cpp's own f16 path (x rounded to f16: 2^-11 |x|).
//
// Layout. A = activations (16 tokens x 32 inputs, row-major: x_hi / x_lo tiles packed once per
// call), B = weights in the tile unit's pair-interleaved ("VNNI") layout [16 input pairs][16 rows]
// [2] (built once per 16-row panel per call: F16 -> split -> a 16 x 16 dword transpose), C =
// [16 tokens][16 rows] f32, so the result rows are y rows as they are. 2 token blocks x 2 panels
// per step: C tiles 0..3, B tiles 4/5 (two panels), A tiles 6/7 (two token blocks); per 32 inputs
// 8 tile loads feed 12 products (F16) or 6 loads feed 8 (BF16).
//
// Shapes: w [rows, n] F16/BF16 (row_bytes apart); x [T, n] f32; y [T, ldy] f32.
#include "cpu/kernels_amx.h"
#include "cpu/scratch_buffer.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#include <cpuid.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "quant/blocks.h"
#include "cpu/transpose_avx512.h"

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rocforge::cpu {
namespace {

constexpr int kRows = 16;     // weight rows per panel = C tile columns
constexpr int kTok = 16;      // tokens per block = C tile rows
constexpr int kK = 32;        // inputs per tile step (16 bf16 pairs)
constexpr int kTile = 1024;   // bytes of one A or B tile (16 x 64)

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
// Every tile (A, B, C) is 16 rows of 64 bytes.
constexpr TileConfig make_config() {
  TileConfig c{};
  c.palette = 1;
  for (int i = 0; i < 8; ++i) c.rows[i] = 16, c.colsb[i] = 64;
  return c;
}
// Static storage: _tile_loadconfig's asm names only the first bytes of its operand as an input.
alignas(64) constinit const TileConfig kConfig = make_config();

// bf16 of 32 f32 values (lo: inputs 0..15, hi: 16..31), in input order, round to nearest even.
inline __m512i to_bf16(__m512 lo, __m512 hi) { return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)); }
// The f32 value of 16 bf16 values.
inline __m512 from_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

// Inputs [k0, k0 + 32 * steps) of tokens [0, T) as A tiles: [token block][step][hi, lo][16 tokens]
// [32 bf16]; tokens >= T (padding up to n_blocks * 16) are zero.
void pack_x(const float* x, int64_t n, int64_t T, int64_t n_blocks, int64_t k0, int64_t steps, uint8_t* out) {
  for (int64_t t = 0; t < n_blocks * kTok; ++t) {
    uint8_t* dst = out + (t / kTok) * steps * 2 * kTile + (t % kTok) * 64;
    if (t >= T) {
      for (int64_t s = 0; s < steps; ++s) {
        _mm512_store_si512(dst + s * 2 * kTile, _mm512_setzero_si512());
        _mm512_store_si512(dst + s * 2 * kTile + kTile, _mm512_setzero_si512());
      }
      continue;
    }
    const float* xt = x + t * n + k0;
    for (int64_t s = 0; s < steps; ++s) {
      const __m512 a = _mm512_loadu_ps(xt + s * kK), b = _mm512_loadu_ps(xt + s * kK + 16);
      const __m512i hi = to_bf16(a, b);
      const __m512 ra = _mm512_sub_ps(a, from_bf16(_mm512_castsi512_si256(hi)));
      const __m512 rb = _mm512_sub_ps(b, from_bf16(_mm512_extracti64x4_epi64(hi, 1)));
      _mm512_store_si512(dst + s * 2 * kTile, hi);
      _mm512_store_si512(dst + s * 2 * kTile + kTile, to_bf16(ra, rb));
    }
  }
}

// Exact f32 values with at most 16 significant bits (F16 weights, Q6_K integer codes) as
// hi + lo bf16, both exact: hi keeps the top 8 significand bits (truncation), lo the rest.
inline void split_exact(__m512 a, __m512 b, __m512i& hi, __m512i& lo) {
  const __m512i keep_hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), keep_hi));
  const __m512 bh = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), keep_hi));
  hi = to_bf16(ah, bh);  // exact: the low 16 bits are already zero
  lo = to_bf16(_mm512_sub_ps(a, ah), _mm512_sub_ps(b, bh));  // exact: what is left fits 8 bits
}

// Transposes the 16 rows' hi (and lo) vectors of one step into B tiles at dst (hi) / dst + kTile.
inline void store_step(__m512i hi[16], __m512i lo[16], bool with_lo, uint8_t* dst) {
  transpose16(hi);
  for (int k = 0; k < 16; ++k) _mm512_store_si512(dst + k * 64, hi[k]);
  if (with_lo) {
    transpose16(lo);
    for (int k = 0; k < 16; ++k) _mm512_store_si512(dst + kTile + k * 64, lo[k]);
  }
}

// Inputs [k0, k0 + 32 * steps) of weight rows [p0, p0 + 16) (rows >= rows_end zero) as B tiles: [step][hi, lo][16 pairs][16 rows]
// [2 bf16], at `out` with `stride` bytes between steps. lo is written only for F16.
void pack_panel(bool f16, const uint8_t* w, size_t rb, int64_t p0, int64_t rows_end, int64_t k0, int64_t steps,
                uint8_t* out, int64_t stride) {
  for (int64_t s = 0; s < steps; ++s) {
    __m512i hi[16], lo[16];
    for (int r = 0; r < kRows; ++r) {
      if (p0 + r >= rows_end) {
        hi[r] = lo[r] = _mm512_setzero_si512();
        continue;
      }
      const __m512i raw = _mm512_loadu_si512(w + (p0 + r) * rb + (k0 + s * kK) * 2);
      if (!f16) {
        hi[r] = raw;
        continue;
      }
      split_exact(_mm512_cvtph_ps(_mm512_castsi512_si256(raw)), _mm512_cvtph_ps(_mm512_extracti64x4_epi64(raw, 1)),
                  hi[r], lo[r]);
    }
    store_step(hi, lo, f16, out + s * stride);
  }
}

// Q6_K: w = d * sc[e / 16] * q[e] per 256-input super-block (q 6-bit signed, sc int8, d f16). The
// integer sc * q (|.| <= 4096, 13 bits) goes into the tiles exactly as hi + lo; d is applied to
// each super-block's f32 sums afterwards (q6k_gemm), so no per-16 scaling inside the products.
// Inputs 32 s .. 32 s + 31 of a block (s = 0..7) as f32 integers (layout: quant/decode.cpp).
inline void q6k_step(const quant::BlockQ6_K& b, int s, __m512& a, __m512& c) {
  const int h = s / 4, i = s % 4;  // half of the block, quarter of the half (ql / qh bit pair)
  const __m256i L = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32 * (i & 1)));
  const __m256i H = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  const __m256i low = _mm256_and_si256(i < 2 ? L : _mm256_srli_epi16(L, 4), m4);
  __m256i top;  // qh bits 2i, 2i+1 moved to bits 4, 5 (16-bit shifts, then a per-byte mask)
  switch (i) {
    case 0: top = _mm256_slli_epi16(H, 4); break;
    case 1: top = _mm256_slli_epi16(H, 2); break;
    case 2: top = H; break;
    default: top = _mm256_srli_epi16(H, 2); break;
  }
  const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_and_si256(top, m30)), _mm256_set1_epi8(32));
  const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
  const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
  a = _mm512_mul_ps(q0, _mm512_set1_ps(static_cast<float>(b.scales[2 * s])));  // exact integers
  c = _mm512_mul_ps(q1, _mm512_set1_ps(static_cast<float>(b.scales[2 * s + 1])));
}

// Super-block sb of Q6_K rows [p0, p0 + 16) as 8 steps of B tiles (hi, lo), and each row's d.
void pack_panel_q6k(const uint8_t* w, size_t rb, int64_t p0, int64_t rows_end, int64_t sb, uint8_t* out,
                    int64_t stride, float* d) {
  const quant::BlockQ6_K* blk[kRows];
  for (int r = 0; r < kRows; ++r) {
    blk[r] = p0 + r < rows_end ? reinterpret_cast<const quant::BlockQ6_K*>(w + (p0 + r) * rb) + sb : nullptr;
    d[r] = blk[r] ? _cvtsh_ss(blk[r]->d) : 0.0f;
  }
  for (int s = 0; s < 8; ++s) {
    __m512i hi[16], lo[16];
    for (int r = 0; r < kRows; ++r) {
      if (!blk[r]) {
        hi[r] = lo[r] = _mm512_setzero_si512();
        continue;
      }
      __m512 a, c;
      q6k_step(*blk[r], s, a, c);
      split_exact(a, c, hi[r], lo[r]);
    }
    store_step(hi, lo, true, out + s * stride);
  }
}

// C tiles 0..3 = (token block a, panel 0), (a, 1), (b, 0), (b, 1): loaded from acc (4 f32 tiles,
// or zero when acc is null), plus `steps` steps of products; the caller stores them.
// wp: panel pair [step][panel 0, 1][hi, lo][tile]; xa / xb: token blocks [step][hi, lo][tile].
template <bool kF16>
inline void pair_block(const uint8_t* wp, const uint8_t* xa, const uint8_t* xb, int64_t steps, const float* acc) {
  constexpr int64_t kWStep = 4 * kTile, kXStep = 2 * kTile;
  if (acc) {
    _tile_loadd(0, acc, 64);
    _tile_loadd(1, acc + 256, 64);
    _tile_loadd(2, acc + 512, 64);
    _tile_loadd(3, acc + 768, 64);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t s = 0; s < steps; ++s) {
    const uint8_t* w = wp + s * kWStep;
    const uint8_t* a = xa + s * kXStep;
    const uint8_t* b = xb + s * kXStep;
    // w_hi . x_lo (small terms first), then w_hi . x_hi, then w_lo . x_hi.
    _tile_loadd(4, w, 64);
    _tile_loadd(5, w + 2 * kTile, 64);
    _tile_loadd(6, a + kTile, 64);
    _tile_loadd(7, b + kTile, 64);
    _tile_dpbf16ps(0, 6, 4);
    _tile_dpbf16ps(1, 6, 5);
    _tile_dpbf16ps(2, 7, 4);
    _tile_dpbf16ps(3, 7, 5);
    _tile_loadd(6, a, 64);
    _tile_loadd(7, b, 64);
    _tile_dpbf16ps(0, 6, 4);
    _tile_dpbf16ps(1, 6, 5);
    _tile_dpbf16ps(2, 7, 4);
    _tile_dpbf16ps(3, 7, 5);
    if constexpr (kF16) {
      _tile_loadd(4, w + kTile, 64);
      _tile_loadd(5, w + 3 * kTile, 64);
      _tile_dpbf16ps(0, 6, 4);
      _tile_dpbf16ps(1, 6, 5);
      _tile_dpbf16ps(2, 7, 4);
      _tile_dpbf16ps(3, 7, 5);
    }
  }
}

// Inputs are taken kChunkSteps steps (256) at a time: the chunk's weight tiles of one panel pair
// (8 steps x 4 KiB = 32 KiB) stay in L1 while every token block pair streams past, and the chunk's
// activation tiles of all tokens (T x 256 x 4 bytes: 512 KiB at T = 512) stay in L2. With whole
// rows instead (n = 2048: 256 KiB of weight tiles, 4 MiB of activations) each step's 8 KiB of tile
// loads came from L2 / L3 and the kernel ran at ~135 GMAC/s per core on the dev VM. The partial
// sums are kept between chunks as f32 tiles (acc): stored and reloaded exactly, so the result does
// not depend on the chunking.
constexpr int64_t kChunkSteps = 8;

bool q6k_gemm(const uint8_t* w, size_t rb, int64_t n, int64_t r0, int64_t r1, const float* x, int64_t T, float* y,
              int64_t ldy);

bool amx_bf16_gemm_f(GgmlType ty, const uint8_t* w, size_t rb, int64_t n, int64_t r0, int64_t r1, const float* x,
                     int64_t T, float* y, int64_t ldy) {
  if (ty == GgmlType::Q6_K && T >= kPanelMinTokens && n % 256 == 0 && r0 < r1 &&
      q6k_gemm(w, rb, n, r0, r1, x, T, y, ldy))
    return true;
  const bool f16 = ty == GgmlType::F16;
  if ((!f16 && ty != GgmlType::BF16) || T < kPanelMinTokens || n % kK != 0 || r0 >= r1)
    return avx512_kernels()->gemm_f(ty, w, rb, n, r0, r1, x, T, y, ldy);
  const int64_t steps = n / kK;
  const int64_t n_blocks = ((T + kTok - 1) / kTok + 1) / 2 * 2;  // even: token blocks go in pairs
  const int64_t n_pairs = (r1 - r0 + 2 * kRows - 1) / (2 * kRows);
  const int64_t cs = steps < kChunkSteps ? steps : kChunkSteps;
  thread_local ScratchBuffer xbuf, wbuf, abuf;
  auto* xp = static_cast<uint8_t*>(xbuf.get(static_cast<size_t>(n_blocks * cs * 2 * kTile)));
  auto* wp = static_cast<uint8_t*>(wbuf.get(static_cast<size_t>(cs * 4 * kTile)));
  // acc: [panel pair][token block pair][4 tiles of 16 x 16 f32]; only needed with several chunks.
  float* acc = nullptr;
  if (steps > cs) acc = static_cast<float*>(abuf.get(static_cast<size_t>(n_pairs * (n_blocks / 2) * 4 * kTile)));
  if (!xp || !wp || (steps > cs && !acc)) return avx512_kernels()->gemm_f(ty, w, rb, n, r0, r1, x, T, y, ldy);
  alignas(64) float c[4][kTok * kRows];
  _tile_loadconfig(&kConfig);
  for (int64_t s0 = 0; s0 < steps; s0 += cs) {
    const int64_t ns = steps - s0 < cs ? steps - s0 : cs;
    const bool first = s0 == 0, last = s0 + ns == steps;
    pack_x(x, n, T, n_blocks, s0 * kK, ns, xp);
    for (int64_t pp = 0; pp < n_pairs; ++pp) {
      const int64_t p0 = r0 + pp * 2 * kRows;
      // [step][panel 0, 1][hi, lo]: the B tiles of one step adjacent.
      pack_panel(f16, w, rb, p0, r1, s0 * kK, ns, wp, 4 * kTile);
      pack_panel(f16, w, rb, p0 + kRows, r1, s0 * kK, ns, wp + 2 * kTile, 4 * kTile);
      asm volatile("" ::: "memory");  // tile loads read what the stores above wrote
      const int live0 = r1 - p0 < kRows ? static_cast<int>(r1 - p0) : kRows;
      const int live1 = r1 - p0 - kRows <= 0 ? 0 : r1 - p0 - kRows < kRows ? static_cast<int>(r1 - p0 - kRows) : kRows;
      for (int64_t b = 0; b < n_blocks; b += 2) {
        const uint8_t* xa = xp + b * ns * 2 * kTile;
        float* ab = acc ? acc + ((pp * (n_blocks / 2) + b / 2) * 4) * (kTok * kRows) : nullptr;
        if (f16) pair_block<true>(wp, xa, xa + ns * 2 * kTile, ns, first ? nullptr : ab);
        else pair_block<false>(wp, xa, xa + ns * 2 * kTile, ns, first ? nullptr : ab);
        if (!last) {
          _tile_stored(0, ab, 64);
          _tile_stored(1, ab + 256, 64);
          _tile_stored(2, ab + 512, 64);
          _tile_stored(3, ab + 768, 64);
          continue;
        }
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        _tile_stored(2, c[2], 64);
        _tile_stored(3, c[3], 64);
        asm volatile("" ::: "memory");
        for (int h = 0; h < 2; ++h) {
          const int64_t t0 = (b + h) * kTok;
          for (int t = 0; t < kTok && t0 + t < T; ++t) {
            float* yt = y + (t0 + t) * ldy + p0;
            _mm512_mask_storeu_ps(yt, static_cast<__mmask16>((1u << live0) - 1), _mm512_load_ps(c[2 * h] + t * kRows));
            if (live1)
              _mm512_mask_storeu_ps(yt + kRows, static_cast<__mmask16>((1u << live1) - 1),
                                    _mm512_load_ps(c[2 * h + 1] + t * kRows));
          }
        }
      }
    }
  }
  _tile_release();
  return true;
}

// Q6_K rows [r0, r1) x T tokens: per super-block (8 steps) the products of sc * q and x go into
// zeroed C tiles, and acc[t][r] += d[r] * C[t][r] in f32 (one FMA per 16 outputs per 256 inputs,
// where the int8 AMX GEMM scales every 16 inputs). Activations are not quantized: x is split into
// hi + lo bf16 as for F16 weights.
bool q6k_gemm(const uint8_t* w, size_t rb, int64_t n, int64_t r0, int64_t r1, const float* x, int64_t T, float* y,
              int64_t ldy) {
  constexpr int64_t kSb = 8;  // steps per super-block
  const int64_t n_sb = n / 256;
  const int64_t n_blocks = ((T + kTok - 1) / kTok + 1) / 2 * 2;
  const int64_t n_pairs = (r1 - r0 + 2 * kRows - 1) / (2 * kRows);
  thread_local ScratchBuffer xbuf, wbuf, abuf;
  auto* xp = static_cast<uint8_t*>(xbuf.get(static_cast<size_t>(n_blocks * kSb * 2 * kTile)));
  auto* wp = static_cast<uint8_t*>(wbuf.get(static_cast<size_t>(kSb * 4 * kTile)));
  // acc: [panel pair][token block pair][4 tiles of 16 tokens x 16 rows] f32
  auto* acc = static_cast<float*>(abuf.get(static_cast<size_t>(n_pairs * (n_blocks / 2) * 4 * kTile)));
  if (!xp || !wp || !acc) return false;
  alignas(64) float c[4][kTok * kRows];
  alignas(64) float d[2][kRows];
  _tile_loadconfig(&kConfig);
  for (int64_t sb = 0; sb < n_sb; ++sb) {
    const bool first = sb == 0, last = sb + 1 == n_sb;
    pack_x(x, n, T, n_blocks, sb * 256, kSb, xp);
    for (int64_t pp = 0; pp < n_pairs; ++pp) {
      const int64_t p0 = r0 + pp * 2 * kRows;
      pack_panel_q6k(w, rb, p0, r1, sb, wp, 4 * kTile, d[0]);
      pack_panel_q6k(w, rb, p0 + kRows, r1, sb, wp + 2 * kTile, 4 * kTile, d[1]);
      asm volatile("" ::: "memory");
      const __m512 dv[2] = {_mm512_load_ps(d[0]), _mm512_load_ps(d[1])};
      const int live0 = r1 - p0 < kRows ? static_cast<int>(r1 - p0) : kRows;
      const int live1 = r1 - p0 - kRows <= 0 ? 0 : r1 - p0 - kRows < kRows ? static_cast<int>(r1 - p0 - kRows) : kRows;
      for (int64_t b = 0; b < n_blocks; b += 2) {
        const uint8_t* xa = xp + b * kSb * 2 * kTile;
        pair_block<true>(wp, xa, xa + kSb * 2 * kTile, kSb, nullptr);
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        _tile_stored(2, c[2], 64);
        _tile_stored(3, c[3], 64);
        asm volatile("" ::: "memory");
        float* ab = acc + ((pp * (n_blocks / 2) + b / 2) * 4) * (kTok * kRows);
        for (int q = 0; q < 4; ++q) {  // tile q: token block b + q / 2, panel q % 2
          const int64_t t0 = (b + q / 2) * kTok;
          const int live = q % 2 ? live1 : live0;
          for (int t = 0; t < kTok; ++t) {
            float* at = ab + q * kTok * kRows + t * kRows;
            const __m512 ct = _mm512_load_ps(c[q] + t * kRows);
            const __m512 v = first ? _mm512_mul_ps(ct, dv[q % 2]) : _mm512_fmadd_ps(ct, dv[q % 2], _mm512_load_ps(at));
            if (!last) _mm512_store_ps(at, v);
            else if (live && t0 + t < T)
              _mm512_mask_storeu_ps(y + (t0 + t) * ldy + p0 + (q % 2) * kRows, static_cast<__mmask16>((1u << live) - 1), v);
          }
        }
      }
    }
  }
  _tile_release();
  return true;
}

}  // namespace

bool amx_bf16_usable() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1u)) return false;  // AMX-BF16
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1u)) return false;   // AVX512_BF16
  return true;
}

GemmFFn amx_bf16_gemm_f_fn() { return amx_bf16_usable() ? amx_bf16_gemm_f : nullptr; }

bool amx_bf16_takes(GgmlType t, int64_t T) {
  static const bool usable = amx_bf16_usable();
  return usable && t == GgmlType::Q6_K && T >= kPanelMinTokens;
}

}  // namespace rocforge::cpu

#else  // built without AMX-BF16 support: F16/BF16 stay on the f32 FMA tiles

namespace rocforge::cpu {
bool amx_bf16_usable() { return false; }
GemmFFn amx_bf16_gemm_f_fn() { return nullptr; }
bool amx_bf16_takes(GgmlType, int64_t) { return false; }
}  // namespace rocforge::cpu

#endif
