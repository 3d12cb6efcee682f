// attention_prefill.hip - causal attention of a prompt chunk over the paged F16 or Q8_0 KV cache
// (the chunk's own K/V already stored), flash-style with an online softmax. GQA/MQA: query head h
// reads KV head h / (n_head / n_kv_head) straight from the shared pool.
#include "gpu/attention_prefill.h"

namespace rocforge::gpu {
namespace {

// ---------------------------------------------------------------- simple kernel (any head size)
// One wave per query row (token t, head h), streaming keys 0 .. pos0 + t with an online softmax.
// Lane l holds elements l, l + wave, ... of q and of the output accumulator. The waves of a block are
// consecutive heads of one token, so heads sharing a KV head read the same K/V lines (cache hits).
template <class Kv>
__global__ void prefill_kernel(const float* __restrict__ q, const void* __restrict__ k_pool,
                               const void* __restrict__ v_pool, const int32_t* __restrict__ table, int pos0,
                               int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, float scale,
                               float* __restrict__ out) {
  constexpr int kPer = kMaxHeadDim / 32;
  const int lane = threadIdx.x % warpSize;
  const size_t row = static_cast<size_t>(blockIdx.x) * (blockDim.x / warpSize) + threadIdx.x / warpSize;
  if (row >= static_cast<size_t>(n_tok) * n_head) return;
  const int t = static_cast<int>(row / n_head), h = static_cast<int>(row % n_head);
  const int kvh = h / (n_head / n_kv_head);
  const float* qr = q + row * head_dim;
  float qv[kPer], acc[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int d = lane + j * warpSize;
    qv[j] = d < head_dim ? qr[d] * scale : 0.f;
    acc[j] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  const int last = pos0 + t;
  for (int p = 0; p <= last; ++p) {
    const typename Kv::Row kr = Kv::row(k_pool, table, p, block_size, n_kv_head, kvh, head_dim);
    const typename Kv::Row vr = Kv::row(v_pool, table, p, block_size, n_kv_head, kvh, head_dim);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int d = lane + j * warpSize;
      if (d < head_dim) s = fmaf(qv[j], Kv::get(kr, d), s);
    }
    s = rf_wave_sum(s);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float e = expf(s - m_new);
    l = l * corr + e;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int d = lane + j * warpSize;
      const float vv = d < head_dim ? Kv::get(vr, d) : 0.f;
      acc[j] = fmaf(e, vv, acc[j] * corr);
    }
    m = m_new;
  }
  float* o = out + row * head_dim;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int d = lane + j * warpSize;
    if (d < head_dim) o[d] = acc[j] / l;
  }
}

// Tiled prefill (head_dim 64 or 128): block (query tile, head) covers kTileQ consecutive tokens of one
// head. Four consecutive threads share a query row, thread part j holding the row's 16-byte groups
// i * 4 + j (8 dims each) of q and of the output, so one 16-byte shared-memory load per thread reads a
// key row's 64 contiguous bytes across the four parts (no bank conflicts; the block's other rows read
// the same bytes: broadcast). K/V tiles of kTileK positions are staged as f16 in shared memory (a
// Q8_0 cache's rows dequantized on the way) once for all kTileQ rows; four keys at a time are scored
// (partial dots, two xor-shuffles within the aligned lane quad, wave-size agnostic) and folded into
// an online softmax. Keys past a row's
// position score -inf; staged slots past the range are zero (no NaN from stale bytes).
constexpr int kTileQ = 64, kTileK = 64, kTiledThreads = 256;

template <int D, class Kv>
__global__ void __launch_bounds__(kTiledThreads)
    prefill_tiled_kernel(const float* __restrict__ q, const void* __restrict__ k_pool,
                         const void* __restrict__ v_pool, const int32_t* __restrict__ table, int pos0, int n_tok,
                         int n_head, int n_kv_head, int block_size, float scale, float* __restrict__ out) {
  constexpr int kGroups = D / 32;  // 16-byte groups per thread part
  __shared__ uint4 ks[kTileK][D / 8];
  __shared__ uint4 vs[kTileK][D / 8];
  const int h = blockIdx.y, kvh = h / (n_head / n_kv_head);
  const int t0 = blockIdx.x * kTileQ;
  const int row = threadIdx.x / 4, part = threadIdx.x % 4;
  const int t = t0 + row;
  const bool valid = t < n_tok;
  const int last = pos0 + (valid ? t : n_tok - 1);  // this row's last key
  float qv[kGroups][8], acc[kGroups][8];
  {
    const float* qr = q + (static_cast<size_t>(valid ? t : 0) * n_head + h) * D;
#pragma unroll
    for (int i = 0; i < kGroups; ++i)
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        qv[i][e] = qr[(i * 4 + part) * 8 + e] * scale;
        acc[i][e] = 0.f;
      }
  }
  float m = -INFINITY, l = 0.f;
  const int block_last = pos0 + min(n_tok, t0 + kTileQ) - 1;
  for (int k0 = 0; k0 <= block_last; k0 += kTileK) {
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < kTileK * (D / 8); i += kTiledThreads) {
      const int kk = i / (D / 8), c = i % (D / 8);
      const int p = k0 + kk;
      uint4 kv = make_uint4(0u, 0u, 0u, 0u), vv = kv;
      if (p <= block_last) {
        kv = tile_word(Kv::load8(Kv::row(k_pool, table, p, block_size, n_kv_head, kvh, D), c));
        vv = tile_word(Kv::load8(Kv::row(v_pool, table, p, block_size, n_kv_head, kvh, D), c));
      }
      ks[kk][c] = kv;
      vs[kk][c] = vv;
    }
    __syncthreads();
    const int n_keys = min(kTileK, block_last - k0 + 1);
    for (int kk = 0; kk < n_keys; kk += 4) {
      float sc[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < kGroups; ++i) {
          const uint4 w = ks[kk + j][i * 4 + part];
          const uint32_t wv[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s = fmaf(qv[i][2 * e], rf_half_to_float(static_cast<uint16_t>(wv[e] & 0xffffu)), s);
            s = fmaf(qv[i][2 * e + 1], rf_half_to_float(static_cast<uint16_t>(wv[e] >> 16)), s);
          }
        }
        s += rf_shfl_xor(s, 1);
        s += rf_shfl_xor(s, 2);
        sc[j] = (k0 + kk + j <= last && kk + j < n_keys) ? s : -INFINITY;
      }
      const float m_new = fmaxf(fmaxf(m, fmaxf(sc[0], sc[1])), fmaxf(sc[2], sc[3]));
      if (m_new == -INFINITY) continue;  // nothing visible yet (cannot happen: key 0 comes first)
      const float corr = expf(m - m_new);
      float ev[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) ev[j] = expf(sc[j] - m_new);
      l = l * corr + ((ev[0] + ev[1]) + (ev[2] + ev[3]));
