// quant_formats.h - device-side decoding of every GGUF weight format, 32 elements at a time.
//
// Every format rocforge computes with splits a row into "chunks" of 32 consecutive elements: a
// 32-element block (Q4_0 ... Q8_0, IQ4_NL, MXFP4) is one chunk, a 256-element super-block (K-quants,
// IQ4_XS) holds eight, and plain F32/F16/BF16 rows are cut every 32 elements. `Fmt<T>::dequant(row, c,
// v)` writes the 32 floats of chunk c of a row into v; the matvec, matmul and embedding kernels are
// written once over it. Layouts are the GGUF block structs (little endian), decoded with the widest
// loads each block's alignment allows: blocks of 18, 22, 34, 110 or 210 bytes are only 2-byte aligned,
// MXFP4's 17-byte blocks only 1-byte; the others allow 4- or 16-byte loads. Rows must start 16-byte
// aligned (the launchers check).
#pragma once

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

// GgmlType ids (include/rocforge/ggml_type.h) - repeated as plain constants for device code.
enum : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ4_NL = 20, kIQ4_XS = 23, kBF16 = 30, kMXFP4 = 39,
  // Device-only layouts of a format's bytes (backend_api.h RF_GPU_TYPE_*, made by gpu/repack.h).
  kQ4_0_G8 = 1002, kQ8_0_G8 = 1008, kQ6_K_G8 = 1014,
};

// Non-linear 4-bit code books (IQ4_NL / IQ4_XS, and MXFP4 E2M1 values times two), as floats. Plain global
// memory (never written), not __constant__: lanes index them with different nibbles, which the
// constant cache would serialize; through L1 the 16 bytes are one line.
static __device__ float kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static __device__ float kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// float(q) - bias for 0 <= q < 2^23 without an integer->float conversion instruction (those issue at
// a fraction of the FMA rate and would cap the 4-bit formats well below memory bandwidth): q placed
// in the mantissa of 2^23 is exactly 2^23 + q, and one exact subtraction removes 2^23 + bias.
__device__ inline float u2f(uint32_t q, float bias = 0.f) {
  return __uint_as_float(0x4B000000u | q) - (8388608.f + bias);
}

__device__ inline uint16_t ld_u16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
__device__ inline float ld_half(const uint8_t* p) { return rf_half_to_float(ld_u16(p)); }
// 4 bytes from a 2-byte aligned address.
__device__ inline uint32_t ld_u32_a2(const uint8_t* p) {
  const uint16_t* q = reinterpret_cast<const uint16_t*>(p);
  return static_cast<uint32_t>(q[0]) | (static_cast<uint32_t>(q[1]) << 16);
}
__device__ inline uint32_t ld_u32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ inline uint4 ld_u128(const uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ inline uint32_t byte_of(const uint32_t* w, int i) { return (w[i >> 2] >> (8 * (i & 3))) & 0xffu; }

// Two consecutive words from an address aligned to Align bytes (>= 2).
template <int Align>
__device__ inline void ld_2w(const uint8_t* p, uint32_t w[2]) {
  if constexpr (Align >= 8) {
    const uint2 v = *reinterpret_cast<const uint2*>(p);
    w[0] = v.x;
    w[1] = v.y;
  } else if constexpr (Align >= 4) {
    w[0] = ld_u32(p);
    w[1] = ld_u32(p + 4);
  } else {
    w[0] = ld_u32_a2(p);
    w[1] = ld_u32_a2(p + 4);
  }
}

// The 16 bytes of "low nibble = element i, high nibble = element i + 16" blocks, as 4 words.
template <int Align>
__device__ inline void ld_16(const uint8_t* p, uint32_t w[4]) {
  if constexpr (Align >= 16) {
    const uint4 v = ld_u128(p);
    w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
  } else if constexpr (Align >= 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = ld_u32(p + 4 * i);
  } else if constexpr (Align >= 2) {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = ld_u32_a2(p + 4 * i);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      w[i] = p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) | (static_cast<uint32_t>(p[4 * i + 3]) << 24);
  }
}

// ---------------------------------------------------------------- int8-path helpers
// Bits 0..3 of n as 0x10 in bytes 0..3 (a 5th weight bit placed above the nibble): the four shifted
// copies n, n << 7, n << 14, n << 21 of a 4-bit n occupy disjoint bits, so the multiply has no
// carries and bit k of n lands on bit 8k.
__device__ inline uint32_t bits_to_b4(uint32_t n) { return ((n * 0x00204081u) & 0x01010101u) << 4; }

// Four int8 codes as one little-endian word, for 16-entry code books in registers.
constexpr uint32_t pack_s8(int a, int b, int c, int d) {
  return (static_cast<uint32_t>(a) & 0xffu) | ((static_cast<uint32_t>(b) & 0xffu) << 8) |
         ((static_cast<uint32_t>(c) & 0xffu) << 16) | ((static_cast<uint32_t>(d) & 0xffu) << 24);
}
// kIq4Values and kMxfp4Values as int8 words, entries 4i .. 4i + 3 in word i (scalar constants, which
// both compilers fold into device code as immediates).
constexpr uint32_t kIq4W0 = pack_s8(-127, -104, -83, -65), kIq4W1 = pack_s8(-49, -35, -22, -10);
constexpr uint32_t kIq4W2 = pack_s8(1, 13, 25, 38), kIq4W3 = pack_s8(53, 69, 89, 113);
constexpr uint32_t kMxW0 = pack_s8(0, 1, 2, 3), kMxW1 = pack_s8(4, 6, 8, 12);
constexpr uint32_t kMxW2 = pack_s8(0, -1, -2, -3), kMxW3 = pack_s8(-4, -6, -8, -12);

