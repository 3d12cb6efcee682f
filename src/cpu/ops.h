// ops.h - the CPU building blocks of the forward pass. Vectors are plain float arrays; shapes in
// comments use E (embedding), D (head dim), T (tokens in the batch).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/thread_pool.h"
#include "rocforge/ggml_type.h"

namespace rocforge::cpu {

// A weight matrix stored row by row in a ggml format: `rows` outputs, each a row of `cols` inputs.
struct QMatrix {
  const uint8_t* data = nullptr;
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  size_t row_bytes = 0;
};

// y[t, r] = sum_c W[r, c] * x[t, c] for t < T.  x: [T, cols], y: [T, rows] (row stride = rows).
// Threads split the rows (outputs), so the result does not depend on the thread count.
// Quantized weights run directly on their blocks against activations quantized on the fly to int8
// (see kernels.h); F32/F16/BF16 weights use f32 FMA. The SIMD level is cpu::active_isa().
void matmul(const QMatrix& w, const float* x, int64_t T, float* y, ThreadPool& pool);

// Several matrices with the same input width applied to the same x (Q/K/V, gate/up): the
// activations are quantized once and all rows are split over the threads in one pass (one wake-up).
// ys[k] is [T, ws[k].rows].
void matmul_multi(const QMatrix* ws, float* const* ys, int count, const float* x, int64_t T, ThreadPool& pool);

// y = x / rms(x) * w   (n values; y may alias x)
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

// Rotary position embedding of one token's heads, in place. v: [n_heads, head_dim]; the first
// n_rot dims of each head rotate. neox: pairs (i, i + n_rot/2), else (2i, 2i+1).
// freq_factors (may be null): llama3-style per-pair divisors of the frequency.
void rope(float* v, int n_heads, int head_dim, int n_rot, float pos, float base, bool neox, const float* freq_factors);

// gate[i] = silu(gate[i]) * up[i], with the active ISA's kernel; swiglu_scalar is the reference.
void swiglu(float* gate, const float* up, int64_t n);
void swiglu_scalar(float* gate, const float* up, int64_t n);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace rocforge::cpu
