// matmul.cpp - cpu::matmul / matmul_multi: quantize the activations once, split the output rows
// over the thread pool, and run the active ISA's kernel on each thread's rows.
//
// Rows only: no thread ever shares a reduction, so every output is computed by the same
// instruction sequence whatever the thread count (bit-identical logits for 1 or N threads).
#include <algorithm>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kernels_amx.h"
#include "cpu/ops.h"
#include "rocforge/error.h"
#include "rocforge/quant.h"

namespace rocforge::cpu {
namespace {

const KernelTable& table_for(IsaLevel l) {
  const KernelTable* t = nullptr;
  switch (l) {
    case IsaLevel::Avx512: t = amx_enabled() ? amx_kernels() : avx512_kernels(); break;  // AMX: prompt GEMM only
    case IsaLevel::Avx2: t = avx2_kernels(); break;
    case IsaLevel::Neon: t = neon_kernels(); break;
    case IsaLevel::Scalar: break;
  }
  return t ? *t : scalar_kernels();
}

// Quantized activations of one block size, reused across calls (grown, never shrunk).
struct ActBuffer {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int16_t> s16;
  std::vector<int32_t> lanes;

  QActView quantize(const KernelTable& k, const float* x, int64_t n, int64_t T, int block, ThreadPool& pool) {
    q.resize(static_cast<size_t>(T * n));
    d.resize(static_cast<size_t>(T * n / block));
    ds.resize(static_cast<size_t>(T * n / 32));
    s16.resize(static_cast<size_t>(T * n / 16));
    lanes.resize(static_cast<size_t>(T * n / 4));
    auto rows = [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t)
        k.quantize_act(x + t * n, n, block, q.data() + t * n, d.data() + t * n / block, s16.data() + t * n / 16,
                       lanes.data() + t * n / 4, ds.data() + t * n / 32);
    };
    if (T >= 8) pool.parallel_for(T, rows);
    else rows(0, T, 0);
    return {block, n, T, q.data(), d.data(), s16.data(), lanes.data(), ds.data()};
  }
};

bool cpu_supports(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0: case GgmlType::Q4_1:
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_NL: case GgmlType::IQ4_XS:
    case GgmlType::MXFP4:
      return true;
    default: return false;
  }
}

void check(const QMatrix& w, int64_t cols) {
  if (w.cols != cols) throw Error("matmul: matrices of one call must share the input width");
  const auto& tr = ggml_type_traits(w.type);
  if (!cpu_supports(w.type)) throw Error("matmul: weight type " + std::string(tr.name) + " is not supported on the CPU");
  if (w.cols % tr.block_elems != 0) throw Error("matmul: row width is not a multiple of the block size");
}

// Q2_K, Q3_K and IQ4_XS fill the panel through the generic decode_block (~1 GB/s): a fixed cost
// per call that their SIMD tiles beat below ~100 tokens (avx512, W[1024 x 2048]: T = 16 tiles
// 51-60 vs panel 13-17 GMAC/s, T = 64 51-58 vs 36-42, T = 128 51-58 vs 58-65).
constexpr int64_t kPanelMinTokensSlowUnpack = 128;

// Whether weights of type t meet f32 activations (gemm_f): float types everywhere, and the
// quantized types the AMX table takes on AMX-BF16 (kernels_amx.h: amx_bf16_takes).
bool float_acts(const KernelTable& kt, GgmlType t, int64_t T) {
  return act_block_for(t) == 0 || (&kt == amx_kernels() && amx_bf16_takes(t, T));
}

bool use_panel(const KernelTable& kt, GgmlType t, int64_t T) {
  const bool slow_unpack = t == GgmlType::Q2_K || t == GgmlType::Q3_K || t == GgmlType::IQ4_XS;
  return kt.gemm_panel && T >= (slow_unpack ? kPanelMinTokensSlowUnpack : kPanelMinTokens) && !float_acts(kt, t, T);
}

}  // namespace

int matmul_act_block(GgmlType t, int64_t T) {
  const KernelTable& kt = table_for(active_isa());
  if (float_acts(kt, t, T)) return 0;
  return use_panel(kt, t, T) ? 32 : act_block_for(t);
}