// Code-book lookup of four nibbles (one per byte of q, values 0..15) into four int8 entries of the
// 16-byte table t[4], without memory: a byte permute picks entry n % 8 from the table's low and high
// halves (t[0..1], t[2..3]), and bit 3 of n chooses between the two. CUDA's prmt takes 4-bit selectors
// packed in 16 bits, AMD's v_perm_b32 byte selectors (0..7 index {hi word : lo word}); HIP's
// __byte_perm is a scalar emulation, so AMD calls the builtin.
__device__ inline uint32_t lut16_s8(uint32_t q, const uint32_t t[4]) {
  const uint32_t s = q & 0x07070707u;
#if defined(__CUDA_ARCH__)
  const uint32_t u = s | (s >> 4);
  const uint32_t sel = (u & 0xffu) | ((u >> 8) & 0xff00u);
  const uint32_t lo = __byte_perm(t[0], t[1], sel), hi = __byte_perm(t[2], t[3], sel);
#elif defined(__HIP_DEVICE_COMPILE__)
  const uint32_t lo = __builtin_amdgcn_perm(t[1], t[0], s), hi = __builtin_amdgcn_perm(t[3], t[2], s);
#else
  uint32_t lo = 0, hi = 0;  // host pass of a HIP compile: never called
  (void)s;
  (void)t;
#endif
  const uint32_t m = ((q >> 3) & 0x01010101u) * 0xffu;  // 0xff in the bytes whose nibble is >= 8
  return (lo & ~m) | (hi & m);
}

// Activations of "half a 32-element block" lanes (the Q4_0-style int8 items: 2 chunks per item,
// lane p takes chunk 2 item + p/2, elements 8(p%2) + k and 16 + 8(p%2) + k, k < 8): lo* / hi* the
// two groups of 8, dx the chunk's scale, sx the sum of the 16 (for offsets and mins, shared by every
// row). A chunk past the row's end reads as zero.
struct XqHalf32 { int lo0, lo1, hi0, hi1; float dx; int sx; };
__device__ inline void load_xq_half32(const int8_t* xq, const float* xd, int item, int p, int n_chunks, XqHalf32& v) {
  const int c = 2 * item + (p >> 1), h = p & 1;
  if (c >= n_chunks) { v = XqHalf32{0, 0, 0, 0, 0.f, 0}; return; }
  const uint2 lo = *reinterpret_cast<const uint2*>(xq + 32 * c + 8 * h);
  const uint2 hi = *reinterpret_cast<const uint2*>(xq + 32 * c + 16 + 8 * h);
  v.lo0 = static_cast<int>(lo.x);
  v.lo1 = static_cast<int>(lo.y);
  v.hi0 = static_cast<int>(hi.x);
  v.hi1 = static_cast<int>(hi.y);
  v.dx = xd[c];
  v.sx = rf_dp4a(0x01010101, v.hi1, rf_dp4a(0x01010101, v.hi0, rf_dp4a(0x01010101, v.lo1, rf_dp4a(0x01010101, v.lo0, 0))));
}
// sum over the lane's 16 weights of q * x for the code words lo (elements 8(p%2) + k) and hi (16 + ...).
__device__ inline int dot_half32(uint32_t lo0, uint32_t lo1, uint32_t hi0, uint32_t hi1, const XqHalf32& v) {
  int s = rf_dp4a(static_cast<int>(lo0), v.lo0, 0);
  s = rf_dp4a(static_cast<int>(lo1), v.lo1, s);
  s = rf_dp4a(static_cast<int>(hi0), v.hi0, s);
  return rf_dp4a(static_cast<int>(hi1), v.hi1, s);
}

// Activations of "eight positions of four chunks" lanes (the Q6_K-style int8 items over 16-element
// sub-blocks: an item is chunks 4 item + g, g < 4, lane p takes elements 8p .. +8 of each): x[g] the
// two words, dx[g] the chunk scales, sx[g] the sums of the 8 (for offsets and mins).
struct XqQuad8 { int x[4][2]; float dx[4]; int sx[4]; };
__device__ inline void load_xq_quad8(const int8_t* xq, const float* xd, int item, int p, XqQuad8& v) {
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const uint2 q = *reinterpret_cast<const uint2*>(xq + 32 * (4 * item + g) + 8 * p);
    v.x[g][0] = static_cast<int>(q.x);
    v.x[g][1] = static_cast<int>(q.y);
    v.dx[g] = xd[4 * item + g];
    v.sx[g] = rf_dp4a(0x01010101, v.x[g][1], rf_dp4a(0x01010101, v.x[g][0], 0));
  }
}

template <uint32_t T>
struct Fmt;

// ---------------------------------------------------------------- decode fast path ("dot8")
// Formats used by the decode targets also provide
//   dot8(row, c, p, x8, xsum): sum_{i<8} W[32c + 8p + i] * x8[i], with xsum = sum of x8,
// so four consecutive lanes cover a chunk and a wave reads x contiguously (coalesced float4s). They
// accumulate the integer codes against x (one conversion-free float and one FMA per weight) and
// apply scale and offset once per 8 weights: d * (sum q*x - bias * xsum).
// The quantized formats among them also provide the int8-activation path (x ~ dx * xq, 32 values
// per scale, quantized once per decode step), in "items" of kItemChunks chunks handled by 4 lanes:
//   items(n_chunks), load_xq(xq, xd, item, p, n_chunks, Xq&) (lane p's activations of the item) and
//   load_raw(row, item, p, n_chunks, Raw&) (lane p's weight words of the item, loads only) and
//   dot_raw(raw, item, p, n_chunks, const Xq&) (their sum against the activations),
// with byte dot-products (dp4a / v_dot4) and each lane consuming as many weight bytes per step as
// the layout gives it (16 to 32 weights): the decode hot path.

