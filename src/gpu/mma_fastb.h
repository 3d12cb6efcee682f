// mma_fastb.h - B fragments of the small-batch GEMMs built straight from the weight codes, in f16
// arithmetic: FastB<Fmt<T>> for every quantized format. NVIDIA's matmul_mma.hip and the portable
// matmul_small.hip (AMD's; every matrix unit) both use it; the f16x2 operations are PTX on NVIDIA and
// packed _Float16 vectors on AMD (v_pk_*), both rounding to nearest.
//
// A lane gets, for one of its rows, the eight elements 32c + 8t .. +8 of chunk c ("part t") as four
// f16x2 registers paired (e0, e2), (e1, e3), (e4, e6), (e5, e7) - the order its X is packed in (in
// matmul_mma.hip the lane is (g = lane / 4, t = lane % 4) and the row 8j + g). `pair(row, c0, c1, t,
// b0, b1)` fills chunks c0 and c1 (c1 = c0 + 1, or c0 again at a row's odd end: only b0 is used then).
#pragma once

#include "gpu/quant_formats.h"

#include <type_traits>

namespace rocforge::gpu {

#if defined(__HIP__) || defined(__HIPCC__)
typedef _Float16 RfHalf2 __attribute__((ext_vector_type(2)));
__device__ inline RfHalf2 as_h2(uint32_t v) { return __builtin_bit_cast(RfHalf2, v); }
__device__ inline uint32_t from_h2(RfHalf2 v) { return __builtin_bit_cast(uint32_t, v); }
// Two floats as one f16x2 word, lo in the low half, each rounded to nearest.
__device__ inline uint32_t pack_h2(float lo, float hi) {
  return from_h2(RfHalf2{static_cast<_Float16>(lo), static_cast<_Float16>(hi)});
}
__device__ inline uint32_t h2_sub(uint32_t a, uint32_t b) { return from_h2(as_h2(a) - as_h2(b)); }
__device__ inline uint32_t h2_mul(uint32_t a, uint32_t b) { return from_h2(as_h2(a) * as_h2(b)); }
__device__ inline uint32_t h2_fma(uint32_t a, uint32_t b, uint32_t c) {
  return from_h2(__builtin_elementwise_fma(as_h2(a), as_h2(b), as_h2(c)));
}
#else
// Two floats as one f16x2 word, lo in the low half (cvt.rn.f16x2.f32 puts its first source high).
__device__ inline uint32_t pack_h2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
#endif

// ---- B fragments straight from the codes, in f16 arithmetic (FastB below).
//
// Why: with the weights decoded to fp32 (dequant8) and then rounded, the loop issued ~5 instructions
// a weight and was issue-bound (ncu, H100, 8B q/k/v at 16 tokens: 9.1 cycles an issued instruction at
// 6 warps a scheduler, DRAM 21% busy). Here a code of a byte lane becomes an exact f16 integer with
// one logic op (0x6400 | v is the half 1024 + v for v < 1024), one subtraction removes 1024 and the
// format's offset, and one f16 multiply (or fma) applies the scale: ~2 instructions a weight.
// A register takes byte lanes 0 and 2 (or 1 and 3) of a word, so the lane's eight elements pair as
// (e0, e2), (e1, e3), (e4, e6), (e5, e7) - the k order inside an mma step is free as long as X is
// packed alike (mma_chunk_pair's `kStride2`).
// Q4_0, Q6_K, Q8_0: (code - offset) * d is rounded once, as the fp32 path rounds it: bit-identical
// where d is the format's own f16 (Q4_0, Q8_0); Q6_K's d * sc and Q4_K's d * sc and dmin * m are
// rounded to f16 first, a second rounding well inside matmul_f16's f16 contract.
#if !(defined(__HIP__) || defined(__HIPCC__))
__device__ inline uint32_t h2_sub(uint32_t a, uint32_t b) {
  uint32_t r;
  asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
__device__ inline uint32_t h2_mul(uint32_t a, uint32_t b) {
  uint32_t r;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
__device__ inline uint32_t h2_fma(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}
#endif
// The codes (w >> 8k) & m of byte lanes 0 and 2 (k = 0) or 1 and 3 (k = 1) as exact f16 integers
// minus `off2` (both halves 1024 + the format's offset); `flip` xors the codes first (Q8_0's sign bit).
template <uint32_t M, uint32_t Flip = 0u>
__device__ inline void code_pairs(uint32_t w, uint32_t off2, uint32_t& p02, uint32_t& p13) {
  p02 = h2_sub(((w & M) ^ Flip) | 0x64006400u, off2);
  p13 = h2_sub((((w >> 8) & M) ^ Flip) | 0x64006400u, off2);
}
__device__ inline uint32_t h2_dup(uint16_t h) { return static_cast<uint32_t>(h) * 0x00010001u; }
// A part's four fragment registers from its two code words (elements 0-3 and 4-7, a byte each
// under mask M): (code - offset) s2, or (code - offset) s2 + c2 for the formats with a min.
template <uint32_t M, uint32_t Flip = 0u>
__device__ inline void part_scaled(uint32_t w0, uint32_t w1, uint32_t off2, uint32_t s2, uint32_t b[4]) {
  code_pairs<M, Flip>(w0, off2, b[0], b[1]);
  code_pairs<M, Flip>(w1, off2, b[2], b[3]);
#pragma unroll
  for (int i = 0; i < 4; ++i) b[i] = h2_mul(b[i], s2);
}
template <uint32_t M>
__device__ inline void part_affine(uint32_t w0, uint32_t w1, uint32_t off2, uint32_t s2, uint32_t c2, uint32_t b[4]) {
  code_pairs<M>(w0, off2, b[0], b[1]);
  code_pairs<M>(w1, off2, b[2], b[3]);
#pragma unroll
  for (int i = 0; i < 4; ++i) b[i] = h2_fma(b[i], s2, c2);
}

template <class F>
struct FastB : std::false_type {};

// The formats whose chunks decode on their own: a pair is two chunks.
template <class Impl>
struct FastBChunks : std::true_type {
  __device__ static void pair(const uint8_t* row, int c0, int c1, int t, uint32_t b0[4], uint32_t b1[4]) {
    Impl::chunk(row, c0, t, b0);
    Impl::chunk(row, c1, t, b1);
  }
};

// Q4_0 (both layouts): part t is nibble t / 2 of qs[8 (t % 2) ..), x = (q - 8) d.
template <class L>
struct FastBQ40 : FastBChunks<FastBQ40<L>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * (t & 1), u);
    const uint32_t d2 = h2_dup(ld_u16(L::d(row, c)));
    const int sh = 4 * (t >> 1);
    constexpr uint32_t kOff = 0x64086408u;  // 1032: 1024 + 8
    part_scaled<0x000f000fu>(u[0] >> sh, u[1] >> sh, kOff, d2, b);
  }
};
template <>
struct FastB<Fmt<kQ4_0>> : FastBQ40<B32Plain<16>> {};
template <>
struct FastB<Fmt<kQ4_0_G8>> : FastBQ40<B32Group8<16>> {};

