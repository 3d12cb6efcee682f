// kv_layout.h - where a position's K/V row lives in the paged cache, shared by the attention
// kernels and the q/k/v matvec epilogue that stores the decode token's K/V (matvec.hip).
//   F16 pool:  [n_blocks][n_kv_head][block_size][head_dim] half; position p of a sequence is slot
//              p % block_size of block table[p / block_size].
//   Q8_0 pool: per cache block, the int8 codes [n_kv_head][block_size][head_dim] and then the f16
//              scales [n_kv_head][block_size][head_dim / 32] (one per 32 values, ggml's block_q8_0
//              math: d = max|x| / 127, q = round(x / d)). Codes and scales live in separate planes so
//              that a row's codes stay 16-byte aligned for vector loads.
#pragma once

#include "gpu/kernels.h"

namespace rocforge::gpu {

constexpr int kMaxHeadDim = 256;  // attention kernels' largest head
constexpr int kMaxGroup = 16;     // query heads per KV head

// Validates the head layout an attention launcher is given (0, or 1 after recording the error).
inline int check_heads(const char* what, int n_head, int n_kv_head, int head_dim, int block_size) {
  if (n_head <= 0 || n_kv_head <= 0 || n_head % n_kv_head != 0)
    return fail("%s: n_head %d must be a positive multiple of n_kv_head %d", what, n_head, n_kv_head);
  if (n_head / n_kv_head > kMaxGroup)
    return fail("%s: %d query heads per KV head (max %d)", what, n_head / n_kv_head, kMaxGroup);
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > kMaxHeadDim)
    return fail("%s: head_dim %d must be even and <= %d", what, head_dim, kMaxHeadDim);
  if (block_size <= 0) return fail("%s: bad KV block size %d", what, block_size);
  return 0;
}

__device__ inline size_t pool_index(const int32_t* table, int p, int block_size, int n_kv_head, int kvh,
                                    int head_dim) {
  const int blk = table[p / block_size];
  return ((static_cast<size_t>(blk) * n_kv_head + kvh) * block_size + p % block_size) * head_dim;
}

// ---- Q8_0 pools (RF_KV_Q8_0): bytes of one cache block, and a row's codes / scales.
// (rf_kv_pool_bytes in backend_api.h is this for whole pools, on the host: it has no device side.)
__host__ __device__ inline size_t kv_q8_block_bytes(int block_size, int n_kv_head, int head_dim) {
  const size_t values = static_cast<size_t>(block_size) * n_kv_head * head_dim;
  return values + values / 32 * 2;
}
struct KvQ8Row {
  size_t codes;   // byte offset of the row's head_dim int8 codes
  size_t scales;  // byte offset of its head_dim / 32 f16 scales
};
__device__ inline KvQ8Row kv_q8_row(const int32_t* table, int p, int block_size, int n_kv_head, int kvh, int head_dim) {
  const size_t blk = static_cast<size_t>(table[p / block_size]);
  const size_t row = static_cast<size_t>(kvh) * block_size + p % block_size;
  const size_t base = blk * kv_q8_block_bytes(block_size, n_kv_head, head_dim);
  const size_t plane = static_cast<size_t>(block_size) * n_kv_head * head_dim;
  return {base + row * head_dim, base + plane + row * (head_dim / 32) * 2};
}

// Validates a kv_type argument against the head layout (0, or 1 after recording the error).
inline int check_kv_type(const char* what, int kv_type, int head_dim, int block_size, int n_kv_head) {
  if (kv_type == RF_KV_F16) return 0;
  if (kv_type != RF_KV_Q8_0) return fail("%s: unknown K/V cache type %d", what, kv_type);
  if (head_dim % 32 != 0) return fail("%s: a Q8_0 K/V cache needs head_dim %% 32 == 0 (head_dim %d)", what, head_dim);
  // Row codes are read 8 bytes at a time: every cache block must keep them 16-byte aligned.
  if (kv_q8_block_bytes(block_size, n_kv_head, head_dim) % 16 != 0)
    return fail("%s: Q8_0 K/V blocks of %d positions x %d heads x %d are not 16-byte multiples", what, block_size,
                n_kv_head, head_dim);
  return 0;
}

// Four int8 codes of w as floats. CUDA: a byte permute puts code + 128 under the exponent of 2^23
// (exact), one subtraction removes both; AMD: its byte-to-float conversions. Both run at full rate,
// where a plain int-to-float conversion runs at a quarter (it dominated the Q8_0 attention's score loop).
__device__ inline void s8x4_to_float(uint32_t w, float* f) {
  const uint32_t u = w ^ 0x80808080u;  // each byte: code + 128
#if defined(__CUDA_ARCH__)
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = __int_as_float(static_cast<int>(__byte_perm(u, 0x4B000000u, 0x7650u + j))) - 8388736.f;
#else
#pragma unroll
  for (int j = 0; j < 4; ++j) f[j] = static_cast<float>((u >> (8 * j)) & 0xffu) - 128.f;
#endif
}