template <>
struct Fmt<kF32> {
  static constexpr int kBlockElems = 1, kBlockBytes = 4;
  __device__ static float elem(const uint8_t* row, int i) { return reinterpret_cast<const float*>(row)[i]; }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const float4* p = reinterpret_cast<const float4*>(row + static_cast<size_t>(c) * 128);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float4 f = p[i];
      v[4 * i] = f.x; v[4 * i + 1] = f.y; v[4 * i + 2] = f.z; v[4 * i + 3] = f.w;
    }
  }
};

template <>
struct Fmt<kF16> {
  static constexpr int kBlockElems = 1, kBlockBytes = 2;
  __device__ static float elem(const uint8_t* row, int i) { return rf_half_to_float(ld_u16(row + 2 * i)); }
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float) {
    const uint4 q = *reinterpret_cast<const uint4*>(row + static_cast<size_t>(c) * 64 + 16 * p);
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      s = fmaf(rf_half_to_float(static_cast<uint16_t>(w[j] & 0xffffu)), x8[2 * j], s);
      s = fmaf(rf_half_to_float(static_cast<uint16_t>(w[j] >> 16)), x8[2 * j + 1], s);
    }
    return s;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint4* p = reinterpret_cast<const uint4*>(row + static_cast<size_t>(c) * 64);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 q = p[i];
      const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[8 * i + 2 * j] = rf_half_to_float(static_cast<uint16_t>(w[j] & 0xffffu));
        v[8 * i + 2 * j + 1] = rf_half_to_float(static_cast<uint16_t>(w[j] >> 16));
      }
    }
  }
};

template <>
struct Fmt<kBF16> {
  static constexpr int kBlockElems = 1, kBlockBytes = 2;
  __device__ static float elem(const uint8_t* row, int i) { return rf_bf16_to_float(ld_u16(row + 2 * i)); }
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float) {
    const uint4 q = *reinterpret_cast<const uint4*>(row + static_cast<size_t>(c) * 64 + 16 * p);
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      s = fmaf(__uint_as_float(w[j] << 16), x8[2 * j], s);
      s = fmaf(__uint_as_float(w[j] & 0xffff0000u), x8[2 * j + 1], s);
    }
    return s;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint4* p = reinterpret_cast<const uint4*>(row + static_cast<size_t>(c) * 64);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint4 q = p[i];
      const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        v[8 * i + 2 * j] = __uint_as_float(w[j] << 16);
        v[8 * i + 2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
      }
    }
  }
};

