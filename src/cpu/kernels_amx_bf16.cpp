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

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#include <cpuid.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

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

// Grow-only 64-byte aligned buffer, one per thread (thread_local).
struct Buffer {
  void* p = nullptr;
  size_t cap = 0;
  void* get(size_t bytes) {
    if (bytes > cap) {
      free(p);
      cap = (bytes + 4095) / 4096 * 4096;
      p = aligned_alloc(64, cap);
      if (!p) cap = 0;
    }
    return p;
  }
  ~Buffer() { free(p); }
};

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

// 16 x 16 dword transpose: r[i] holds dwords (i, 0..15); afterwards r[j] holds (0..15, j).
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + c]: rows 4i..4i+3 of column 4L + c in 128-bit lane L
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// Inputs [k0, k0 + 32 * steps) of weight rows [p0, p0 + 16) (rows >= rows_end zero) as B tiles: [step][hi, lo][16 pairs][16 rows]
// [2 bf16], at `out` with `stride` bytes between steps. lo is written only for F16.
void pack_panel(bool f16, const uint8_t* w, size_t rb, int64_t p0, int64_t rows_end, int64_t k0, int64_t steps,
                uint8_t* out, int64_t stride) {
  const __m512i keep_hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
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
      const __m512 a = _mm512_cvtph_ps(_mm512_castsi512_si256(raw));
      const __m512 b = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(raw, 1));
      const __m512 ah = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), keep_hi));
      const __m512 bh = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(b), keep_hi));
      hi[r] = to_bf16(ah, bh);  // exact: the low 16 bits are already zero
      lo[r] = to_bf16(_mm512_sub_ps(a, ah), _mm512_sub_ps(b, bh));  // exact: 3 bits left
    }
    transpose16(hi);
    uint8_t* dst = out + s * stride;
    for (int k = 0; k < 16; ++k) _mm512_store_si512(dst + k * 64, hi[k]);
    if (f16) {
      transpose16(lo);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(dst + kTile + k * 64, lo[k]);
    }
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

bool amx_bf16_gemm_f(GgmlType ty, const uint8_t* w, size_t rb, int64_t n, int64_t r0, int64_t r1, const float* x,
                     int64_t T, float* y, int64_t ldy) {
  const bool f16 = ty == GgmlType::F16;
  if ((!f16 && ty != GgmlType::BF16) || T < kPanelMinTokens || n % kK != 0 || r0 >= r1)
    return avx512_kernels()->gemm_f(ty, w, rb, n, r0, r1, x, T, y, ldy);
  const int64_t steps = n / kK;
  const int64_t n_blocks = ((T + kTok - 1) / kTok + 1) / 2 * 2;  // even: token blocks go in pairs
  const int64_t n_pairs = (r1 - r0 + 2 * kRows - 1) / (2 * kRows);
  const int64_t cs = steps < kChunkSteps ? steps : kChunkSteps;
  thread_local Buffer xbuf, wbuf, abuf;
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

}  // namespace

bool amx_bf16_usable() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1u)) return false;  // AMX-BF16
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1u)) return false;   // AVX512_BF16
  return true;
}

GemmFFn amx_bf16_gemm_f_fn() { return amx_bf16_usable() ? amx_bf16_gemm_f : nullptr; }

}  // namespace rocforge::cpu

#else  // built without AMX-BF16 support: F16/BF16 stay on the f32 FMA tiles

namespace rocforge::cpu {
bool amx_bf16_usable() { return false; }
GemmFFn amx_bf16_gemm_f_fn() { return nullptr; }
}  // namespace rocforge::cpu

#endif