// Q8_0 (both layouts): part t is qs[8t ..), int8; (byte ^ 0x80) is q + 128.
template <class L>
struct FastBQ80 : FastBChunks<FastBQ80<L>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * t, u);
    const uint32_t d2 = h2_dup(ld_u16(L::d(row, c)));
    constexpr uint32_t kOff = 0x64806480u;  // 1152: 1024 + 128
    part_scaled<0x00ff00ffu, 0x00800080u>(u[0], u[1], kOff, d2, b);
  }
};
template <>
struct FastB<Fmt<kQ8_0>> : FastBQ80<B32Plain<32>> {};
template <>
struct FastB<Fmt<kQ8_0_G8>> : FastBQ80<B32Group8<32>> {};

// Q6_K (both layouts): the format's 6-bit codes (codes8), x = (q - 32) d sc.
template <class F>
struct FastBQ6 : FastBChunks<FastBQ6<F>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    uint32_t w0, w1;
    float d;
    F::codes8(row, c, t, w0, w1, d);
    const uint32_t d2 = pack_h2(d, d);
    constexpr uint32_t kOff = 0x64206420u;  // 1056: 1024 + 32
    part_scaled<0x00ff00ffu>(w0, w1, kOff, d2, b);
  }
};
template <>
struct FastB<Fmt<kQ6_K>> : FastBQ6<Fmt<kQ6_K>> {};
template <>
struct FastB<Fmt<kQ6_K_G8>> : FastBQ6<Fmt<kQ6_K_G8>> {};