// ---------------------------------------------------------------- 32-element blocks
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
  // int8 path: Q4_0's items with the code book looked up as int8 (lut16_s8, entries -127 .. 113).
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
    const int s = dot_half32(lut16_s8(r.u[0] & 0x0f0f0f0fu, t), lut16_s8(r.u[1] & 0x0f0f0f0fu, t),
                             lut16_s8((r.u[0] >> 4) & 0x0f0f0f0fu, t), lut16_s8((r.u[1] >> 4) & 0x0f0f0f0fu, t), v);
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
    const int s = dot_half32(lut16_s8(u0 & 0x0f0f0f0fu, t), lut16_s8(u1 & 0x0f0f0f0fu, t),
                             lut16_s8((u0 >> 4) & 0x0f0f0f0fu, t), lut16_s8((u1 >> 4) & 0x0f0f0f0fu, t), v);
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
// Q2_K {u8 scales[16]; u8 qs[64]; half d, dmin}. Chunk s = 32 elements: half n = s/4 of the block,
// 2-bit plane j = s%4 of qs[32n .. 32n+32); 16-element groups use scales[8n + 2j + (l >= 16)]:
// low nibble scales d, high nibble scales dmin.
template <>
struct Fmt<kQ2_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 84;
  // int8 path: an item is half a super-block (n = item % 2: chunks 4n + j, planes j = 0..3 of
  // qs[32n ..)); lane p takes positions l = 8p .. +8 of all four: 8 qs bytes (2-bit codes 0..3), the
  // 8 scale bytes of the half (its sub-blocks 8n + 2j + p/2) and d, dmin: five 4-byte loads (84-byte
  // blocks are 4-byte aligned) for 32 weights. w = d sc q - dmin m.
  static constexpr int kItemChunks = 4;
  using Xq = XqQuad8;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    load_xq_quad8(xq, xd, item, p, v);
  }
  struct Raw { uint32_t q[2], sc[2], dd; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int n = item & 1;
    const uint8_t* b = row + static_cast<size_t>(item >> 1) * kBlockBytes;
    ld_2w<4>(b + 16 + 32 * n + 8 * p, r.q);
    ld_2w<4>(b + 8 * n, r.sc);
    r.dd = ld_u32(b + 80);
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    float acc_d = 0.f, acc_m = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int a = rf_dp4a(static_cast<int>((r.q[0] >> (2 * j)) & 0x03030303u), v.x[j][0], 0);
      a = rf_dp4a(static_cast<int>((r.q[1] >> (2 * j)) & 0x03030303u), v.x[j][1], a);
      // scale byte 2j + p/2 of the half's 8: word j / 2, byte 2 (j % 2) + p / 2
      const uint32_t sc = (r.sc[j >> 1] >> (8 * (2 * (j & 1) + (p >> 1)))) & 0xffu;
      acc_d = fmaf(v.dx[j], static_cast<float>(static_cast<int>(sc & 15u) * a), acc_d);
      acc_m = fmaf(v.dx[j], static_cast<float>(static_cast<int>(sc >> 4) * v.sx[j]), acc_m);
    }
    return rf_half_to_float(r.dd & 0xffffu) * acc_d - rf_half_to_float(r.dd >> 16) * acc_m;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7, n = s >> 2, j = s & 3;
    const uint32_t dd = ld_u32(b + 80);
    const float d = rf_half_to_float(dd & 0xffffu), dmin = rf_half_to_float(dd >> 16);
    const uint32_t sc0 = b[8 * n + 2 * j], sc1 = b[8 * n + 2 * j + 1];
    const float d0 = d * (sc0 & 15), m0 = dmin * (sc0 >> 4);
    const float d1 = d * (sc1 & 15), m1 = dmin * (sc1 >> 4);
    uint32_t w[8];
    ld_16<4>(b + 16 + 32 * n, w);
    ld_16<4>(b + 16 + 32 * n + 16, w + 4);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const float q = u2f((byte_of(w, l) >> (2 * j)) & 3);
      v[l] = l < 16 ? fmaf(d0, q, -m0) : fmaf(d1, q, -m1);
    }
  }
};

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; half d}. Chunk s: n = s/4, plane j = s%4 of
// qs[32n ..); the high bit of element l is bit (4n + j) of hmask[l], and a clear bit subtracts 4.
// 16 6-bit scales (stored +32): low 4 bits in scales[0..7] nibbles, high 2 bits in scales[8..11].
template <>
struct Fmt<kQ3_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 110;
  // int8 path: Q2_K's items (half n = item % 2, lane p at positions l = 8p .. +8 of the four planes
  // j), plus the high bits (bits 4n + j of hmask[l]): codes 0..7, the -4 taken off through the sums
  // of x. 110-byte blocks are only 2-byte aligned: 16-bit loads.
  static constexpr int kItemChunks = 4;
  using Xq = XqQuad8;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    load_xq_quad8(xq, xd, item, p, v);
  }
  // q: low bits, h: hmask bytes, sc: the 12 scale bytes, d
  struct Raw { uint32_t q[2], h[2], sc[3]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int n = item & 1;
    const uint8_t* b = row + static_cast<size_t>(item >> 1) * kBlockBytes;
    ld_2w<2>(b + 32 + 32 * n + 8 * p, r.q);
    ld_2w<2>(b + 8 * p, r.h);
    ld_2w<2>(b + 96, r.sc);
    r.sc[2] = ld_u32_a2(b + 104);
    r.d = ld_u16(b + 108);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int n = item & 1;
    // The lane's four 6-bit scales (sub-blocks i = 8n + 2j + p/2, j < 4), all at once: low 4 bits are
    // nibble n of scale byte 2j + p/2 (word j / 2, byte 2 (j % 2) + p/2); high 2 bits are bits
    // 2 (i / 4) = 4n + 2 (j / 2) of byte 8 + i % 4 = 8 + 2 (j % 2) + p/2. Packed as bytes
    // [j0, j2, j1, j3] (stored + 32).
    const int sh = 8 * (p >> 1) + 4 * n;
    const uint32_t hs = r.sc[2] >> sh;
    const uint32_t lo4 = ((r.sc[0] >> sh) & 0x000f000fu) | (((r.sc[1] >> sh) & 0x000f000fu) << 8);
    const uint32_t hi2 = (hs & 0x00030003u) | (((hs >> 2) & 0x00030003u) << 8);
    const uint32_t scales = lo4 | (hi2 << 4);
    float acc = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int a = 0;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t q = ((r.q[k] >> (2 * j)) & 0x03030303u) | (((r.h[k] >> (4 * n + j)) & 0x01010101u) << 2);
        a = rf_dp4a(static_cast<int>(q), v.x[j][k], a);
      }
      const int sc = static_cast<int>((scales >> (8 * ((j >> 1) | ((j & 1) << 1)))) & 0xffu) - 32;
      acc = fmaf(v.dx[j], static_cast<float>(sc * (a - 4 * v.sx[j])), acc);
    }
    return rf_half_to_float(r.d) * acc;
  }
  __device__ static int scale(const uint8_t* sc, int i) {
    const int lo = i < 8 ? (sc[i] & 15) : (sc[i - 8] >> 4);
    const int hi = (sc[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7, n = s >> 2, j = s & 3;
    const float d = ld_half(b + 108);
    const float d0 = d * scale(b + 96, 8 * n + 2 * j), d1 = d * scale(b + 96, 8 * n + 2 * j + 1);
    uint32_t q[8], h[8];
    ld_16<2>(b + 32 + 32 * n, q);
    ld_16<2>(b + 32 + 32 * n + 16, q + 4);
    ld_16<2>(b, h);
    ld_16<2>(b + 16, h + 4);
    const int hbit = 4 * n + j;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      // q = low 2 bits - 4 when the high bit is clear = (low 2 bits | high bit << 2) - 4
      const uint32_t q4 = ((byte_of(q, l) >> (2 * j)) & 3) | (((byte_of(h, l) >> hbit) & 1) << 2);
      v[l] = (l < 16 ? d0 : d1) * u2f(q4, 4.f);
    }
  }
};

