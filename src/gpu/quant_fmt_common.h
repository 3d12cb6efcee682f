// quant_fmt_common.h - the shared parts of the device-side weight decoders (quant_formats.h): type
// ids, load helpers, int8-activation loaders, and the plain F32/F16/BF16 rows.
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
  kQ4_0_G8 = 1002, kQ8_0_G8 = 1008, kQ3_K_G8 = 1011, kQ6_K_G8 = 1014,
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

// sum over the 8 weights of the code-book word u (low nibbles: the elements whose activations are
// xl's bytes, high nibbles: xh's) of book[nibble] * x, plus acc. On CUDA prmt reads its selectors as
// the nibbles of a 16-bit value, so a word's own nibbles select directly: two permutes look up
// entries n % 8 of the book's halves for four nibbles, a third picks the half by bit 3 (selector
// k | 4 * bit3), and the activations are permuted to the nibbles' order (lo, hi of byte 0, then of
// byte 1) instead of the codes to theirs - ~6 instructions per four weights where lut16_s8 takes ~12
// (the x permutes are shared by the rows a thread reads). The sum is the same integer either way.
__device__ inline int book_dot8(uint32_t u, int xl, int xh, const uint32_t t[4], int acc) {
#if defined(__CUDA_ARCH__)
  const uint32_t s = u & 0x77777777u, s_hi = s >> 16;
  const uint32_t c0 = __byte_perm(__byte_perm(t[0], t[1], s), __byte_perm(t[2], t[3], s), 0x3210u | ((u >> 1) & 0x4444u));
  const uint32_t c1 =
      __byte_perm(__byte_perm(t[0], t[1], s_hi), __byte_perm(t[2], t[3], s_hi), 0x3210u | ((u >> 17) & 0x4444u));
  const uint32_t xu = static_cast<uint32_t>(xl), xv = static_cast<uint32_t>(xh);
  acc = rf_dp4a(static_cast<int>(c0), static_cast<int>(__byte_perm(xu, xv, 0x5140u)), acc);
  return rf_dp4a(static_cast<int>(c1), static_cast<int>(__byte_perm(xu, xv, 0x7362u)), acc);
#else
  acc = rf_dp4a(static_cast<int>(lut16_s8(u & 0x0f0f0f0fu, t)), xl, acc);
  return rf_dp4a(static_cast<int>(lut16_s8((u >> 4) & 0x0f0f0f0fu, t)), xh, acc);
#endif
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

}  // namespace rocforge::gpu