// Q4_K / Q5_K: chunks c0 (even) and c0 + 1 share their super-block's run of qs (low / high
// nibbles) and one scale pair: the header is decoded once for both. x = d sc q - dmin m.
// kpair_fragments takes the lane's codes of both chunks (codes[h]: chunk c0 + h, elements 0-3 and
// 4-7 a byte each under mask M, as code_pairs reads them) and the header hd of pair j.
template <uint32_t M>
__device__ inline void kpair_fragments(const uint4& hd, int j, const uint32_t codes[2][2], uint32_t b0[4],
                                       uint32_t b1[4]) {
  int sc0, sc1, m0, m1;
  k4_pair_scale_min(hd, j, sc0, sc1, m0, m1);
  const float d = rf_half_to_float(hd.x & 0xffffu), dmin = rf_half_to_float(hd.x >> 16);
  constexpr uint32_t kOff = 0x64006400u;  // 1024
  uint32_t* out[2] = {b0, b1};
  const float a[2] = {d * sc0, d * sc1}, mn[2] = {dmin * m0, dmin * m1};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    part_affine<M>(codes[h][0], codes[h][1], kOff, pack_h2(a[h], a[h]), pack_h2(-mn[h], -mn[h]), out[h]);
  }
}
template <>
struct FastB<Fmt<kQ4_K>> : std::true_type {
  __device__ static void pair(const uint8_t* row, int c0, int, int t, uint32_t b0[4], uint32_t b1[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c0 >> 3) * Fmt<kQ4_K>::kBlockBytes;
    const int j = (c0 & 7) >> 1;
    const uint2 q = *reinterpret_cast<const uint2*>(blk + 16 + 32 * j + 8 * t);
    const uint32_t codes[2][2] = {{q.x, q.y}, {q.x >> 4, q.y >> 4}};
    kpair_fragments<0x000f000fu>(*reinterpret_cast<const uint4*>(blk), j, codes, b0, b1);
  }
};
// Q5_K: Q4_K's nibbles and header plus a fifth bit, bit s of qh[l] for element l of chunk s.
template <>
struct FastB<Fmt<kQ5_K>> : std::true_type {
  __device__ static void pair(const uint8_t* row, int c0, int, int t, uint32_t b0[4], uint32_t b1[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c0 >> 3) * Fmt<kQ5_K>::kBlockBytes;
    const int s0 = c0 & 7, j = s0 >> 1;
    const uint2 q = *reinterpret_cast<const uint2*>(blk + 48 + 32 * j + 8 * t);
    const uint2 qh = *reinterpret_cast<const uint2*>(blk + 16 + 8 * t);
    uint32_t codes[2][2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      codes[h][0] = ((q.x >> (4 * h)) & 0x0f0f0f0fu) | (((qh.x >> (s0 + h)) & 0x01010101u) << 4);
      codes[h][1] = ((q.y >> (4 * h)) & 0x0f0f0f0fu) | (((qh.y >> (s0 + h)) & 0x01010101u) << 4);
    }
    kpair_fragments<0x00ff00ffu>(*reinterpret_cast<const uint4*>(blk), j, codes, b0, b1);
  }
};


// ---- The other formats (their parts used to come from the 32-element dequant: every lane decoded
// its whole chunk in fp32, four times the work, and read X's fp32 rows. H100, 8B gate/up at 16
// tokens, with the staged kernel: q3_k 344 -> 57 us, q2_k 226 -> 51, iq4_xs 215 -> 69, iq4_nl 277 ->
// 68, mxfp4 416 -> 76, q4_1 141 -> 59, q5_0 219 -> 67, q5_1 203 -> 66).

