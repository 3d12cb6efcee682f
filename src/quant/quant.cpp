// quant.cpp - the public entry points of rocforge/quant.h: argument checks and per-type dispatch.
#include "rocforge/quant.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/half.h"
#include "quant/decode.h"
#include "quant/quantize_impl.h"

namespace rocforge::quant {
namespace {

bool is_plain(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

std::string type_name(GgmlType t) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(t));
  return traits ? std::string(traits->name) : "type id " + std::to_string(static_cast<uint32_t>(t));
}

// Validates (t, n) for an operation and returns the type's block size.
const GgmlTypeTraits& check_row(GgmlType t, int64_t n, bool supported, const char* what) {
  if (!supported) throw Error(std::string("quant: ") + what + " does not support " + type_name(t));
  const GgmlTypeTraits& tr = ggml_type_traits(t);
  if (n < 0 || n % tr.block_elems != 0)
    throw Error(std::string("quant: ") + what + ": row length " + std::to_string(n) + " is not a multiple of " +
                type_name(t) + "'s block size " + std::to_string(tr.block_elems));
  return tr;
}

}  // namespace

BlockQuantizer block_quantizer(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return quantize_block_q4_0;
    case GgmlType::Q4_1: return quantize_block_q4_1;
    case GgmlType::Q5_0: return quantize_block_q5_0;
    case GgmlType::Q5_1: return quantize_block_q5_1;
    case GgmlType::Q8_0: return quantize_block_q8_0;
    case GgmlType::Q2_K: return quantize_block_q2_k;
    case GgmlType::Q3_K: return quantize_block_q3_k;
    case GgmlType::Q4_K: return quantize_block_q4_k;
    case GgmlType::Q5_K: return quantize_block_q5_k;
    case GgmlType::Q6_K: return quantize_block_q6_k;
    case GgmlType::Q8_K: return quantize_block_q8_k;
    case GgmlType::IQ4_NL: return quantize_block_iq4_nl;
    case GgmlType::IQ4_XS: return quantize_block_iq4_xs;
    case GgmlType::MXFP4: return quantize_block_mxfp4;
    default: return nullptr;
  }
}

bool can_dequantize(GgmlType t) { return is_plain(t) || block_quantizer(t) != nullptr; }
bool can_quantize(GgmlType t) { return is_plain(t) || block_quantizer(t) != nullptr; }

size_t row_bytes(GgmlType t, int64_t n) {
  const auto traits = ggml_type_traits(static_cast<uint32_t>(t));
  if (!traits) throw Error("quant: row_bytes: unknown " + type_name(t));
  const GgmlTypeTraits& tr = check_row(t, n, true, "row_bytes");
  return ggml_row_bytes(tr, static_cast<uint64_t>(n));
}

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  const GgmlTypeTraits& tr = check_row(t, n, can_dequantize(t), "dequantize_row");
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;  // src may be unaligned
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(static_cast<uint16_t>(p[2 * i] | p[2 * i + 1] << 8));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<uint16_t>(p[2 * i] | p[2 * i + 1] << 8));
      return;
    default: break;
  }
  AffineBlock b;
  for (int64_t blk = 0; blk < n / tr.block_elems; ++blk) {
    decode_block(t, p + blk * tr.block_bytes, b);
    float* y = dst + blk * tr.block_elems;
    for (int i = 0; i < b.n; ++i) y[i] = affine_value(b, i);
  }
}

namespace {

void quantize_row_impl(GgmlType t, const float* src, void* dst, int64_t n, bool naive, const char* what) {
  const GgmlTypeTraits& tr = check_row(t, n, can_quantize(t), what);
  auto* p = static_cast<uint8_t*>(dst);
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == GgmlType::F16 ? f32_to_fp16(src[i]) : f32_to_bf16(src[i]);
        p[2 * i] = static_cast<uint8_t>(h);
        p[2 * i + 1] = static_cast<uint8_t>(h >> 8);
      }
      return;
    default: break;
  }
  const BlockQuantizer q = block_quantizer(t);
  for (int64_t blk = 0; blk < n / tr.block_elems; ++blk) q(src + blk * tr.block_elems, p + blk * tr.block_bytes, naive);
}

}  // namespace

void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  quantize_row_impl(t, src, dst, n, false, "quantize_row");
}

void quantize_row_naive(GgmlType t, const float* src, void* dst, int64_t n) {
  quantize_row_impl(t, src, dst, n, true, "quantize_row_naive");
}

size_t quantize_rows(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row, int threads) {
  if (nrows < 0) throw Error("quant: quantize_rows: negative row count " + std::to_string(nrows));
  const size_t rb = row_bytes(t, n_per_row);
  check_row(t, n_per_row, can_quantize(t), "quantize_rows");
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, nrows));
  // Contiguous row ranges per thread; each row is independent, so no synchronisation is needed.
  auto work = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) quantize_row(t, src + r * n_per_row, out + r * rb, n_per_row);
  };
  if (nt == 1) {
    work(0, nrows);
  } else {
    std::vector<std::thread> pool;
    for (int64_t i = 0; i < nt; ++i) pool.emplace_back(work, nrows * i / nt, nrows * (i + 1) / nt);
    for (auto& th : pool) th.join();
  }
  return rb * static_cast<size_t>(nrows);
}

float dot_row_ref(GgmlType t, const void* row, const float* x, int64_t n) {
  const GgmlTypeTraits& tr = check_row(t, n, can_dequantize(t), "dot_row_ref");
  double acc = 0;
  if (is_plain(t)) {  // one element per "block": plain products
    float w;
    for (int64_t i = 0; i < n; ++i) {
      dequantize_row(t, static_cast<const uint8_t*>(row) + i * tr.block_bytes, &w, 1);
      acc += static_cast<double>(w) * x[i];
    }
    return static_cast<float>(acc);
  }
  // Factored form, as SIMD/GPU kernels compute it: per group, scale * sum(code * x) + min * sum(x).
  AffineBlock b;
  const auto* p = static_cast<const uint8_t*>(row);
  for (int64_t blk = 0; blk < n / tr.block_elems; ++blk) {
    decode_block(t, p + blk * tr.block_bytes, b);
    const float* xb = x + blk * tr.block_elems;
    for (int g = 0; g < b.n / b.group; ++g) {
      double sum_qx = 0, sum_x = 0;
      for (int i = g * b.group; i < (g + 1) * b.group; ++i) {
        sum_qx += static_cast<double>(b.code[i]) * xb[i];
        sum_x += xb[i];
      }
      acc += static_cast<double>(b.scale[g]) * sum_qx;
      if (b.has_min) acc += static_cast<double>(b.min[g]) * sum_x;
    }
  }
  return static_cast<float>(acc);
}

}  // namespace rocforge::quant
