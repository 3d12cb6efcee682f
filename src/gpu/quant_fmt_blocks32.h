// quant_fmt_blocks32.h - device decoders of the 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, IQ4_NL, MXFP4 (and the Q4_0 / Q8_0 group-of-8 planes). Conventions: quant_fmt_common.h.
#pragma once

#include "gpu/quant_fmt_common.h"

namespace rocforge::gpu {

// Q4_0 {half d; u8 qs[16]}: x = (nibble - 8) * d. Layouts (L: where block c's d and qs are):
//   B32Plain<18>  - the GGUF blocks back to back, only 2-byte aligned: 16-bit loads throughout;
//   B32Group8<16> - the GPU upload's (kQ4_0_G8, gpu/repack.h): eight blocks as [d x 8][qs x 8]
//                   = 144 bytes, 16-byte aligned planes. Rows of a multiple of 256 only.
// (Q8_0 below uses the same two layouts with 32-byte qs.)
template <int kQsBytes>
struct B32Plain {
  static constexpr int kAlign = 2;
  __device__ static const uint8_t* d(const uint8_t* row, int c) { return row + static_cast<size_t>(c) * (2 + kQsBytes); }
  __device__ static const uint8_t* qs(const uint8_t* row, int c) { return d(row, c) + 2; }
};
template <int kQsBytes>
struct B32Group8 {
  static constexpr int kAlign = 16;  // plane bases; offsets within qs are multiples of 8
  __device__ static const uint8_t* grp(const uint8_t* row, int c) {
    return row + static_cast<size_t>(c >> 3) * (8 * (2 + kQsBytes));
  }
  __device__ static const uint8_t* d(const uint8_t* row, int c) { return grp(row, c) + 2 * (c & 7); }
  __device__ static const uint8_t* qs(const uint8_t* row, int c) { return grp(row, c) + 16 + kQsBytes * (c & 7); }
};

template <class L>
struct Q40Fmt {
  static constexpr int kBlockElems = 32, kBlockBytes = 18;
  // part p: nibble p/2 of qs[8(p%2) .. +8)
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    const int sh = 4 * (p >> 1);
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * (p & 1), u);
    const uint32_t w0 = (u[0] >> sh) & 0x0f0f0f0fu, w1 = (u[1] >> sh) & 0x0f0f0f0fu;
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      s = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], s);
      s = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], s);
    }
    return ld_half(L::d(row, c)) * (s - 8.f * xsum);
  }
  // int8 path: an item is 2 chunks; lane p takes chunk 2 item + p/2, qs bytes 8(p%2) .. +8, both
  // nibbles (elements 8(p%2) + k and 16 + 8(p%2) + k).
  static constexpr int kItemChunks = 2;
  struct Xq { int lo0, lo1, hi0, hi1; float dx; };
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    const int c = 2 * item + (p >> 1), h = p & 1;
    if (c >= n_chunks) { v = Xq{0, 0, 0, 0, 0.f}; return; }
    const uint2 lo = *reinterpret_cast<const uint2*>(xq + 32 * c + 8 * h);
    const uint2 hi = *reinterpret_cast<const uint2*>(xq + 32 * c + 16 + 8 * h);
    v = Xq{static_cast<int>(lo.x), static_cast<int>(lo.y), static_cast<int>(hi.x), static_cast<int>(hi.y), xd[c]};
  }
  struct Raw { uint32_t u[2]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1), h = p & 1;
    if (c >= n_chunks) { r = Raw{{0u, 0u}, 0}; return; }
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * h, r.u);
    r.d = ld_u16(L::d(row, c));
  }
  __device__ static float dot_raw(const Raw& r, int, int, int, const Xq& v) {
    int s = rf_dp4a(static_cast<int>(r.u[0] & 0x0f0f0f0fu), v.lo0, 0);
    s = rf_dp4a(static_cast<int>(r.u[1] & 0x0f0f0f0fu), v.lo1, s);
    s = rf_dp4a(static_cast<int>((r.u[0] >> 4) & 0x0f0f0f0fu), v.hi0, s);
    s = rf_dp4a(static_cast<int>((r.u[1] >> 4) & 0x0f0f0f0fu), v.hi1, s);
    int sx = rf_dp4a(0x01010101, v.lo0, rf_dp4a(0x01010101, v.lo1, 0));
    sx = rf_dp4a(0x01010101, v.hi0, rf_dp4a(0x01010101, v.hi1, sx));
    return rf_half_to_float(r.d) * v.dx * static_cast<float>(s - 8 * sx);
  }
  // Elements 32c + 8p .. +8 (the dot8 part p), for the tensor-core GEMM (matmul_mma.hip).
  __device__ static void dequant8(const uint8_t* row, int c, int p, float v[8]) {
    const int sh = 4 * (p >> 1);
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * (p & 1), u);
    const float d = ld_half(L::d(row, c));
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v[k] = u2f((u[0] >> (8 * k + sh)) & 15, 8.f) * d;
      v[4 + k] = u2f((u[1] >> (8 * k + sh)) & 15, 8.f) * d;
    }
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const float d = ld_half(L::d(row, c));
    uint32_t w[4];
    ld_16<L::kAlign>(L::qs(row, c), w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = u2f(q & 15, 8.f) * d;
      v[i + 16] = u2f(q >> 4, 8.f) * d;
    }
  }
};
template <>
struct Fmt<kQ4_0> : Q40Fmt<B32Plain<16>> {};
template <>
struct Fmt<kQ4_0_G8> : Q40Fmt<B32Group8<16>> {};