// Q4_1 {half d, m; u8 qs[16]} (20 bytes, 4-byte aligned): Q4_0's parts, x = q d + m (one f16 fma).
template <>
struct FastB<Fmt<kQ4_1>> : FastBChunks<FastB<Fmt<kQ4_1>>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c) * Fmt<kQ4_1>::kBlockBytes;
    uint32_t u[2];
    ld_2w<4>(blk + 4 + 8 * (t & 1), u);
    const uint32_t dm = ld_u32(blk);
    const uint32_t d2 = h2_dup(dm & 0xffffu), m2 = h2_dup(dm >> 16);
    const int sh = 4 * (t >> 1);
    part_affine<0x000f000fu>(u[0] >> sh, u[1] >> sh, 0x64006400u, d2, m2, b);
  }
};

// Q5_0 / Q5_1: Q4_0's parts plus a fifth bit, bit e of the block's qh word for element e (so bits
// 8t .. +8 for part t), put above each nibble. Q5_0 {half d; u8 qh[4]; u8 qs[16]} (22 bytes, 2-byte
// aligned): x = (q - 16) d. Q5_1 {half d, m; u8 qh[4]; u8 qs[16]} (24 bytes, 8-byte aligned):
// x = q d + m.
__device__ inline void q5_codes(const uint32_t u[2], uint32_t qh, int t, uint32_t& w0, uint32_t& w1) {
  const int sh = 4 * (t >> 1);
  const uint32_t hb = qh >> (8 * t);
  w0 = ((u[0] >> sh) & 0x0f0f0f0fu) | bits_to_b4(hb & 15u);
  w1 = ((u[1] >> sh) & 0x0f0f0f0fu) | bits_to_b4((hb >> 4) & 15u);
}
template <>
struct FastB<Fmt<kQ5_0>> : FastBChunks<FastB<Fmt<kQ5_0>>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c) * Fmt<kQ5_0>::kBlockBytes;
    uint32_t u[2], w0, w1;
    ld_2w<2>(blk + 6 + 8 * (t & 1), u);
    q5_codes(u, ld_u32_a2(blk + 2), t, w0, w1);
    const uint32_t d2 = h2_dup(ld_u16(blk));
    constexpr uint32_t kOff = 0x64106410u;  // 1040: 1024 + 16
    part_scaled<0x001f001fu>(w0, w1, kOff, d2, b);
  }
};
template <>
struct FastB<Fmt<kQ5_1>> : FastBChunks<FastB<Fmt<kQ5_1>>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c) * Fmt<kQ5_1>::kBlockBytes;
    uint32_t u[2], hd[2], w0, w1;
    ld_2w<8>(blk + 8 + 8 * (t & 1), u);
    ld_2w<8>(blk, hd);  // d | m << 16, qh
    q5_codes(u, hd[1], t, w0, w1);
    const uint32_t d2 = h2_dup(hd[0] & 0xffffu), m2 = h2_dup(hd[0] >> 16);
    part_affine<0x001f001fu>(w0, w1, 0x64006400u, d2, m2, b);
  }
};

// The code-book formats (IQ4_NL, IQ4_XS, MXFP4): a part's nibbles become int8 entries through
// lut16_s8 (byte permutes, no memory), then Q8_0's exact conversion; `tab` is the book as 4 words.
__device__ inline void book_fragments(uint32_t u0, uint32_t u1, int t, const uint32_t tab[4], uint32_t d2,
                                      uint32_t b[4]) {
  const int sh = 4 * (t >> 1);
  const uint32_t v0 = lut16_s8((u0 >> sh) & 0x0f0f0f0fu, tab), v1 = lut16_s8((u1 >> sh) & 0x0f0f0f0fu, tab);
  constexpr uint32_t kOff = 0x64806480u;  // 1152: 1024 + 128
  part_scaled<0x00ff00ffu, 0x00800080u>(v0, v1, kOff, d2, b);
}

// IQ4_NL {half d; u8 qs[16]} (18 bytes, 2-byte aligned): Q4_0's parts through the IQ4 book, x = v d.
template <>
struct FastB<Fmt<kIQ4_NL>> : FastBChunks<FastB<Fmt<kIQ4_NL>>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c) * Fmt<kIQ4_NL>::kBlockBytes;
    uint32_t u[2];
    ld_2w<2>(blk + 2 + 8 * (t & 1), u);
    const uint32_t tab[4] = {kIq4W0, kIq4W1, kIq4W2, kIq4W3};
    book_fragments(u[0], u[1], t, tab, h2_dup(ld_u16(blk)), b);
  }
};