// 6-bit scale and min j of the 12 packed bytes of Q4_K / Q5_K.
__device__ inline void k4_scale_min(const uint8_t* q, int j, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K {half d, dmin; u8 scales[12]; u8 qs[128]}. Chunk s: nibble s%2 of qs[32(s/2) ..), scale/min s.
template <>
struct Fmt<kQ4_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 144;
  // part p of chunk s: nibble s%2 of qs[32(s/2) + 8p .. +8)
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint2 q = *reinterpret_cast<const uint2*>(b + 16 + 32 * (s >> 1) + 8 * p);
    const int sh = 4 * (s & 1);
    const uint32_t w0 = (q.x >> sh) & 0x0f0f0f0fu, w1 = (q.y >> sh) & 0x0f0f0f0fu;
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      acc = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], acc);
      acc = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], acc);
    }
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    return rf_half_to_float(dd & 0xffffu) * sc * acc - rf_half_to_float(dd >> 16) * m * xsum;
  }
  // int8 path: an item is 4 chunks = 2 chunk pairs (2J, 2J + 1), each pair sharing qs[32(J%4) .. +32):
  // lane p takes pair J = 2 item + p/2, bytes 16(p%2) .. +16 (one 16-byte load), low nibbles for chunk
  // 2J and high nibbles for chunk 2J + 1.
  static constexpr int kItemChunks = 4;
  // sl, sh: sums of the lane's 16 low / high activations (for the mins), shared by every row.
  struct Xq { uint4 l, h; float dl, dh; int sl, sh; };
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    const int J = 2 * item + (p >> 1), o = 16 * (p & 1);
    v.l = *reinterpret_cast<const uint4*>(xq + 64 * J + o);
    v.h = *reinterpret_cast<const uint4*>(xq + 64 * J + 32 + o);
    v.dl = xd[2 * J];
    v.dh = xd[2 * J + 1];
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    v.sl = v.sh = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      v.sl = rf_dp4a(0x01010101, xl[k], v.sl);
      v.sh = rf_dp4a(0x01010101, xh[k], v.sh);
    }
  }
  struct Raw { uint4 q, hd; };  // the lane's 16 qs bytes and its super-block's 16-byte header
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int J = 2 * item + (p >> 1), j = J & 3;
    const uint8_t* b = row + static_cast<size_t>(J >> 2) * kBlockBytes;
    r.q = *reinterpret_cast<const uint4*>(b + 16 + 32 * j + 16 * (p & 1));
    r.hd = *reinterpret_cast<const uint4*>(b);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int j = (2 * item + (p >> 1)) & 3;
    const uint4 q = r.q;
    const uint32_t qw[4] = {q.x, q.y, q.z, q.w};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int al = 0, ah = 0;
    const int sl = v.sl, sh = v.sh;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      al = rf_dp4a(static_cast<int>(qw[k] & 0x0f0f0f0fu), xl[k], al);
      ah = rf_dp4a(static_cast<int>((qw[k] >> 4) & 0x0f0f0f0fu), xh[k], ah);
    }
    // The 16-byte header (d, dmin, 12 scale bytes) as one load; scales 2j and 2j + 1 are adjacent
    // bytes of its words, found by shifts (a runtime index into an array would spill). Against two
    // k4_scale_min calls of byte loads: 8B matvecs 1.89 -> 1.73 ms/token (H200, 2 rows per group).
    const uint4 hd = r.hd;
    const uint32_t dd = hd.x;
    const int shf = 16 * (j & 1);
    const uint32_t a1 = (hd.y >> shf) & 0xffffu, a2 = (hd.z >> shf) & 0xffffu, a3 = (hd.w >> shf) & 0xffffu;
    const uint32_t sc2 = j < 2 ? a1 & 0x3f3fu : (a3 & 0x0f0fu) | ((a1 >> 2) & 0x3030u);
    const uint32_t m2 = j < 2 ? a2 & 0x3f3fu : ((a3 >> 4) & 0x0f0fu) | ((a2 >> 2) & 0x3030u);
    const int scl = static_cast<int>(sc2 & 0xffu), sch = static_cast<int>(sc2 >> 8);
    const int ml = static_cast<int>(m2 & 0xffu), mh = static_cast<int>(m2 >> 8);
    const float sum_q = v.dl * static_cast<float>(scl * al) + v.dh * static_cast<float>(sch * ah);
    const float sum_m = v.dl * static_cast<float>(ml * sl) + v.dh * static_cast<float>(mh * sh);
    return rf_half_to_float(dd & 0xffffu) * sum_q - rf_half_to_float(dd >> 16) * sum_m;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    const float d = rf_half_to_float(dd & 0xffffu) * sc, mn = rf_half_to_float(dd >> 16) * m;
    uint32_t w[8];
    ld_16<16>(b + 16 + 32 * (s >> 1), w);
    ld_16<16>(b + 16 + 32 * (s >> 1) + 16, w + 4);
    const int shift = 4 * (s & 1);
#pragma unroll
    for (int l = 0; l < 32; ++l) v[l] = fmaf(d, u2f((byte_of(w, l) >> shift) & 15), -mn);
  }
};

// Scales and mins of chunks 2j and 2j + 1 (j < 4) of a Q4_K / Q5_K super-block from its 16-byte
// header hd (d, dmin, 12 packed bytes; k4_scale_min's rules): the two chunks' bytes are adjacent, so
// each comes out of one header word by shifts (a runtime index into an array would spill).
__device__ inline void k4_pair_scale_min(const uint4& hd, int j, int& sc0, int& sc1, int& m0, int& m1) {
  const int shf = 16 * (j & 1);
  const uint32_t a1 = (hd.y >> shf) & 0xffffu, a2 = (hd.z >> shf) & 0xffffu, a3 = (hd.w >> shf) & 0xffffu;
  const uint32_t sc2 = j < 2 ? a1 & 0x3f3fu : (a3 & 0x0f0fu) | ((a1 >> 2) & 0x3030u);
  const uint32_t m2 = j < 2 ? a2 & 0x3f3fu : ((a3 >> 4) & 0x0f0fu) | ((a2 >> 2) & 0x3030u);
  sc0 = static_cast<int>(sc2 & 0xffu);
  sc1 = static_cast<int>(sc2 >> 8);
  m0 = static_cast<int>(m2 & 0xffu);
  m1 = static_cast<int>(m2 >> 8);
}