#pragma unroll
      for (int i = 0; i < kGroups; ++i) {
        float vf[4][8];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint4 w = vs[kk + j][i * 4 + part];
          const uint32_t wv[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            vf[j][2 * e] = rf_half_to_float(static_cast<uint16_t>(wv[e] & 0xffffu));
            vf[j][2 * e + 1] = rf_half_to_float(static_cast<uint16_t>(wv[e] >> 16));
          }
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float a = acc[i][e] * corr;
#pragma unroll
          for (int j = 0; j < 4; ++j) a = fmaf(ev[j], vf[j][e], a);
          acc[i][e] = a;
        }
      }
      m = m_new;
    }
  }
  if (!valid) return;
  float* o = out + (static_cast<size_t>(t) * n_head + h) * D;
  const float inv = 1.f / l;
#pragma unroll
  for (int i = 0; i < kGroups; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) o[(i * 4 + part) * 8 + e] = acc[i][e] * inv;
}

}  // namespace

int launch_prefill_tiled(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                         int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                         float* out, hipStream_t s) {
  // The tiled kernel reads K/V rows as 16-byte groups: pools 16-byte aligned (cudaMalloc'd).
  const bool aligned = reinterpret_cast<uintptr_t>(k_pool) % 16 == 0 && reinterpret_cast<uintptr_t>(v_pool) % 16 == 0;
  if (!aligned || (head_dim != 64 && head_dim != 128)) return -1;
  const bool q8 = kv_type == RF_KV_Q8_0;
  const dim3 grid((n_tok + kTileQ - 1) / kTileQ, n_head);
  auto tiled = [&](auto kernel) {
    kernel<<<grid, kTiledThreads, 0, s>>>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale,
                                          out);
    return check(hipGetLastError(), "attn_prefill (tiled)");
  };
  if (head_dim == 128) return q8 ? tiled(prefill_tiled_kernel<128, KvQ8>) : tiled(prefill_tiled_kernel<128, KvF16>);
  return q8 ? tiled(prefill_tiled_kernel<64, KvQ8>) : tiled(prefill_tiled_kernel<64, KvF16>);
}

int attn_prefill(const float* q, const void* k_pool, const void* v_pool, const int32_t* block_table, int pos0,
                 int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                 float* out, hipStream_t s) {
  if (int rc = check_heads("attn_prefill", n_head, n_kv_head, head_dim, block_size)) return rc;
  if (int rc = check_kv_type("attn_prefill", kv_type, head_dim, block_size, n_kv_head)) return rc;
  if (n_tok < 0 || pos0 < 0) return fail("attn_prefill: bad range (pos0 %d, tokens %d)", pos0, n_tok);
  if (n_tok == 0) return 0;
  // The matrix units where the device has them and their kernel passed its check (head_dim 64 / 128,
  // aligned pools), else the tiled fp32 kernel (the same shapes), else one wave per row (any head size).
  if ((head_dim == 64 || head_dim == 128) && attention_mma_ready(s) > 0)
    if (const int rc = launch_prefill_mma(q, k_pool, v_pool, block_table, pos0, n_tok, n_head, n_kv_head, head_dim,
                                          block_size, kv_type, scale, out, s);
        rc >= 0)
      return rc;
  if (const int rc = launch_prefill_tiled(q, k_pool, v_pool, block_table, pos0, n_tok, n_head, n_kv_head, head_dim,
                                          block_size, kv_type, scale, out, s);
      rc >= 0)
    return rc;
  const bool q8 = kv_type == RF_KV_Q8_0;
  const int waves = 256 / wave_size();
  const size_t rows = static_cast<size_t>(n_tok) * n_head;
  (q8 ? prefill_kernel<KvQ8> : prefill_kernel<KvF16>)<<<static_cast<unsigned>((rows + waves - 1) / waves), 256, 0, s>>>(
      q, k_pool, v_pool, block_table, pos0, n_tok, n_head, n_kv_head, head_dim, block_size, scale, out);
  return check(hipGetLastError(), "attn_prefill");
}

const char* prompt_attention(hipStream_t s) {
  const int r = attention_mma_ready(s);
  return r > 0 ? "matrix units" : r < 0 ? "fp32 tiles" : "undecided";
}

}  // namespace rocforge::gpu
