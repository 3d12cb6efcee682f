// quant_formats.h - device-side decoding of every GGUF weight format, 32 elements at a time: the
// Fmt<T> decoders (quant_fmt_common.h explains the interface; the formats live in
// quant_fmt_blocks32.h and quant_fmt_kquants.h), the traits the kernels test them by, and the
// runtime dispatch on a type id.
#pragma once

#include "gpu/quant_fmt_blocks32.h"
#include "gpu/quant_fmt_common.h"
#include "gpu/quant_fmt_kquants.h"

namespace rocforge::gpu {

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

// Formats whose dot_raw splits into prep (weights, once per row and item) and dot_prep (per token).
template <class F, class = void>
struct HasPrep { static constexpr bool value = false; };
template <class F>
struct HasPrep<F, decltype(void(&F::dot_prep))> { static constexpr bool value = true; };

// Formats with dequant8 (elements 32c + 8p .. +8 of a row, for the tensor-core GEMM).
template <class F, class = void>
struct HasDequant8 { static constexpr bool value = false; };
template <class F>
struct HasDequant8<F, decltype(void(&F::dequant8))> { static constexpr bool value = true; };

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
    case kQ3_K_G8: f(Fmt<kQ3_K_G8>{}); return true;
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