// Q5_K {half d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: as Q4_K, 5th bit = bit s of qh[l].
template <>
struct Fmt<kQ5_K> {
  static constexpr int kBlockElems = 256, kBlockBytes = 176;
  // int8 path: Q4_K's items (4 chunks = chunk pairs 2J, 2J + 1 sharing qs[32(J%4) .. +32); lane p
  // takes pair J = 2 item + p/2, element positions l = 16(p%2) .. +16) plus the fifth bits: bits 2j
  // (chunk 2J) and 2j + 1 (chunk 2J + 1), j = J % 4, of the same 16 qh[l] bytes. 176-byte blocks keep
  // 16-byte alignment, so a lane's step is three 16-byte loads: qs, qh and the header. Codes are
  // 0..31 (positive int8); the mins use the sums of x, as Q4_K.
  static constexpr int kItemChunks = 4;
  using Xq = Fmt<kQ4_K>::Xq;
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int n_chunks, Xq& v) {
    Fmt<kQ4_K>::load_xq(xq, xd, item, p, n_chunks, v);
  }
  struct Raw { uint4 q, h, hd; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int J = 2 * item + (p >> 1), j = J & 3;
    const uint8_t* b = row + static_cast<size_t>(J >> 2) * kBlockBytes;
    r.q = *reinterpret_cast<const uint4*>(b + 48 + 32 * j + 16 * (p & 1));
    r.h = *reinterpret_cast<const uint4*>(b + 16 + 16 * (p & 1));
    r.hd = *reinterpret_cast<const uint4*>(b);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int j = (2 * item + (p >> 1)) & 3;
    const uint32_t qw[4] = {r.q.x, r.q.y, r.q.z, r.q.w};
    const uint32_t hw[4] = {r.h.x, r.h.y, r.h.z, r.h.w};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int al = 0, ah = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = (qw[k] & 0x0f0f0f0fu) | (((hw[k] >> (2 * j)) & 0x01010101u) << 4);
      const uint32_t hi = ((qw[k] >> 4) & 0x0f0f0f0fu) | (((hw[k] >> (2 * j + 1)) & 0x01010101u) << 4);
      al = rf_dp4a(static_cast<int>(lo), xl[k], al);
      ah = rf_dp4a(static_cast<int>(hi), xh[k], ah);
    }
    int scl, sch, ml, mh;
    k4_pair_scale_min(r.hd, j, scl, sch, ml, mh);
    const float sum_q = v.dl * static_cast<float>(scl * al) + v.dh * static_cast<float>(sch * ah);
    const float sum_m = v.dl * static_cast<float>(ml * v.sl) + v.dh * static_cast<float>(mh * v.sh);
    return rf_half_to_float(r.hd.x & 0xffffu) * sum_q - rf_half_to_float(r.hd.x >> 16) * sum_m;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dd = ld_u32(b);
    int sc, m;
    k4_scale_min(b + 4, s, sc, m);
    const float d = rf_half_to_float(dd & 0xffffu) * sc, mn = rf_half_to_float(dd >> 16) * m;
    uint32_t w[8], h[8];
    ld_16<16>(b + 48 + 32 * (s >> 1), w);
    ld_16<16>(b + 48 + 32 * (s >> 1) + 16, w + 4);
    ld_16<16>(b + 16, h);
    ld_16<16>(b + 32, h + 4);
    const int shift = 4 * (s & 1);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(w, l) >> shift) & 15) | (((byte_of(h, l) >> s) & 1) << 4);
      v[l] = fmaf(d, u2f(q), -mn);
    }
  }
};

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; half d}. Chunk s: n = s/4, g = s%4; low 4 bits are
// nibble g/2 of ql[64n + 32(g%2) + l], high 2 bits are bits 2g of qh[32n + l]; x = d * sc * (q - 32)
// with sc = scales[8n + 2g + l/16].
//
// Two layouts of the same bytes (L says where super-block sb's parts are):
//   Q6Plain  - the GGUF blocks back to back. 210-byte blocks are only 2-byte aligned, so every word
//              costs two 16-bit loads: the int8 path issues 12 loads per 24 weight bytes.
//   Q6Group8 - the GPU upload's layout (kQ6_K_G8, gpu/repack.h): eight super-blocks as planes
//              [ql 8 x 128][qh 8 x 64][scales 8 x 16][d 8 x 2] = 1680 bytes, every plane 16-byte
//              aligned, so the same work takes 3 eight-byte loads. Rows of a multiple of 2048 only.
struct Q6Plain {
  static constexpr int kAlign = 2;
  __device__ static const uint8_t* ql(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb) * 210; }
  __device__ static const uint8_t* qh(const uint8_t* row, int sb) { return ql(row, sb) + 128; }
  __device__ static const uint8_t* sc(const uint8_t* row, int sb) { return ql(row, sb) + 192; }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return ql(row, sb) + 208; }
};
struct Q6Group8 {
  static constexpr int kAlign = 16;  // plane bases; ld_2w offsets within them are multiples of 8
  __device__ static const uint8_t* grp(const uint8_t* row, int sb) { return row + static_cast<size_t>(sb >> 3) * 1680; }
  __device__ static const uint8_t* ql(const uint8_t* row, int sb) { return grp(row, sb) + 128 * (sb & 7); }
  __device__ static const uint8_t* qh(const uint8_t* row, int sb) { return grp(row, sb) + 1024 + 64 * (sb & 7); }
  __device__ static const uint8_t* sc(const uint8_t* row, int sb) { return grp(row, sb) + 1536 + 16 * (sb & 7); }
  __device__ static const uint8_t* d(const uint8_t* row, int sb) { return grp(row, sb) + 1664 + 2 * (sb & 7); }
};