// Element-type views of a pool for the attention kernels: one cached row at a time, 8 values (one
// vector) or 2 values (a pair) at once. Raw8 is what a thread holds in registers between its load
// and its use (F16: 16 bytes; Q8_0: 8 codes and their block's scale).
struct KvF16 {
  static constexpr bool kQ8 = false;
  struct Row { const uint16_t* p; };
  struct Raw8 { uint4 w; };
  __device__ static Row row(const void* pool, const int32_t* table, int p, int bs, int n_kv_head, int kvh, int d) {
    return {static_cast<const uint16_t*>(pool) + pool_index(table, p, bs, n_kv_head, kvh, d)};
  }
  __device__ static Raw8 load8(const Row& r, int v) { return {reinterpret_cast<const uint4*>(r.p)[v]}; }
  __device__ static void unpack8(const Raw8& raw, float (&f)[8]) {
    const uint32_t w[4] = {raw.w.x, raw.w.y, raw.w.z, raw.w.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      f[2 * j] = rf_half_to_float(static_cast<uint16_t>(w[j] & 0xffffu));
      f[2 * j + 1] = rf_half_to_float(static_cast<uint16_t>(w[j] >> 16));
    }
  }
  // The 8 values as codes and one scale (F16: the values, scale 1), so that a dot product can apply
  // the scale once per vector.
  __device__ static void codes8(const Raw8& raw, float (&f)[8]) { unpack8(raw, f); }
  __device__ static float scale(const Raw8&) { return 1.f; }
  __device__ static float get(const Row& r, int d) { return rf_half_to_float(r.p[d]); }
  __device__ static void pair(const Row& r, int d2, float& a, float& b) {
    const uint32_t w = reinterpret_cast<const uint32_t*>(r.p)[d2];
    a = rf_half_to_float(static_cast<uint16_t>(w & 0xffffu));
    b = rf_half_to_float(static_cast<uint16_t>(w >> 16));
  }
};
struct KvQ8 {
  static constexpr bool kQ8 = true;
  struct Row { const int8_t* q; const uint16_t* d; };
  struct Raw8 { uint2 q; float d; };
  __device__ static Row row(const void* pool, const int32_t* table, int p, int bs, int n_kv_head, int kvh, int d) {
    const KvQ8Row at = kv_q8_row(table, p, bs, n_kv_head, kvh, d);
    const auto* base = static_cast<const uint8_t*>(pool);
    return {reinterpret_cast<const int8_t*>(base + at.codes), reinterpret_cast<const uint16_t*>(base + at.scales)};
  }
  __device__ static Raw8 load8(const Row& r, int v) {
    return {reinterpret_cast<const uint2*>(r.q)[v], rf_half_to_float(r.d[v / 4])};
  }
  __device__ static void codes8(const Raw8& raw, float (&f)[8]) {
    s8x4_to_float(raw.q.x, f);
    s8x4_to_float(raw.q.y, f + 4);
  }
  __device__ static float scale(const Raw8& raw) { return raw.d; }
  __device__ static void unpack8(const Raw8& raw, float (&f)[8]) {
    codes8(raw, f);
#pragma unroll
    for (int j = 0; j < 8; ++j) f[j] *= raw.d;
  }
  __device__ static float get(const Row& r, int d) { return rf_half_to_float(r.d[d / 32]) * static_cast<float>(r.q[d]); }
  __device__ static void pair(const Row& r, int d2, float& a, float& b) {
    const float sc = rf_half_to_float(r.d[d2 / 16]);
    a = sc * static_cast<float>(r.q[2 * d2]);
    b = sc * static_cast<float>(r.q[2 * d2 + 1]);
  }
};

// One value of a Q8_0 row given its 32-value group's max |x| (ggml's block_q8_0 rule, as the CPU
// cache): the code round(x / d), half away from zero, from the f32 d = amax / 127, and d as f16.
struct KvQ8Value {
  int8_t code;
  uint16_t d;
};
__device__ inline KvQ8Value kv_q8_quantize(float x, float amax) {
  const float d = amax / 127.f;
  const float inv = d != 0.f ? 1.f / d : 0.f;
  return {static_cast<int8_t>(roundf(x * inv)), rf_float_to_half(d)};
}
// Writes value d of a row quantized as qv into a Q8_0 pool at `at` (its code; the group's scale from
// the group's first value).
__device__ inline void kv_q8_put(void* pool, const KvQ8Row& at, int d, KvQ8Value qv) {
  auto* base = static_cast<uint8_t*>(pool);
  reinterpret_cast<int8_t*>(base + at.codes)[d] = qv.code;
  if (d % 32 == 0) reinterpret_cast<uint16_t*>(base + at.scales)[d / 32] = qv.d;
}
// The max |x| over an aligned 32-lane group (every lane of the wave must call it).
__device__ inline float group32_amax(float x) {
  float amax = fabsf(x);
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
  return amax;
}

// Stores one row of head_dim values (thread t holds values t, t + nt, ...; every thread of the block
// calls it the same number of times, values past the row passing 0): F16 as is, Q8_0 quantized per
// 32 values. A 32-value block's amax comes from xor-shuffles within an aligned 32-lane group, which
// 32 consecutive values are when nt is a multiple of 32 (either wave width).
__device__ inline void kv_store_value(void* pool, int kv_type, const int32_t* table, int p, int bs, int n_kv_head,
                                      int kvh, int head_dim, int d, float x) {
  if (kv_type != RF_KV_Q8_0) {
    if (d < head_dim) static_cast<uint16_t*>(pool)[pool_index(table, p, bs, n_kv_head, kvh, head_dim) + d] = rf_float_to_half(x);
    return;
  }
  const float amax = group32_amax(d < head_dim ? x : 0.f);
  if (d >= head_dim) return;
  kv_q8_put(pool, kv_q8_row(table, p, bs, n_kv_head, kvh, head_dim), d, kv_q8_quantize(x, amax));
}

}  // namespace rocforge::gpu
