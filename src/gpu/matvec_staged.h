// matvec_staged.h - the copy-engine int8 decode matvec (matvec_staged.hip) as matvec.hip calls it,
// and the format pairs the q/k/v launch serves (both files).
#pragma once

#include "gpu/backend_api.h"
#include "gpu/hip_compat.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {

// Which formats' fused decode launches pay (H100, tg128, thirty-first pass; "registers" measured with
// ROCFORGE_MV_STAGED=0, the kernels AMD runs), main -> this:
// - SwiGLU in the gate/up launch: the formats that had it keep it; Q2_K gains it on the staged kernel
//   only (1B Q2_K with it 1722-1737 tok/s, without 1664-1669); the others run SwiGLU in its own
//   launch, where the epilogue measured slower (registers: 8B Q3_K 356 with it, 382 without; staged:
//   1B Q5_0 1219 with it, 1278 without) or no faster (registers: 1B Q2_K, Q5_0).
// - q/k/v (+ rope and the KV store) in one launch: every format on the staged kernel; on the register
//   kernels every format but those tuned to 4 rows a group (Q2_K, Q4_1, Q5_1), whose fused launch
//   (2 rows) lost to their own (1B Q2_K 1678 -> 1649-1653) and declines there (-1).
template <class F>
struct FmtId;
template <uint32_t T>
struct FmtId<Fmt<T>> { static constexpr uint32_t value = T; };
template <uint32_t T, bool Staged>
inline constexpr bool kSwigluEpilogueId = T == kQ2_K ? Staged
                                                     : T == kQ4_0 || T == kQ4_0_G8 || T == kQ8_0 || T == kQ8_0_G8 ||
                                                           T == kQ4_K || T == kQ5_K || T == kQ6_K || T == kQ6_K_G8;
template <class F, bool Staged>
inline constexpr bool kSwigluEpilogue = kSwigluEpilogueId<FmtId<F>::value, Staged>;
template <class F>
inline constexpr bool kQkvOnRegisters = FmtId<F>::value != kQ2_K && FmtId<F>::value != kQ4_1 && FmtId<F>::value != kQ5_1;

// The q/k/v layouts one launch serves: A alone (type_b 0: [q | k | v] in one format; also what the
// gate/up launch asks) for every format, or A + a v of another format as llama.cpp's K-quant mixes
// keep it: Q6_K beside Q4_0 / Q8_0 / Q4_K / Q5_K (Q4_K_M, Q5_K_M), Q5_K beside Q4_K (Q4_K_S) and Q3_K
// (Q3_K_M, Q3_K_L), Q4_K beside Q3_K (Q3_K_M) and Q2_K, Q3_K beside Q2_K. A pair outside these runs
// q | k and v as two launches and rope apart. f is called for formats without an int8 path too
// (type_b 0): callers test HasDot8q. Each pair is a kernel per launch shape, so the list holds what
// real files hold, not every pair.
template <uint32_t... Bs, class A, class F>
bool dispatch_qkv_b(A a, uint32_t type_b, F&& f) {  // f(a, Fmt<type_b>) where type_b is one of Bs
  return ((type_b == Bs ? (f(a, Fmt<Bs>{}), true) : false) || ...);
}
template <class F>
bool dispatch_qkv(uint32_t type_a, uint32_t type_b, F&& f) {
  if (type_b == 0) return dispatch_type(type_a, [&](auto a) { f(a, a); });
  switch (type_a) {
    case kQ4_0: return dispatch_qkv_b<kQ6_K, kQ6_K_G8>(Fmt<kQ4_0>{}, type_b, f);
    case kQ4_0_G8: return dispatch_qkv_b<kQ6_K, kQ6_K_G8>(Fmt<kQ4_0_G8>{}, type_b, f);
    case kQ8_0: return dispatch_qkv_b<kQ6_K, kQ6_K_G8>(Fmt<kQ8_0>{}, type_b, f);
    case kQ8_0_G8: return dispatch_qkv_b<kQ6_K, kQ6_K_G8>(Fmt<kQ8_0_G8>{}, type_b, f);
    case kQ4_K: return dispatch_qkv_b<kQ5_K, kQ6_K, kQ6_K_G8>(Fmt<kQ4_K>{}, type_b, f);
    case kQ5_K: return dispatch_qkv_b<kQ6_K, kQ6_K_G8>(Fmt<kQ5_K>{}, type_b, f);
    case kQ3_K: return dispatch_qkv_b<kQ4_K, kQ5_K>(Fmt<kQ3_K>{}, type_b, f);
    case kQ3_K_G8: return dispatch_qkv_b<kQ4_K, kQ5_K>(Fmt<kQ3_K_G8>{}, type_b, f);
    case kQ2_K: return dispatch_qkv_b<kQ3_K, kQ3_K_G8, kQ4_K>(Fmt<kQ2_K>{}, type_b, f);
    default: return false;
  }
}


// y = [A x | B x] (type_b 0: A alone; rope nullable) as matvec_q8 / matvec_q8_qkv, on the staged
// kernel: -1 when it does not apply here (no bulk-copy engine, ROCFORGE_MV_STAGED=0, a small matrix,
// a layout or alignment it does not take), having launched nothing; else 0, or 1 after recording an error.
// With `norm`, x is not read from xq: the kernel makes it from norm (rf_norm_in: the rmsnorm, and
// the residual sum, fused in), at any matrix size.
int matvec_q8_staged(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                     size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                     hipStream_t s, const rf_norm_in* norm = nullptr);
// Decode's gate/up projection with SwiGLU in its epilogue: w = [gate | up] (2 n_ff rows), x as
// matvec_q8 (xq) or made from `norm` as above; y[n_ff] = silu(gate x) * (up x) (nullable) and yq =
// its quantize_q8, bit-identical to this kernel's product followed by swiglu_q8. -1 where it does not
// apply (as above; also where whole 64-row groups per block would lengthen the busiest block's walk,
// unless forced), having launched nothing.
int matvec_q8_swiglu_staged(uint32_t type, const void* w, size_t stride, int n_ff, int cols, const void* xq,
                            const rf_norm_in* norm, float* y, void* yq, hipStream_t s);
// matvec_q8_multi's product of n_tok (2..8) tokens on the staged kernel: x as matvec_q8_multi takes it
// (one quantize_q8 over n_tok x cols); w's rows as n_parts (1..3) parts of part_rows[p] rows, part p's
// products into ys[p] as [n_tok][part_rows[p]]. -1 where it does not apply (as above), having
// launched nothing.
int matvec_q8_multi_staged(uint32_t type, const void* w, size_t stride, int cols, const void* xq, int n_tok,
                           int n_parts, const int* part_rows, float* const* ys, hipStream_t s);
// Whether matvec_q8 of this matrix takes the staged kernel on the current device.
bool matvec_q8_staged_applies(uint32_t type, const void* w, size_t stride, int rows, int cols);
// -1: staged where it pays (large matrices, sm_90+; the default), 0: never, 1: wherever it applies.
void matvec_q8_staged_mode(int mode);
// Whether the staged kernel can run here (sm_90+ with the bulk-copy engine) and is not switched off.
bool matvec_q8_staged_enabled();

}  // namespace rocforge::gpu