template <class L>
struct Q6Fmt {
  static constexpr int kBlockElems = 256, kBlockBytes = 210;
  // part p of chunk s = (n, g): low bits from ql[64n + 32(g%2) + 8p ..) nibble g/2, high bits from
  // qh[32n + 8p ..) bits 2g; scale 8n + 2g + p/2.
  __device__ static float dot8(const uint8_t* row, int c, int p, const float x8[8], float xsum) {
    const int sb = c >> 3, s = c & 7, n = s >> 2, g = s & 3;
    uint32_t lo[2], hi[2];
    ld_2w<L::kAlign>(L::ql(row, sb) + 64 * n + 32 * (g & 1) + 8 * p, lo);
    ld_2w<L::kAlign>(L::qh(row, sb) + 32 * n + 8 * p, hi);
    const int ls = 4 * (g >> 1), hs = 2 * g;
    const uint32_t w0 = ((lo[0] >> ls) & 0x0f0f0f0fu) | (((hi[0] >> hs) & 0x03030303u) << 4);
    const uint32_t w1 = ((lo[1] >> ls) & 0x0f0f0f0fu) | (((hi[1] >> hs) & 0x03030303u) << 4);
    float acc = 0.f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      acc = fmaf(u2f((w0 >> (8 * k)) & 0xffu), x8[k], acc);
      acc = fmaf(u2f((w1 >> (8 * k)) & 0xffu), x8[4 + k], acc);
    }
    const float d = ld_half(L::d(row, sb)) * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g + (p >> 1)]);
    return d * (acc - 32.f * xsum);
  }
  // int8 path: an item is half a super-block (n = item % 2: chunks 4n + g, g = 0..3); lane p takes
  // positions l = 8p .. +8 of all four chunks: ql[64n + 8p ..) (g = 0 low, g = 2 high nibbles),
  // ql[64n + 32 + 8p ..) (g = 1, 3) and qh[32n + 8p ..) (2 bits per g).
  static constexpr int kItemChunks = 4;
  // s32[g]: 32 * (sum of the lane's 8 activations of chunk g), the -32 offset, shared by every row.
  struct Xq { int x[4][2]; float dx[4]; int s32[4]; };
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint2 q = *reinterpret_cast<const uint2*>(xq + 32 * (4 * item + g) + 8 * p);
      v.x[g][0] = static_cast<int>(q.x);
      v.x[g][1] = static_cast<int>(q.y);
      v.dx[g] = xd[4 * item + g];
      v.s32[g] = 32 * rf_dp4a(0x01010101, v.x[g][1], rf_dp4a(0x01010101, v.x[g][0], 0));
    }
  }
  // The lane's weight words: low bits L0 (g = 0, 2) and L1 (g = 1, 3), high bits H, the 8 scale
  // bytes of its half super-block S, and d.
  struct Raw { uint32_t L0[2], L1[2], H[2], S[2]; uint16_t d; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int sb = item >> 1, n = item & 1;
    const uint8_t* ql = L::ql(row, sb) + 64 * n + 8 * p;
    ld_2w<L::kAlign>(ql, r.L0);
    ld_2w<L::kAlign>(ql + 32, r.L1);
    ld_2w<L::kAlign>(L::qh(row, sb) + 32 * n + 8 * p, r.H);
    ld_2w<L::kAlign>(L::sc(row, sb) + 8 * n, r.S);
    r.d = ld_u16(L::d(row, sb));
  }
  __device__ static float dot_raw(const Raw& r, int, int p, int, const Xq& v) {
    float acc = 0.f;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      int a = 0;
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t lo = g & 1 ? r.L1[k] : r.L0[k];
        const uint32_t q = ((lo >> (4 * (g >> 1))) & 0x0f0f0f0fu) | (((r.H[k] >> (2 * g)) & 0x03030303u) << 4);
        a = rf_dp4a(static_cast<int>(q), v.x[g][k], a);
      }
      // scale byte (p / 2) + 2g of the 8: word g / 2, byte (p / 2) + 2 (g % 2)
      const int sc = static_cast<int8_t>((r.S[g >> 1] >> (8 * ((p >> 1) + 2 * (g & 1)))) & 0xffu);
      acc = fmaf(v.dx[g] * sc, static_cast<float>(a - v.s32[g]), acc);
    }
    return rf_half_to_float(r.d) * acc;
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const int sb = c >> 3, s = c & 7, n = s >> 2, g = s & 3;
    const float d = ld_half(L::d(row, sb));
    const float d0 = d * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g]);
    const float d1 = d * static_cast<int8_t>(L::sc(row, sb)[8 * n + 2 * g + 1]);
    uint32_t lo[8], hi[8];
    const uint8_t* ql = L::ql(row, sb) + 64 * n + 32 * (g & 1);
    const uint8_t* qh = L::qh(row, sb) + 32 * n;
    ld_16<L::kAlign>(ql, lo);
    ld_16<L::kAlign>(ql + 16, lo + 4);
    ld_16<L::kAlign>(qh, hi);
    ld_16<L::kAlign>(qh + 16, hi + 4);
    const int lshift = 4 * (g >> 1), hshift = 2 * g;
#pragma unroll
    for (int l = 0; l < 32; ++l) {
      const uint32_t q = ((byte_of(lo, l) >> lshift) & 15) | (((byte_of(hi, l) >> hshift) & 3) << 4);
      v[l] = (l < 16 ? d0 : d1) * u2f(q, 32.f);
    }
  }
};
template <>
struct Fmt<kQ6_K> : Q6Fmt<Q6Plain> {};
template <>
struct Fmt<kQ6_K_G8> : Q6Fmt<Q6Group8> {};

