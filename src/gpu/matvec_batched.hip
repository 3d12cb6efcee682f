// matvec_batched.hip - the int8 decode product for several tokens at once (matvec_q8_multi: decode
// steps of a few sequences, each weight read once for all of them) and for mixture-of-experts slots
// (matvec_experts: each slot's expert chosen on the device). The row loop and launch tuning are
// matvec.hip's (matvec_common.h).
#include "gpu/kernels.h"
#include "gpu/matvec_common.h"
#include "gpu/matvec_staged.h"
#include "gpu/matvec_stores.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kMultiMaxTokens = 16;  // tokens per matvec_q8_multi launch

// Decode of a few sequences at once (one token each): R rows per thread group, as matvec8q_rows, each
// weight word loaded once for all n_tok <= NT tokens (the loop over tokens is uniform: n_tok is the
// same for the whole grid). x: n_tok rows of int8 from one quantize_q8 over n_tok * cols; y: [n_tok][rows].
template <class F, int R, int NT, bool UsePrep>
__global__ void __launch_bounds__(kBlock) matvec8q_multi_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                                const int8_t* __restrict__ xq,
                                                                const float* __restrict__ xd, float* __restrict__ y,
                                                                int rows, int cols, int group, int n_tok) {
  __shared__ float part[R * NT][kRfMaxWavesPerBlock];
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int n_chunks = cols / 32, n_items = F::items(n_chunks);
  const int p = gl & 3, step = group >> 2;
  const int row0 = (blockIdx.x * groups + g) * R;
  float acc[R][NT] = {};
  if (row0 < rows) {
    const uint8_t* rp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
    for (int it = gl >> 2; it < n_items; it += step) {
      typename F::Raw raw[R];
#pragma unroll
      for (int r = 0; r < R; ++r) F::load_raw(rp[r], it, p, n_chunks, raw[r]);
      // Every token's activations against the rows' item; dot(r, xv) is row r's product.
      auto over_tokens = [&](auto&& dot) {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t < n_tok) {
            typename F::Xq xv;
            F::load_xq(xq + static_cast<size_t>(t) * cols, xd + static_cast<size_t>(t) * n_chunks, it, p, n_chunks, xv);
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r][t] += dot(r, xv);
          }
        }
      };
      if constexpr (UsePrep && HasPrep<F>::value) {
        // The weights' half of the dot product once, then only the activations' half per token.
        typename F::Prep w[R];
#pragma unroll
        for (int r = 0; r < R; ++r) F::prep(raw[r], it, p, n_chunks, w[r]);
        over_tokens([&](int r, const typename F::Xq& xv) { return F::dot_prep(w[r], xv); });
      } else {
        over_tokens([&](int r, const typename F::Xq& xv) { return F::dot_raw(raw[r], it, p, n_chunks, xv); });
      }
    }
  }
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  const int m = min(R, rows - row0);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = rf_wave_sum(acc[r][t]);
  // acc is indexed by constants only (unrolled loops, runtime bounds as predicates): an index known
  // only at run time put the array in scratch memory (48-80 bytes a lane on every AMD target, a 32-64
  // byte stack frame on NVIDIA; tests/gpu/amdgpu_scratch.sh).
  if (group == warpSize) {
    if (lane == 0 && row0 < rows)
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int r = 0; r < R; ++r)
          if (t < n_tok && r < m) y[static_cast<size_t>(t) * rows + row0 + r] = acc[r][t];
    return;
  }
  if (lane == 0)
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) part[r * NT + t][wave] = acc[r][t];
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (t >= n_tok || r >= m) continue;
        float sum = 0.f;
        for (int i = 0; i < per_group; ++i) sum += part[r * NT + t][wave + i];
        y[static_cast<size_t>(t) * rows + row0 + r] = sum;
      }
  }
}

