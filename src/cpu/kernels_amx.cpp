// kernels_amx.cpp - prompt GEMM on Intel AMX tiles (TDPBSSD: 16 x 16 int32 += 16 x K int8 . K x 16
// int8). The only file built with -mamx-tile -mamx-int8 and AVX-512 flags (CMakeLists.txt); every
// entry point is reached only after cpu_features.cpp checked cpuid and got the kernel's permission
// to use tile data, so the binary still runs on AVX2-only machines.
//
// Same contract and same int8 panel as the VNNI panel GEMM (kernels_x86.inc): the weights of 16
// rows are unpacked once per call into [group][quad k/4][row 0..15][4 codes] - which is exactly
// the "VNNI" layout of a B tile (K/4 rows of 16 columns x 4 bytes) - with signed codes
// (kernels_amx_panel.inc, or build_panel + a sign flip), so one group of G = 32 (or 16: Q6_K,
// Q2_K, Q3_K) inputs is one B tile of G/4 rows. The activations are re-laid out once per call so
// that A = 16 tokens x G int8 codes is contiguous (pack_acts).
//
// Both sides have a float scale per block (weights per G, activations per 32), so the integer sum
// of each group must be scaled on its own: C = A . B (one group), stored to L1 and folded into
// 16 zmm f32 accumulators (one per token, 16 weight rows each) as cvt(C) * (w_scale * x_scale),
// plus w_min * x_sum for formats with mins, in the VNNI panel's order (bit-identical results).
// That f32 step (3 vector ops per 16 x 16 x G) costs more than the tile products (measured on a
// Sapphire Rapids VM: ~8 ns of tile work and 8-16 ns of f32 work per 16 x 16 x 32 group, which do
// not overlap); the products are issued batches ahead of the scaling regardless (panel_block).
//
// Shapes: w [rows, n] packed; a.q [T, n] int8, a.d [T, n/32]; y [T, ldy] f32.
#include "cpu/kernels_amx.h"
#include "cpu/scratch_buffer.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rocforge::cpu {
namespace {

constexpr int kRows = kAmxPanelRows;  // weight rows per panel = C tile columns
constexpr int kTok = 16;              // tokens per A tile = C tile rows

// The 64-byte LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles 0/1: A (16 tokens x G bytes); 2/3: B (G/4 quads x 64 bytes); 4..7: C (16 x 16 int32).
constexpr TileConfig make_config(int G) {
  TileConfig c{};
  c.palette = 1;
  for (int i = 0; i < 2; ++i) c.rows[i] = kTok, c.colsb[i] = static_cast<uint16_t>(G);
  for (int i = 2; i < 4; ++i) c.rows[i] = static_cast<uint8_t>(G / 4), c.colsb[i] = 64;
  for (int i = 4; i < 8; ++i) c.rows[i] = kTok, c.colsb[i] = 64;
  return c;
}
// Static storage: _tile_loadconfig's asm names only the first bytes of its operand as an input,
// so the compiler must not be left to materialise the rest on the stack.
alignas(64) constinit const TileConfig kConfig32 = make_config(32);
alignas(64) constinit const TileConfig kConfig16 = make_config(16);

// 16 tokens of activations, packed for the tiles (pack_acts): an A tile of group s (G inputs) is
// 16 rows of G bytes at stride 32, so its 512 bytes are contiguous - read in place from QActView
// the rows would sit n bytes apart, a power of two that puts all 16 in one or two L1 sets.
struct TokBlock {
  const int8_t* q;      // [n/32][16 tokens][32]
  const float* d;       // [n/32][16] per-32 scales
  const float* ds;      // [n/32][16] d * sum of the 32 codes
  const float* dsum16;  // [n/16][16] d * sum of each 16 codes
};

// Groups are issued to the tile unit in batches of 4 (C tiles 4..7; A alternates between tiles
// 0/1, B between 2/3), all products before all stores, and kAhead batches ahead of the batch whose
// sums are being scaled: a TDPBSSD result is ready only some 50 cycles after it issues, longer
// than the f32 work of one group, so a shallower pipeline leaves the vector units waiting.
constexpr int kBatch = 4, kAhead = 2, kRing = kAhead + 1;

// C tiles start at 0x4B400000 (the bits of 1.5 * 2^23) instead of 0: the int32 sum v then reads
// as the float 1.5 * 2^23 + v (exact for |v| < 2^22; a group sum is at most 32 * 127 * 127), so
// scale_group gets the float of v with one subtraction, which any vector port runs, instead of
// vcvtdq2ps, which runs only on port 0 - the port the AMX instructions issue through as well.
alignas(64) constexpr int32_t kMagicBits = 0x4B400000;
struct alignas(64) MagicTile {
  int32_t v[256];
};
constexpr MagicTile make_magic() {
  MagicTile m{};
  for (int i = 0; i < 256; ++i) m.v[i] = kMagicBits;
  return m;
}
alignas(64) constinit const MagicTile kMagic = make_magic();
const int32_t* const kMagicTile = kMagic.v;

#define RF_AMX_PRODUCT(ta, tb, tc, k)                           \
  do {                                                          \
    _tile_loadd(ta, x.q + ((g0 + (k)) * G / 32) * 512 + ((g0 + (k)) * G % 32), 32); \
    _tile_loadd(tb, codes + (g0 + (k)) * int64_t(G) * kRows, 64); \
    _tile_loadd(tc, kMagicTile, 64);                            \
    _tile_dpbssd(tc, ta, tb);                                   \
  } while (0)

// Products of groups g0 .. g0 + cnt - 1 (cnt <= 4) -> out[k][16 tokens][16 rows] int32.
template <int G>
__attribute__((always_inline)) inline void issue_batch(const int8_t* codes, const TokBlock& x, int64_t g0,
                                                       int cnt, int32_t* out) {
  RF_AMX_PRODUCT(0, 2, 4, 0);
  if (cnt > 1) RF_AMX_PRODUCT(1, 3, 5, 1);
  if (cnt > 2) RF_AMX_PRODUCT(0, 2, 6, 2);
  if (cnt > 3) RF_AMX_PRODUCT(1, 3, 7, 3);
  constexpr int kC = kTok * kRows;
  _tile_stored(4, out, 64);
  if (cnt > 1) _tile_stored(5, out + kC, 64);
  if (cnt > 2) _tile_stored(6, out + 2 * kC, 64);
  if (cnt > 3) _tile_stored(7, out + 3 * kC, 64);
}

// acc[t] (16 weight rows) += the group-s sums of tokens t = 0..15, scaled.
template <int G, bool kMin>
__attribute__((always_inline)) inline void scale_group(const int32_t* c, int64_t s, const float* scale, const float* mins, const TokBlock& x,
                        __m512 acc[kTok]) {
  const __m512 sw = _mm512_load_ps(scale + s * kRows);
  __m512 mn;
  if constexpr (kMin) mn = _mm512_load_ps(mins + s * kRows);
  const int64_t b32 = s * G / 32;
#pragma GCC unroll 16
  for (int t = 0; t < kTok; ++t) {
    const __m512 ci = _mm512_sub_ps(_mm512_castsi512_ps(_mm512_load_si512(c + t * kRows)),
                                    _mm512_castsi512_ps(_mm512_set1_epi32(kMagicBits)));
    const float dx = x.d[b32 * kTok + t];
    acc[t] = _mm512_fmadd_ps(ci, _mm512_mul_ps(sw, _mm512_set1_ps(dx)), acc[t]);
    if constexpr (kMin) {
      const float xs = G == 32 ? x.ds[b32 * kTok + t] : x.dsum16[s * kTok + t];
      acc[t] = _mm512_fmadd_ps(mn, _mm512_set1_ps(xs), acc[t]);
    }
  }
}

// 16 tokens x one 16-row panel over all n inputs -> acc[token] (f32, one lane per weight row).
// The accumulators stay in registers only if every index is a constant: out[] takes the result.
template <int G, bool kMin>
void panel_block(const int8_t* codes, const float* scale, const float* mins, int64_t n_groups, const TokBlock& x,
                 float* out /* [16 tokens][16 rows] */) {
  constexpr int kC = kTok * kRows;
  alignas(64) int32_t ring[kRing][kBatch * kC];
  __m512 acc[kTok];
#pragma GCC unroll 16
  for (int t = 0; t < kTok; ++t) acc[t] = _mm512_setzero_ps();
  const int64_t n_batches = (n_groups + kBatch - 1) / kBatch;
  auto issue = [&](int64_t b) {
    const int64_t g0 = b * kBatch;
    const int cnt = n_groups - g0 < kBatch ? static_cast<int>(n_groups - g0) : kBatch;
    issue_batch<G>(codes, x, g0, cnt, ring[b % kRing]);
  };
  for (int64_t b = 0; b < kAhead && b < n_batches; ++b) issue(b);
  for (int64_t b = 0; b < n_batches; ++b) {
    if (b + kAhead < n_batches) issue(b + kAhead);
    const int64_t g0 = b * kBatch;
    const int32_t* c = ring[b % kRing];
    if (g0 + kBatch <= n_groups) {
#pragma GCC unroll 4
      for (int k = 0; k < kBatch; ++k) scale_group<G, kMin>(c + k * kC, g0 + k, scale, mins, x, acc);
    } else {
      for (int64_t g = g0; g < n_groups; ++g) scale_group<G, kMin>(c + (g - g0) * kC, g, scale, mins, x, acc);
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < kTok; ++t) _mm512_store_ps(out + t * kRows, acc[t]);
}

// All T tokens of a, padded with zero tokens to whole 16-token blocks, in TokBlock layout.
struct PackedActs {
  int8_t* q;
  float *d, *ds, *dsum16;
  int64_t n_blocks, nb32, n16;
  TokBlock block(int64_t b) const {
    return {q + b * nb32 * kTok * 32, d + b * nb32 * kTok, ds + b * nb32 * kTok, dsum16 + b * n16 * kTok};
  }
};

// with_sums16: also d * (sum of each 16 codes), needed only by 16-wide formats with mins (Q2_K).
bool pack_acts(const QActView& a, bool with_sums16, PackedActs& p) {
  thread_local ScratchBuffer qbuf, fbuf;
  const int64_t n = a.n, nb32 = n / 32, n16 = n / 16, nblk = (a.T + kTok - 1) / kTok;
  const int64_t tp = nblk * kTok;
  auto* q = static_cast<int8_t*>(qbuf.get(static_cast<size_t>(tp * n)));
  auto* f = static_cast<float*>(fbuf.get(static_cast<size_t>(tp * (2 * nb32 + n16)) * sizeof(float)));
  if (!q || !f) return false;
  p = {q, f, f + tp * nb32, f + 2 * tp * nb32, nblk, nb32, n16};
  for (int64_t t = 0; t < tp; ++t) {
    const int64_t b = t / kTok, r = t % kTok;
    int8_t* qd = q + b * nb32 * kTok * 32 + r * 32;
    float* dd = p.d + b * nb32 * kTok + r;
    float* dsd = p.ds + b * nb32 * kTok + r;
    float* d16 = p.dsum16 + b * n16 * kTok + r;
    if (t >= a.T) {
      for (int64_t j = 0; j < nb32; ++j) {
        memset(qd + j * kTok * 32, 0, 32);
        dd[j * kTok] = 0.0f, dsd[j * kTok] = 0.0f;
      }
      for (int64_t j = 0; j < n16; ++j) d16[j * kTok] = 0.0f;
      continue;
    }
    const int8_t* qs = a.q + t * n;
    for (int64_t j = 0; j < nb32; ++j) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(qd + j * kTok * 32),
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + j * 32)));
      dd[j * kTok] = a.d[t * nb32 + j];
      dsd[j * kTok] = a.ds[t * nb32 + j];
    }
    if (with_sums16)
      for (int64_t j = 0; j < n16; ++j) d16[j * kTok] = a.d[t * nb32 + j / 2] * static_cast<float>(a.s16[t * n16 + j]);
  }
  // The tile loads' asm reads memory the compiler does not know about: finish every store first.
  asm volatile("" ::: "memory");
  return true;
}