// MXFP4 {u8 e; u8 qs[16]} (17 bytes, no alignment): x = v 2^(e - 128), v the doubled E2M1 book. The
// lane's 8 qs bytes come from the aligned words that hold them (as the int8 path reads them). The
// scale is the exact f16 power of two for e - 128 in [-24, 15] - bit-identical to the fp32 path
// there; below, it is 0 (every weight under 12 * 2^-25, which f16 rounds to 2^-24 at most); above,
// 2^15 (weights past f16's range, which the fp32 path rounds to infinity) so a zero code stays 0.
__device__ inline uint32_t mxfp4_scale_h2(uint32_t e) {
  const uint32_t h = e >= 114u ? (e <= 143u ? (e - 113u) << 10 : 0x7800u) : (e >= 104u ? 1u << (e - 104u) : 0u);
  return h * 0x00010001u;
}
template <>
struct FastB<Fmt<kMXFP4>> : FastBChunks<FastB<Fmt<kMXFP4>>> {
  __device__ static void chunk(const uint8_t* row, int c, int t, uint32_t b[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c) * Fmt<kMXFP4>::kBlockBytes;
    const uintptr_t a = reinterpret_cast<uintptr_t>(blk + 1 + 8 * (t & 1));
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~static_cast<uintptr_t>(3));
    const uint32_t sh = 8u * static_cast<uint32_t>(a & 3);
    const uint32_t w0 = w[0], w1 = w[1], w2 = sh ? w[2] : 0u;
    const uint32_t u0 = __funnelshift_r(w0, w1, sh), u1 = __funnelshift_r(w1, w2, sh);
    const uint32_t tab[4] = {kMxW0, kMxW1, kMxW2, kMxW3};
    book_fragments(u0, u1, t, tab, mxfp4_scale_h2(blk[0]), b);
  }
};

// IQ4_XS {half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]} (136 bytes, 8-byte aligned): chunk s
// is IQ4_NL's part layout over qs[16s ..) with the 6-bit scale ls(s) (stored + 32); x = v d ls, d ls
// rounded to f16 first (as Q6_K's d sc). Chunks c0 (even) and c0 + 1 share the 8-byte header.
template <>
struct FastB<Fmt<kIQ4_XS>> : std::true_type {
  __device__ static void pair(const uint8_t* row, int c0, int, int t, uint32_t b0[4], uint32_t b1[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c0 >> 3) * Fmt<kIQ4_XS>::kBlockBytes;
    const int s0 = c0 & 7;
    uint32_t hd[2], q0[2], q1[2];
    ld_2w<8>(blk, hd);
    ld_2w<8>(blk + 8 + 16 * s0 + 8 * (t & 1), q0);
    ld_2w<8>(blk + 24 + 16 * s0 + 8 * (t & 1), q1);
    const float d = rf_half_to_float(hd[0] & 0xffffu);
    const uint32_t tab[4] = {kIq4W0, kIq4W1, kIq4W2, kIq4W3};
    uint32_t* out[2] = {b0, b1};
    const uint32_t* q[2] = {q0, q1};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int s = s0 + h;
      const int ls = static_cast<int>(((hd[1] >> (4 * s)) & 15u) | (((hd[0] >> (16 + 2 * s)) & 3u) << 4)) - 32;
      const float dl = d * static_cast<float>(ls);
      book_fragments(q[h][0], q[h][1], t, tab, pack_h2(dl, dl), out[h]);
    }
  }
};