// Mixture of experts: slot s = blockIdx.y multiplies expert ids[s] of a stacked [n_expert][rows][cols]
// tensor (expert e at w + e * expert_stride) with int8 x row s / x_div: gate/up pass x_div = k (each
// of a token's k slots reads the token's input), the down projection 1 (each slot its own).
template <class F, int R>
__global__ void __launch_bounds__(kBlock) matvec8q_experts_kernel(const uint8_t* __restrict__ w, size_t expert_stride,
                                                                  size_t stride, int n_expert,
                                                                  const int32_t* __restrict__ ids, int x_div,
                                                                  const int8_t* __restrict__ xq,
                                                                  const float* __restrict__ xd, float* __restrict__ y,
                                                                  int rows, int cols, int group) {
  __shared__ float part[R][kRfMaxWavesPerBlock];
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int slot = blockIdx.y, e = ids[slot], xr = slot / x_div;
  float* ys = y + static_cast<size_t>(slot) * rows;
  const int per_block = blockDim.x / group * R;
  if (e < 0 || e >= n_expert) {  // never from moe_route: a bad id gives NaN rows, not a stray read
    for (int i = threadIdx.x; i < per_block; i += blockDim.x)
      if (blockIdx.x * per_block + i < rows) ys[blockIdx.x * per_block + i] = __int_as_float(0x7fc00000);
    return;
  }
  matvec8q_rows<F, R>(w + static_cast<size_t>(e) * expert_stride, stride, xq + static_cast<size_t>(xr) * cols,
                      xd + static_cast<size_t>(xr) * (cols / 32), PlainStore{ys}, rows, cols, group, blockIdx.x, part);
}

// As matvec8q_experts_kernel for the formats without an int8 path (F32/F16/BF16), on float x: one
// wave per row, as matvec_plain_kernel.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_experts_plain_kernel(const uint8_t* __restrict__ w,
                                                                      size_t expert_stride, size_t stride,
                                                                      int n_expert, const int32_t* __restrict__ ids,
                                                                      int x_div, const float* __restrict__ x,
                                                                      float* __restrict__ y, int rows, int cols) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int slot = blockIdx.y, e = ids[slot];
  const int lane = threadIdx.x % warpSize;
  const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
  if (row >= rows) return;
  float* ys = y + static_cast<size_t>(slot) * rows;
  if (e < 0 || e >= n_expert) {
    if (lane == 0) ys[row] = __int_as_float(0x7fc00000);
    return;
  }
  const uint8_t* rp = w + static_cast<size_t>(e) * expert_stride + static_cast<size_t>(row) * stride;
  const float* xs = x + static_cast<size_t>(slot / x_div) * cols;
  float acc = 0.f;
  for (int i = lane; i < cols; i += warpSize) acc = fmaf(F::elem(rp, i), xs[i], acc);
  acc = rf_wave_sum(acc);
  if (lane == 0) ys[row] = acc;
}

}  // namespace

int matvec_q8_multi(uint32_t type, const void* w, size_t row_stride, const void* xq, float* y, int rows, int cols,
                    int n_tok, hipStream_t s) {
  if (n_tok < 1 || n_tok > kMultiMaxTokens)
    return fail("matvec_q8_multi: token count %d out of range 1..%d", n_tok, kMultiMaxTokens);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (!HasDot8q<F>::value) {
      rc = fail("matvec_q8_multi: no int8-activation path for weight type %u", type);
    } else {
      bool vec = false;
      if ((rc = check_matrix<F>("matvec_q8_multi", w, row_stride, rows, cols, &vec)) != 0) return;
      if (!aligned(xq, 16)) {
        rc = fail("matvec_q8_multi: quantized x must be 16-byte aligned");
        return;
      }
      // NVIDIA sm_90: the weights streamed through shared memory by the copy engine (matvec_staged.hip).
      if (n_tok >= 2 && (rc = matvec_q8_multi_staged(type, w, row_stride, cols, xq, n_tok, 1, &rows, &y, s)) >= 0)
        return;
      rc = 0;
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(n_tok) * cols + 15) / 16 * 16);
      const auto* wb = static_cast<const uint8_t*>(w);
      // Two rows per group share each x load up to 8 tokens; 9-16: one row, for registers. The
      // weights' half of the dot product is hoisted out of the token loop from 5 tokens on (H100, 8B
      // Q4_K_M prompt steps: with it at 4 tokens 589 -> 556 tok/s, at 8 tokens 835 -> 867; this
      // split: 2 / 4 / 8 tokens 361 / 592 / 838 -> 384 / 621 / 865).
      auto launch = [&](auto kernel, int R) {
        const int group = q8_group<F>(tuning(type), rows, cols, R);
        const int per_block = kBlock / group * R;
        (void)rf_launch(kernel, (rows + per_block - 1) / per_block, kBlock, 0, s, wb, row_stride, q, d, y, rows, cols,
                        group, n_tok);
      };
      if (n_tok <= 4) launch(matvec8q_multi_kernel<F, 2, 4, false>, 2);
      else if (n_tok <= 8) launch(matvec8q_multi_kernel<F, 2, 8, true>, 2);
      else launch(matvec8q_multi_kernel<F, 1, kMultiMaxTokens, true>, 1);
      rc = check(hipGetLastError(), "matvec_q8_multi");
    }
  });
  if (!known) return fail("matvec_q8_multi: unsupported weight type %u", type);
  return rc;
}

