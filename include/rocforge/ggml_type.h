// rocforge/ggml_type.h - ggml tensor element types (the ids GGUF files store) and their block layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace rocforge {

// Numeric values are fixed by the GGUF format (ggml's type enum) and must never change.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;   // lower-case, as `rocforge quantize` spells it: "q4_k", "f16", ...
  uint32_t block_elems;    // elements per block (1 for plain types)
  uint32_t block_bytes;    // bytes per block
  bool computable;         // rocforge can dequantize / run it (others can only be read and listed)
};

// Traits of a type id read from a file; nullopt for ids that are not ggml types.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
const GgmlTypeTraits& ggml_type_traits(GgmlType type);
std::string_view ggml_type_name(GgmlType type);
// Parses "q4_k", "Q4_K", "f16", ... ; nullopt if unknown.
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size (checked by the callers that
// read files, which report the offending tensor).
inline size_t ggml_row_bytes(const GgmlTypeTraits& t, uint64_t n) {
  return static_cast<size_t>(n / t.block_elems * t.block_bytes);
}

}  // namespace rocforge