// The next panel's packed weight rows (contiguous: rows are row_bytes apart), prefetched to L2 a
// slice per token block, so that unpacking it does not wait on DRAM (a prompt step streams every
// weight of the model from memory once).
struct Prefetch {
  const char* p;
  size_t bytes;
};

// All T tokens against one panel (rows p0 .. p0 + live).
template <int G, bool kMin>
void panel_tokens(const int8_t* codes, const float* scale, const float* mins, int64_t n_groups, const QActView& a,
                  const PackedActs& pa, int64_t p0, int live, float* y, int64_t ldy, Prefetch next) {
  const __mmask16 rows = static_cast<__mmask16>((1u << live) - 1);
  alignas(64) float out[kTok * kRows];
  const size_t slice = (next.bytes / static_cast<size_t>(pa.n_blocks) + 64) & ~size_t(63);
  for (int64_t b = 0; b < pa.n_blocks; ++b) {
    for (size_t off = b * slice; off < (b + 1) * slice && off < next.bytes; off += 64)
      _mm_prefetch(next.p + off, _MM_HINT_T1);
    const int64_t t0 = b * kTok;
    const int mt = a.T - t0 < kTok ? static_cast<int>(a.T - t0) : kTok;
    panel_block<G, kMin>(codes, scale, mins, n_groups, pa.block(b), out);
    for (int t = 0; t < mt; ++t) _mm512_mask_storeu_ps(y + (t0 + t) * ldy + p0, rows, _mm512_load_ps(out + t * kRows));
  }
}