// IQ4_XS {half d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}. Chunk s: 6-bit scale (stored +32) from
// nibble s%2 of scales_l[s/2] and bits 2s of scales_h; 16 bytes qs[16s ..) as in IQ4_NL.
template <>
struct Fmt<kIQ4_XS> {
  static constexpr int kBlockElems = 256, kBlockBytes = 136;
  // int8 path: an item is half a super-block (chunks 4 item + p); lane p takes its whole chunk s:
  // the 16 qs bytes (two 8-byte loads: 136-byte blocks are 8-byte aligned) and the 8-byte header
  // (d, scales_h, scales_l), 32 weights per step, code book as IQ4_NL.
  static constexpr int kItemChunks = 4;
  struct Xq { uint4 l, h; float dx; };  // the chunk's 32 activations: elements 0..15, 16..31
  __device__ static int items(int n_chunks) { return n_chunks / 4; }
  __device__ static void load_xq(const int8_t* xq, const float* xd, int item, int p, int, Xq& v) {
    const int c = 4 * item + p;
    v.l = *reinterpret_cast<const uint4*>(xq + 32 * c);
    v.h = *reinterpret_cast<const uint4*>(xq + 32 * c + 16);
    v.dx = xd[c];
  }
  struct Raw { uint32_t q[4], hd[2]; };
  __device__ static void load_raw(const uint8_t* row, int item, int p, int, Raw& r) {
    const int s = 4 * (item & 1) + p;
    const uint8_t* b = row + static_cast<size_t>(item >> 1) * kBlockBytes;
    ld_2w<8>(b + 8 + 16 * s, r.q);
    ld_2w<8>(b + 16 + 16 * s, r.q + 2);
    ld_2w<8>(b, r.hd);
  }
  __device__ static float dot_raw(const Raw& r, int item, int p, int, const Xq& v) {
    const int s = 4 * (item & 1) + p;
    const uint32_t t[4] = {kIq4W0, kIq4W1, kIq4W2, kIq4W3};
    const int xl[4] = {static_cast<int>(v.l.x), static_cast<int>(v.l.y), static_cast<int>(v.l.z), static_cast<int>(v.l.w)};
    const int xh[4] = {static_cast<int>(v.h.x), static_cast<int>(v.h.y), static_cast<int>(v.h.z), static_cast<int>(v.h.w)};
    int a = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      a = rf_dp4a(static_cast<int>(lut16_s8(r.q[k] & 0x0f0f0f0fu, t)), xl[k], a);
      a = rf_dp4a(static_cast<int>(lut16_s8((r.q[k] >> 4) & 0x0f0f0f0fu, t)), xh[k], a);
    }
    // 6-bit scale: nibble s % 2 of scales_l[s / 2] (= bits 4s of the scales_l word) | bits 2s of
    // scales_h (the header word's high half) << 4, stored + 32
    const int ls = static_cast<int>(((r.hd[1] >> (4 * s)) & 15u) | (((r.hd[0] >> (16 + 2 * s)) & 3u) << 4)) - 32;
    return rf_half_to_float(r.hd[0] & 0xffffu) * v.dx * static_cast<float>(ls * a);
  }
  __device__ static void dequant(const uint8_t* row, int c, float v[32]) {
    const uint8_t* b = row + static_cast<size_t>(c >> 3) * kBlockBytes;
    const int s = c & 7;
    const uint32_t dh = ld_u32(b);
    const int ls = ((b[4 + (s >> 1)] >> (4 * (s & 1))) & 15) | (((dh >> (16 + 2 * s)) & 3) << 4);
    const float dl = rf_half_to_float(dh & 0xffffu) * (ls - 32);
    uint32_t w[4];
    ld_16<8>(b + 8 + 16 * s, w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t q = byte_of(w, i);
      v[i] = kIq4Values[q & 15] * dl;
      v[i + 16] = kIq4Values[q >> 4] * dl;
    }
  }
};

// True for formats with the dot8 decode fast path.
template <class F, class = void>
struct HasDot8 { static constexpr bool value = false; };
template <class F>
struct HasDot8<F, decltype(void(&F::dot8))> { static constexpr bool value = true; };

// True for formats with the int8-activation decode path: load_raw (the lane's weight words of one
// item into registers) and dot_raw (their dot product with the activations), split so the matvec
// can issue every row's loads, and the next item's, before the first multiply.
template <class F, class = void>
struct HasDot8q { static constexpr bool value = false; };
template <class F>
struct HasDot8q<F, decltype(void(&F::dot_raw))> { static constexpr bool value = true; };

// Calls f.template operator()<Fmt<T>>() for the runtime type id; returns false for unknown types.
template <typename F>
inline bool dispatch_type(uint32_t type, F&& f) {
  switch (type) {
    case kF32: f(Fmt<kF32>{}); return true;
    case kF16: f(Fmt<kF16>{}); return true;
    case kBF16: f(Fmt<kBF16>{}); return true;
    case kQ4_0: f(Fmt<kQ4_0>{}); return true;
    case kQ4_1: f(Fmt<kQ4_1>{}); return true;
    case kQ5_0: f(Fmt<kQ5_0>{}); return true;
    case kQ5_1: f(Fmt<kQ5_1>{}); return true;
    case kQ8_0: f(Fmt<kQ8_0>{}); return true;
    case kQ2_K: f(Fmt<kQ2_K>{}); return true;
    case kQ3_K: f(Fmt<kQ3_K>{}); return true;
    case kQ4_K: f(Fmt<kQ4_K>{}); return true;
    case kQ5_K: f(Fmt<kQ5_K>{}); return true;
    case kQ6_K: f(Fmt<kQ6_K>{}); return true;
    case kQ6_K_G8: f(Fmt<kQ6_K_G8>{}); return true;
    case kQ4_0_G8: f(Fmt<kQ4_0_G8>{}); return true;
    case kQ8_0_G8: f(Fmt<kQ8_0_G8>{}); return true;
    case kIQ4_NL: f(Fmt<kIQ4_NL>{}); return true;
    case kIQ4_XS: f(Fmt<kIQ4_XS>{}); return true;
    case kMXFP4: f(Fmt<kMXFP4>{}); return true;
    default: return false;
  }
}

}  // namespace rocforge::gpu