// Q4_1 {half d, m; u8 qs[16]}: x = nibble * d + m
template <>
struct Fmt<kQ4_1> {
  static constexpr int kBlockElems = 32, kBlockBytes = 20;
  // int8 path: Q4_0's items (2 chunks; lane p takes qs bytes 8(p%2) .. +8 of chunk 2 item + p/2, both
  // nibbles). 20-byte blocks are 4-byte aligned: d and m are one word. Per lane and chunk:
  // sum (d q + m) dx xq = dx (d sum q xq + m sum xq).
  static constexpr int kItemChunks = 2;
  using Xq = XqHalf32;
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    load_xq_half32(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint32_t u[2], dm; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1);
    if (c >= n_chunks) { r = Raw{{0u, 0u}, 0u}; return; }
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    ld_2w<4>(b + 4 + 8 * (p & 1), r.u);
    r.dm = ld_u32(b);
  }
  __device__ static float dot_raw(const Raw& r, int, int, int, const Xq& v) {
    const int s = dot_half32(r.u[0] & 0x0f0f0f0fu, r.u[1] & 0x0f0f0f0fu, (r.u[0] >> 4) & 0x0f0f0f0fu,
                             (r.u[1] >> 4) & 0x0f0f0f0fu, v);
    const float d = rf_half_to_float(r.dm & 0xffffu), m = rf_half_to_float(r.dm >> 16);
    return v.dx * fmaf(d, static_cast<float>(s), m * static_cast<float>(v.sx));
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const uint32_t dm = ld_u32(b);
    const float d = rf_half_to_float(dm & 0xffffu), m = rf_half_to_float(dm >> 16);
    uint32_t w[4];
    ld_16<4>(b + 4, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = fmaf(u2f(q & 15), d, m);
      v[i + 16] = fmaf(u2f(q >> 4), d, m);
    }
  }
};

// Q5_0 {half d; u8 qh[4]; u8 qs[16]}: 5th bit of element i is bit i of qh; x = (q - 16) * d
template <>
struct Fmt<kQ5_0> {
  static constexpr int kBlockElems = 32, kBlockBytes = 22;
  // int8 path: Q4_0's items, plus the lane's fifth bits: qh bits 8(p%2) .. +8 (low nibbles) and
  // 16 + 8(p%2) .. +8 (high nibbles) put above each nibble (bits_to_b4). 22-byte blocks are only
  // 2-byte aligned: 16-bit loads. Codes are 0..31; the -16 comes off through the sum of x.
  static constexpr int kItemChunks = 2;
  using Xq = XqHalf32;
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    load_xq_half32(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint32_t u[2], qh; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1);
    if (c >= n_chunks) { r = Raw{{0u, 0u}, 0u, 0}; return; }
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    ld_2w<2>(b + 6 + 8 * (p & 1), r.u);
    r.qh = ld_u32_a2(b + 2);
    r.d = ld_u16(b);
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    const uint32_t hl = (r.qh >> (8 * (p & 1))) & 0xffu, hh = (r.qh >> (16 + 8 * (p & 1))) & 0xffu;
    const int s = dot_half32((r.u[0] & 0x0f0f0f0fu) | bits_to_b4(hl & 15), (r.u[1] & 0x0f0f0f0fu) | bits_to_b4(hl >> 4),
                             ((r.u[0] >> 4) & 0x0f0f0f0fu) | bits_to_b4(hh & 15),
                             ((r.u[1] >> 4) & 0x0f0f0f0fu) | bits_to_b4(hh >> 4), v);
    return rf_half_to_float(r.d) * v.dx * static_cast<float>(s - 16 * v.sx);
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const float d = ld_half(b);
    const uint32_t qh = ld_u32_a2(b + 2);
    uint32_t w[4];
    ld_16<2>(b + 6, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = u2f((q & 15) | (((qh >> i) & 1) << 4), 16.f) * d;
      v[i + 16] = u2f((q >> 4) | (((qh >> (i + 16)) & 1) << 4), 16.f) * d;
    }
  }
};