// Q2_K {u8 scales[16]; u8 qs[64]; half d, dmin} (84 bytes, 4-byte aligned): chunk s = 4n + j is
// 2-bit plane j of qs[32n ..), so chunks c0 (j even) and c0 + 1 read the same 8 bytes of part t;
// part t's 16-element group is 8n + 2j + t / 2: x = d sc q - dmin m (sc, m: the scale byte's low and
// high nibble; d sc and dmin m rounded to f16 first, as Q4_K's).
template <>
struct FastB<Fmt<kQ2_K>> : std::true_type {
  __device__ static void pair(const uint8_t* row, int c0, int, int t, uint32_t b0[4], uint32_t b1[4]) {
    const uint8_t* blk = row + static_cast<size_t>(c0 >> 3) * Fmt<kQ2_K>::kBlockBytes;
    const int n = (c0 & 7) >> 2, j0 = c0 & 3;
    uint32_t q[2];
    ld_2w<4>(blk + 16 + 32 * n + 8 * t, q);
    const uint32_t sc4 = ld_u32(blk + 8 * n + 2 * j0);  // the scale bytes of planes j0, j0 + 1
    const uint32_t dd = ld_u32(blk + 80);
    const float d = rf_half_to_float(dd & 0xffffu), dmin = rf_half_to_float(dd >> 16);
    uint32_t* out[2] = {b0, b1};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int sh = 2 * (j0 + h);
      const uint32_t sc = (sc4 >> (8 * (2 * h + (t >> 1)))) & 0xffu;
      const float a = d * static_cast<float>(sc & 15u), mn = dmin * static_cast<float>(sc >> 4);
      part_affine<0x00030003u>(q[0] >> sh, q[1] >> sh, 0x64006400u, pack_h2(a, a), pack_h2(-mn, -mn), out[h]);
    }
  }
};

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d} (both layouts, quant_fmt_kquants.h): Q2_K's
// planes plus a third bit, bit 4n + j of hmask[l] for element l of the chunk (a clear bit subtracts
// 4): x = d sc (q - 4) with q = the 3 bits, d sc rounded to f16 first. Part t's 6-bit scale i =
// 8n + 2j + t / 2 (stored + 32): low 4 bits are nibble n of scales[2j + t / 2], high 2 bits are bits
// 2 (2n + j / 2) of scales[8 + (2j + t / 2) % 4] - for chunks j0 (even) and j0 + 1 bytes 8 + t / 2
// and 10 + t / 2, at the same shift.
template <class F>
struct FastBQ3 : std::true_type {
  using L = typename F::Layout;
  __device__ static void pair(const uint8_t* row, int c0, int, int t, uint32_t b0[4], uint32_t b1[4]) {
    const int sb = c0 >> 3, n = (c0 & 7) >> 2, j0 = c0 & 3, h2 = t >> 1;
    uint32_t q[2], hm[2];
    ld_2w<L::kAlign>(L::qs(row, sb) + 32 * n + 8 * t, q);
    ld_2w<L::kAlign>(L::hm(row, sb) + 8 * t, hm);
    // scale bytes 2 j0 .. +4 (j0 is 0 or 2: 4-byte aligned within the 8) and 8..11
    const uint32_t lo = ld_w<L::kLoAlign < 4 ? L::kLoAlign : 4>(L::sc_lo(row, sb) + 2 * j0);
    const uint32_t hi = ld_w<L::kHiAlign>(L::sc_hi(row, sb));
    const float d = ld_half(L::d(row, sb));
    uint32_t* out[2] = {b0, b1};
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int j = j0 + h, bh = 4 * n + j;
      const uint32_t w0 = ((q[0] >> (2 * j)) & 0x03030303u) | (((hm[0] >> bh) & 0x01010101u) << 2);
      const uint32_t w1 = ((q[1] >> (2 * j)) & 0x03030303u) | (((hm[1] >> bh) & 0x01010101u) << 2);
      const int byte = 2 * h + h2;
      const uint32_t s6 = ((lo >> (8 * byte + 4 * n)) & 15u) | (((hi >> (8 * byte + 2 * (2 * n + (j0 >> 1)))) & 3u) << 4);
      const float a = d * static_cast<float>(static_cast<int>(s6) - 32);
      constexpr uint32_t kOff = 0x64046404u;  // 1028: 1024 + 4
      part_scaled<0x00070007u>(w0, w1, kOff, pack_h2(a, a), out[h]);
    }
  }
};
template <>
struct FastB<Fmt<kQ3_K>> : FastBQ3<Fmt<kQ3_K>> {};
template <>
struct FastB<Fmt<kQ3_K_G8>> : FastBQ3<Fmt<kQ3_K_G8>> {};
template <>
struct FastB<Q3Fmt<Q3Slot>> : FastBQ3<Q3Fmt<Q3Slot>> {};  // matmul_mma's staged copy of the planes

}  // namespace rocforge::gpu