// Heap scratch of one call (the weight panel), 64-byte aligned.
struct Scratch {
  void* p[3] = {};
  void* get(int i, size_t bytes) {
    p[i] = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p[i]) memset(p[i], 0, (bytes + 63) / 64 * 64);
    return p[i];
  }
  ~Scratch() {
    for (void* q : p) free(q);
  }
};

bool amx_gemm_panel(GgmlType t, const uint8_t* w, size_t rb, int64_t r0, int64_t r1, const QActView& a, float* y,
                    int64_t ldy) {
  if (a.block != 32 || r0 >= r1 || a.T <= 0) return false;
  const int64_t n = a.n;
  Scratch sc;
  auto* codes = static_cast<uint8_t*>(sc.get(0, static_cast<size_t>(n) * kRows));
  auto* scale = static_cast<float*>(sc.get(1, static_cast<size_t>(n / 16) * kRows * sizeof(float)));
  auto* mins = static_cast<float*>(sc.get(2, static_cast<size_t>(n / 16) * kRows * sizeof(float)));
  if (!codes || !scale || !mins) return false;

  PackedActs pa{};
  bool packed = false;

  // Outputs of several panels are staged as [T][kStageRows] and then copied to y a token at a
  // time: y rows are ldy floats apart (often > 4 KiB), so storing 16 floats per token per panel
  // straight into y costs a TLB miss and a write miss per store. The stage holds up to 512 rows
  // (2 KiB per token: 1B Q4_K_M pp512, the copies fell from ~9% to ~3% of the step's CPU time
  // against 128 rows) but at most ~1 MiB in all, so that it shares L2 with the activations.
  const int kStageRows = static_cast<int>(
      std::max<int64_t>(8 * kRows, std::min<int64_t>(32 * kRows, (int64_t(1) << 18) / a.T / kRows * kRows)));
  thread_local ScratchBuffer stage_buf;
  auto* stage = static_cast<float*>(stage_buf.get(static_cast<size_t>(a.T) * kStageRows * sizeof(float)));
  if (!stage) return false;
  int64_t stage_p0 = r0;  // first row held in stage
  auto flush_stage = [&](int64_t end) {
    for (int64_t t = 0; t < a.T; ++t)
      memcpy(y + t * ldy + stage_p0, stage + t * kStageRows, static_cast<size_t>(end - stage_p0) * sizeof(float));
    stage_p0 = end;
  };

  int loaded = 0;  // group size of the tile configuration loaded on this thread by this call
  bool ok = true;
  for (int64_t p0 = r0; p0 < r1; p0 += kRows) {
    int group = 0;
    bool has_min = false;
    const bool fast = avx512_build_amx_panel(t, w, rb, p0, r1, n, reinterpret_cast<int8_t*>(codes), scale, mins,
                                             &group, &has_min);
    if (!fast && !avx512_build_panel(t, w, rb, p0, r1, n, codes, scale, mins, &group, &has_min)) {
      ok = false;
      break;
    }
    if (group != 16 && group != 32) {
      ok = false;
      break;
    }
    if (!packed) {  // once the first panel tells the group shape
      if (!pack_acts(a, group == 16 && has_min, pa)) {
        ok = false;
        break;
      }
      packed = true;
    }
    // build_panel's +128 unsigned codes -> signed codes (tdpbssd: signed x signed).
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int64_t i = 0; !fast && i < n * kRows; i += 64) {
      auto* p = reinterpret_cast<__m512i*>(codes + i);
      _mm512_store_si512(p, _mm512_xor_si512(_mm512_load_si512(p), flip));
    }
    asm volatile("" ::: "memory");
    if (loaded != group) {
      // Per call (not per thread once): cheap, and the thread pool's workers are shared with
      // code that may run between two calls.
      _tile_loadconfig(group == 32 ? &kConfig32 : &kConfig16);
      loaded = group;
    }
    const int live = r1 - p0 < kRows ? static_cast<int>(r1 - p0) : kRows;
    const int64_t next_rows = r1 - p0 - live < kRows ? r1 - p0 - live : kRows;
    const Prefetch next{reinterpret_cast<const char*>(w + (p0 + live) * rb), static_cast<size_t>(next_rows) * rb};
    const auto* sc8 = reinterpret_cast<const int8_t*>(codes);
    const int64_t ng = n / group;
    if (group == 32) {
      if (has_min) panel_tokens<32, true>(sc8, scale, mins, ng, a, pa, p0 - stage_p0, live, stage, kStageRows, next);
      else panel_tokens<32, false>(sc8, scale, mins, ng, a, pa, p0 - stage_p0, live, stage, kStageRows, next);
    } else {
      if (has_min) panel_tokens<16, true>(sc8, scale, mins, ng, a, pa, p0 - stage_p0, live, stage, kStageRows, next);
      else panel_tokens<16, false>(sc8, scale, mins, ng, a, pa, p0 - stage_p0, live, stage, kStageRows, next);
    }
    if (p0 + live - stage_p0 == kStageRows || p0 + live == r1) flush_stage(p0 + live);
  }
  // Tile state released: the OS no longer saves 8 KiB of tile data for this thread per switch.
  if (loaded) _tile_release();
  return ok;
}

}  // namespace

const KernelTable* amx_kernels() {
  static const KernelTable table = [] {
    KernelTable k = *avx512_kernels();
    k.name = "avx512+amx";
    k.gemm_panel = amx_gemm_panel;
    if (GemmFFn f = amx_bf16_gemm_f_fn()) k.gemm_f = f;  // F16/BF16 prompts on AMX-BF16
    return k;
  }();
  return &table;
}

}  // namespace rocforge::cpu

#else  // built without AMX support: the AVX-512 panel GEMM stays in use

namespace rocforge::cpu {
const KernelTable* amx_kernels() { return nullptr; }
}  // namespace rocforge::cpu

#endif