// Q5_1 {half d, m; u8 qh[4]; u8 qs[16]}: x = q * d + m
template <>
struct Fmt<kQ5_1> {
  static constexpr int kBlockElems = 32, kBlockBytes = 24;
  // int8 path: Q5_0's items with Q4_1's offset. 24-byte blocks are 8-byte aligned: a lane's step is
  // two 8-byte loads, the header (d, m, qh) and its 8 qs bytes.
  static constexpr int kItemChunks = 2;
  using Xq = XqHalf32;
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    load_xq_half32(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint32_t u[2], hd[2]; };  // hd: d | m << 16, qh
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1);
    if (c >= n_chunks) { r = Raw{{0u, 0u}, {0u, 0u}}; return; }
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    ld_2w<8>(b + 8 + 8 * (p & 1), r.u);
    ld_2w<8>(b, r.hd);
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    const uint32_t hl = (r.hd[1] >> (8 * (p & 1))) & 0xffu, hh = (r.hd[1] >> (16 + 8 * (p & 1))) & 0xffu;
    const int s = dot_half32((r.u[0] & 0x0f0f0f0fu) | bits_to_b4(hl & 15), (r.u[1] & 0x0f0f0f0fu) | bits_to_b4(hl >> 4),
                             ((r.u[0] >> 4) & 0x0f0f0f0fu) | bits_to_b4(hh & 15),
                             ((r.u[1] >> 4) & 0x0f0f0f0fu) | bits_to_b4(hh >> 4), v);
    const float d = rf_half_to_float(r.hd[0] & 0xffffu), m = rf_half_to_float(r.hd[0] >> 16);
    return v.dx * fmaf(d, static_cast<float>(s), m * static_cast<float>(v.sx));
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const uint32_t dm = ld_u32(b);
    const float d = rf_half_to_float(dm & 0xffffu), m = rf_half_to_float(dm >> 16);
    const uint32_t qh = ld_u32(b + 4);
    uint32_t w[4];
    ld_16<4>(b + 8, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = fmaf(u2f((q & 15) | (((qh >> i) & 1) << 4)), d, m);
      v[i + 16] = fmaf(u2f((q >> 4) | (((qh >> (i + 16)) & 1) << 4)), d, m);
    }
  }
};

// Q8_0 {half d; i8 qs[32]}: x = q * d. Layouts as Q4_0's (kQ8_0_G8: [d x 8][qs x 8] = 272 bytes).
template <class L>
struct Q80Fmt {
  static constexpr int kBlockElems = 32, kBlockBytes = 34;
  // part p: bytes qs[8p .. +8), as (byte ^ 0x80) - 128
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * p, u);
    const uint32_t w0 = u[0] ^ 0x80808080u, w1 = u[1] ^ 0x80808080u;
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      s = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], s);
      s = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], s);
    }
    return ld_half(L::d(row, c)) * (s - 128.f * xsum);
  }
  // int8 path: an item is 1 chunk; lane p takes bytes 8p .. +8.
  static constexpr int kItemChunks = 1;
  struct Xq { int x0, x1; float dx; };
  __device__ static int items(int n_chunks) { return n_chunks; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    const uint2 q = *reinterpret_cast<const uint2*>(xq + 32 * item + 8 * p);
    v = Xq{static_cast<int>(q.x), static_cast<int>(q.y), xd[item]};
  }
  struct Raw { uint32_t u[2]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    ld_2w<L::kAlign>(L::qs(row, item) + 8 * p, r.u);
    r.d = ld_u16(L::d(row, item));
  }
  __device__ static float dot_raw(const Raw& r, int, int, int, const Xq& v) {
    const int s = rf_dp4a(static_cast<int>(r.u[1]), v.x1, rf_dp4a(static_cast<int>(r.u[0]), v.x0, 0));
    return rf_half_to_float(r.d) * v.dx * static_cast<float>(s);
  }
  // Elements 32c + 8p .. +8 (the dot8 part p), for the tensor-core GEMM (matmul_mma.hip).
  __device__ static void dequant8(const uint8_t* row, int c, int p, float v[8]) {
    uint32_t u[2];
    ld_2w<L::kAlign>(L::qs(row, c) + 8 * p, u);
    const float d = ld_half(L::d(row, c));
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v[k] = u2f(((u[0] >> (8 * k)) & 0xffu) ^ 0x80u, 128.f) * d;
      v[4 + k] = u2f(((u[1] >> (8 * k)) & 0xffu) ^ 0x80u, 128.f) * d;
    }
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const float d = ld_half(L::d(row, c));
    uint32_t w[8];
    ld_16<L::kAlign>(L::qs(row, c), w);
    ld_16<L::kAlign>(L::qs(row, c) + 16, w + 4);
