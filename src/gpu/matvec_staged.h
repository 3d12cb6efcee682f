// matvec_staged.h - the copy-engine int8 decode matvec (matvec_staged.hip) as matvec.hip calls it,
// and the format pairs the q/k/v launch serves (both files).
#pragma once

#include "gpu/backend_api.h"
#include "gpu/hip_compat.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {

// The q/k/v layouts one launch serves: A alone (type_b 0) for every int8 format, or A + a v of
// another format as K-quant mixes (Q4_K_M, Q5_K_M) keep it: Q6_K.
template <class F>
bool dispatch_qkv(uint32_t type_a, uint32_t type_b, F&& f) {
  auto with_b = [&](auto a) {
    switch (type_b) {
      case 0: f(a, a); return true;
      case kQ6_K: f(a, Fmt<kQ6_K>{}); return true;
      case kQ6_K_G8: f(a, Fmt<kQ6_K_G8>{}); return true;
      default: return false;
    }
  };
  switch (type_a) {
    case kQ4_0: return with_b(Fmt<kQ4_0>{});
    case kQ4_0_G8: return with_b(Fmt<kQ4_0_G8>{});
    case kQ8_0: return with_b(Fmt<kQ8_0>{});
    case kQ8_0_G8: return with_b(Fmt<kQ8_0_G8>{});
    case kQ4_K: return with_b(Fmt<kQ4_K>{});
    case kQ5_K: return with_b(Fmt<kQ5_K>{});
    case kQ6_K: return type_b == 0 && with_b(Fmt<kQ6_K>{});
    case kQ6_K_G8: return type_b == 0 && with_b(Fmt<kQ6_K_G8>{});
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