void matmul_multi(const QMatrix* ws, float* const* ys, int count, const float* x, int64_t T, ThreadPool& pool) {
  if (count <= 0 || T <= 0) return;
  const int64_t n = ws[0].cols;
  for (int k = 0; k < count; ++k) check(ws[k], n);
  const KernelTable& kt = table_for(active_isa());

  // One quantized copy of x per activation block size needed (32 and/or 256).
  thread_local ActBuffer buf32, buf256;
  QActView act32, act256;
  bool need32 = false, need256 = false;
  for (int k = 0; k < count; ++k) {
    const int blk = float_acts(kt, ws[k].type, T) ? 0 : use_panel(kt, ws[k].type, T) ? 32 : act_block_for(ws[k].type);
    need32 |= blk == 32;
    need256 |= blk == 256;
  }
  if (need32) act32 = buf32.quantize(kt, x, n, T, 32, pool);
  if (need256) act256 = buf256.quantize(kt, x, n, T, 256, pool);

  int64_t total = 0;
  std::vector<int64_t> start(static_cast<size_t>(count) + 1);
  for (int k = 0; k < count; ++k) start[k + 1] = total += ws[k].rows;

  auto run_rows = [&](int64_t b, int64_t e) {
    for (int k = 0; k < count; ++k) {
      const int64_t r0 = std::max(b, start[k]) - start[k], r1 = std::min(e, start[k + 1]) - start[k];
      if (r0 >= r1) continue;
      const QMatrix& w = ws[k];
      const int blk = act_block_for(w.type);
      if (float_acts(kt, w.type, T)) {
        if (!kt.gemm_f(w.type, w.data, w.row_bytes, n, r0, r1, x, T, ys[k], w.rows) &&
            !scalar_kernels().gemm_f(w.type, w.data, w.row_bytes, n, r0, r1, x, T, ys[k], w.rows)) {
          // A quantized type the AMX-BF16 GEMM could not take (its scratch allocation failed):
          // the reference dot products (slow, but never a wrong result).
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t t = 0; t < T; ++t)
              ys[k][t * w.rows + r] = quant::dot_row_ref(w.type, w.data + r * w.row_bytes, x + t * n, n);
        }
        continue;
      }
      if (use_panel(kt, w.type, T)) {
        if (!kt.gemm_panel(w.type, w.data, w.row_bytes, r0, r1, act32, ys[k], w.rows))
          scalar_kernels().gemm_q(w.type, w.data, w.row_bytes, r0, r1, act32, ys[k], w.rows);
        continue;
      }
      const QActView& a = blk == 32 ? act32 : act256;
      // Every type check() admits has a scalar path, so the fallback cannot fail (and a worker
      // thread must not throw).
      if (!kt.gemm_q(w.type, w.data, w.row_bytes, r0, r1, a, ys[k], w.rows))
        scalar_kernels().gemm_q(w.type, w.data, w.row_bytes, r0, r1, a, ys[k], w.rows);
    }
  };

  // Grain 16 = the panel height (a multiple of the tile kernels' 4 rows), so no tile or panel is
  // split between threads. Tiny products stay on this thread (one grain covering every row).
  const bool split = ThreadPool::worth_splitting(total * n * T) && pool.size() > 1;
  if (split && T < kPanelMinTokens) {
    // Decode-sized batches stream their weights from DRAM: the threads share the bandwidth unevenly
    // from one call to the next, and the matrices of one call may differ in bytes per row (Q4_K_M
    // mixes Q4_K and Q6_K), so an even split of rows left each thread waiting for the other ~8% of
    // the step. Rows go out in chunks of ~kDecodeChunkBytes instead, taken by whichever thread is
    // free; chunks are long enough for the kernels' row streams (gemv_streams) to stay efficient.
    constexpr int64_t kDecodeChunkBytes = int64_t(256) << 10;
    thread_local std::vector<int64_t> cuts;  // chunk boundaries in the concatenated row space
    cuts.clear();
    for (int k = 0; k < count; ++k) {
      const int64_t rb = std::max<int64_t>(static_cast<int64_t>(ws[k].row_bytes), 1);
      const int64_t rows = std::max<int64_t>(kDecodeChunkBytes / rb / 16 * 16, 16);
      for (int64_t r = 0; r < ws[k].rows; r += rows) cuts.push_back(start[k] + r);
    }
    cuts.push_back(total);
    const int64_t* cut = cuts.data();  // this thread's copy (the workers have their own thread_local)
    pool.for_each_task(static_cast<int64_t>(cuts.size()) - 1, [&](int64_t c, int) { run_rows(cut[c], cut[c + 1]); });
    return;
  }
  if (!split || count == 1) {
    pool.parallel_for(total, [&](int64_t b, int64_t e, int) { run_rows(b, e); }, split ? 16 : total);
    return;
  }
  // Prompts, several matrices: every thread takes its share of each matrix (cut at multiples of
  // 16 rows), not a share of the concatenated rows, where one thread got all of Q and the other
  // the rest of Q plus K and V. The matrices may differ in format and kernel (Q4_K_M: V in Q6_K)
  // and each kernel call packs the activations again, so the concatenated split left one thread
  // waiting.
  const int parts = pool.size();
  pool.parallel_for(parts, [&](int64_t p0, int64_t p1, int) {
    for (int64_t part = p0; part < p1; ++part)
      for (int k = 0; k < count; ++k) {
        const int64_t rows = ws[k].rows;
        const int64_t b = rows * part / parts / 16 * 16, e = part + 1 == parts ? rows : rows * (part + 1) / parts / 16 * 16;
        if (b < e) run_rows(start[k] + b, start[k] + e);
      }
  });
}

void matmul(const QMatrix& w, const float* x, int64_t T, float* y, ThreadPool& pool) {
  float* ys[1] = {y};
  matmul_multi(&w, ys, 1, x, T, pool);
}

}  // namespace rocforge::cpu