#pragma unroll
    for (int i = 0; i < 32; ++i) v[i] = u2f(byte_of(w, i) ^ 0x80u, 128.f) * d;  // int8 = (byte ^ 0x80) - 128
  }
};
template <>
struct Fmt<kQ8_0> : Q80Fmt<B32Plain<32>> {};
template <>
struct Fmt<kQ8_0_G8> : Q80Fmt<B32Group8<32>> {};

// IQ4_NL {half d; u8 qs[16]}: x = kIq4Values[nibble] * d
template <>
struct Fmt<kIQ4_NL> {
  static constexpr int kBlockElems = 32, kBlockBytes = 18;
  // int8 path: Q4_0's items with the code book looked up as int8 (book_dot8, entries -127 .. 113).
  static constexpr int kItemChunks = 2;
  using Xq = XqHalf32;
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    load_xq_half32(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint32_t u[2]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1);
    if (c >= n_chunks) { r = Raw{{0u, 0u}, 0}; return; }
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    ld_2w<2>(b + 2 + 8 * (p & 1), r.u);
    r.d = ld_u16(b);
  }
  __device__ static float dot_raw(const Raw& r, int, int, int, const Xq& v) {
    const uint32_t t[4] = {kIq4W0, kIq4W1, kIq4W2, kIq4W3};
    const int s = book_dot8(r.u[1], v.lo1, v.hi1, t, book_dot8(r.u[0], v.lo0, v.hi0, t, 0));
    return rf_half_to_float(r.d) * v.dx * static_cast<float>(s);
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const float d = ld_half(b);
    uint32_t w[4];
    ld_16<2>(b + 2, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = kIq4Values[q & 15] * d;
      v[i + 16] = kIq4Values[q >> 4] * d;
    }
  }
};

// MXFP4 {u8 e (E8M0 exponent); u8 qs[16]}: x = E2M1(nibble) * 2^(e - 127), stored as doubled code
// book values times 2^(e - 128).
template <>
struct Fmt<kMXFP4> {
  static constexpr int kBlockElems = 32, kBlockBytes = 17;
  // int8 path: Q4_0's items with the (doubled) E2M1 code book as int8. 17-byte blocks have no
  // alignment: a lane's 8 qs bytes come from the 2 or 3 aligned words that hold them, joined by
  // funnel shifts, instead of 8 byte loads. Only words holding at least one of the block's bytes are
  // read (an aligned word never straddles a page or an allocation's end).
  static constexpr int kItemChunks = 2;
  using Xq = XqHalf32;
  __device__ static int items(int n_chunks) { return (n_chunks + 1) / 2; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    load_xq_half32(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint32_t w[3], sh, e; };  // w: aligned words, sh: bit offset of the first qs byte in w[0]
  __device__ static void load_raw(const uint8_t* row, int item, int p, int n_chunks, Raw& r) {
    const int c = 2 * item + (p >> 1);
    if (c >= n_chunks) { r = Raw{{0u, 0u, 0u}, 0u, 0u}; return; }
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const uintptr_t a = reinterpret_cast<uintptr_t>(b + 1 + 8 * (p & 1));
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~static_cast<uintptr_t>(3));
    r.sh = 8u * static_cast<uint32_t>(a & 3);
    r.w[0] = w[0];
    r.w[1] = w[1];
    r.w[2] = r.sh ? w[2] : 0u;
    r.e = b[0];
  }
  __device__ static float dot_raw(const Raw& r, int, int, int, const Xq& v) {
    const uint32_t u0 = static_cast<uint32_t>(((static_cast<uint64_t>(r.w[1]) << 32) | r.w[0]) >> r.sh);
    const uint32_t u1 = static_cast<uint32_t>(((static_cast<uint64_t>(r.w[2]) << 32) | r.w[1]) >> r.sh);
    const uint32_t t[4] = {kMxW0, kMxW1, kMxW2, kMxW3};
    const int s = book_dot8(u1, v.lo1, v.hi1, t, book_dot8(u0, v.lo0, v.hi0, t, 0));
    // 2^(e-128) as in dequant (the code book is doubled)
    const float d = __uint_as_float(r.e >= 2 ? (r.e - 1) << 23 : 0x00200000u << r.e);
    return d * v.dx * static_cast<float>(s);
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c) * kBlockBytes;
    const uint32_t e = b[0];
    // 2^(e-128) built from its bits; e < 2 lands in the float subnormal range.
    const float d = __uint_as_float(e >= 2 ? (e - 1) << 23 : 0x00200000u << e);
    uint32_t w[4];
    ld_16<1>(b + 1, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = kMxfp4Values[q & 15] * d;
      v[i + 16] = kMxfp4Values[q >> 4] * d;
    }
  }
};

// ---------------------------------------------------------------- 256-element super-blocks

}  // namespace rocforge::gpu