int matvec_q8_multi_parts(uint32_t type, const void* w, size_t row_stride, const void* xq, int cols, int n_tok,
                          int n_parts, const int* part_rows, float* const* y, hipStream_t s) {
  if (n_tok < 1 || n_tok > kMultiMaxTokens)
    return fail("matvec_q8_multi_parts: token count %d out of range 1..%d", n_tok, kMultiMaxTokens);
  if (n_parts < 1 || n_parts > 3 || !part_rows || !y) return fail("matvec_q8_multi_parts: %d parts (1..3)", n_parts);
  int rows = 0;
  for (int p = 0; p < n_parts; ++p) {
    if (part_rows[p] <= 0 || !y[p]) return fail("matvec_q8_multi_parts: part %d empty (%d rows)", p, part_rows[p]);
    if (part_rows[p] > (1 << 28) - rows) return fail("matvec_q8_multi_parts: too many rows");
    rows += part_rows[p];
  }
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (!HasDot8q<F>::value) {
      rc = fail("matvec_q8_multi_parts: no int8-activation path for weight type %u", type);
    } else {
      bool vec = false;
      if ((rc = check_matrix<F>("matvec_q8_multi_parts", w, row_stride, rows, cols, &vec)) != 0) return;
      if (!aligned(xq, 16)) {
        rc = fail("matvec_q8_multi_parts: quantized x must be 16-byte aligned");
        return;
      }
      // The staged kernel (NVIDIA sm_90) or nothing: -1 sends the caller to a part at a time.
      rc = n_tok >= 2 ? matvec_q8_multi_staged(type, w, row_stride, cols, xq, n_tok, n_parts, part_rows, y, s) : -1;
    }
  });
  if (!known) return fail("matvec_q8_multi_parts: unsupported weight type %u", type);
  return rc;
}

int matvec_experts(uint32_t type, const void* w, size_t expert_stride, size_t row_stride, int n_expert, int rows,
                   int cols, const int32_t* ids, int n_slots, int x_div, const float* x, const void* xq, float* y,
                   hipStream_t s) {
  if (n_slots < 0 || n_slots > 65535) return fail("matvec_experts: slot count %d out of range 0..65535", n_slots);
  if (n_expert <= 0 || x_div <= 0) return fail("matvec_experts: bad routing (%d experts, x_div %d)", n_expert, x_div);
  if (!ids || !y) return fail("matvec_experts: missing ids or output");
  if (expert_stride < row_stride * static_cast<size_t>(rows))
    return fail("matvec_experts: expert stride %zu < %d rows of %zu bytes", expert_stride, rows, row_stride);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    bool vec = false;
    if ((rc = check_matrix<F>("matvec_experts", w, row_stride, rows, cols, &vec)) != 0 || n_slots == 0) return;
    const auto* wb = static_cast<const uint8_t*>(w);
    if constexpr (HasDot8q<F>::value) {
      if (!xq || !aligned(xq, 16)) {
        rc = fail("matvec_experts: the int8 path needs quantized x, 16-byte aligned");
        return;
      }
      // Quantized x of n_x rows (quantize_q8 over n_x * cols): the scales follow all the int8 rows.
      const int n_x = (n_slots + x_div - 1) / x_div;
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(n_x) * cols + 15) / 16 * 16);
      const int group = q8_group<F>(tuning(type), rows * n_slots, cols, 2);
      const int per_block = kBlock / group * 2;
      (void)rf_launch(matvec8q_experts_kernel<F, 2>, dim3((rows + per_block - 1) / per_block, n_slots), kBlock, 0, s,
                      wb, expert_stride, row_stride, n_expert, ids, x_div, q, d, y, rows, cols, group);
      rc = check(hipGetLastError(), "matvec_experts");
    } else if constexpr (F::kBlockElems == 1) {
      if (!x) {
        rc = fail("matvec_experts: weight type %u takes float x", type);
        return;
      }
      const int waves = kBlock / wave_size();
      (void)rf_launch(matvec_experts_plain_kernel<F>, dim3((rows + waves - 1) / waves, n_slots), kBlock, 0, s, wb,
                      expert_stride, row_stride, n_expert, ids, x_div, x, y, rows, cols);
      rc = check(hipGetLastError(), "matvec_experts");
    } else {
      rc = fail("matvec_experts: no kernel for weight type %u", type);
    }
  });
  if (!known) return fail("matvec_experts: unsupported weight type %u", type);
  return rc;
}

}  // namespace rocforge::gpu
