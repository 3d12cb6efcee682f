// rocforge/kv_type.h - the element type of the K/V cache (--kv-type f32 | f16 | q8_0).
//
// Q8_0 stores each cached row of a kv head (head_dim values) as ggml's block_q8_0: blocks of 32
// int8 codes with one f16 scale each (scale = max|x| / 127, code = round(x / scale)), 34 bytes per
// 32 values instead of 64 (f16), so head_dim must be a multiple of 32.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rocforge {

enum class KvType { F32, F16, Q8_0 };

// "f32", "f16", "q8_0": the --kv-type spelling.
const char* kv_type_name(KvType t);
// Parses a --kv-type value; throws rocforge::Error naming the value and the accepted ones.
KvType parse_kv_type(std::string_view text);
// The accepted spellings, "f16 | f32 | q8_0" (for help texts and errors).
std::string kv_type_choices();

// Values per Q8_0 block, and its bytes (an f16 scale + 32 int8 codes).
constexpr int kKvQ8Block = 32;
constexpr int kKvQ8BlockBytes = 34;

// Bytes of one cached row of n values (n a multiple of 32 for Q8_0).
constexpr uint64_t kv_row_bytes(KvType t, int64_t n) {
  switch (t) {
    case KvType::F32: return 4ull * static_cast<uint64_t>(n);
    case KvType::F16: return 2ull * static_cast<uint64_t>(n);
    case KvType::Q8_0: return static_cast<uint64_t>(n / kKvQ8Block) * kKvQ8BlockBytes;
  }
  return 0;
}

// Throws rocforge::Error when a model with this head_dim cannot use a cache of type t (Q8_0 needs
// a multiple of 32: its blocks must not straddle two heads).
void check_kv_type_fits(KvType t, int head_dim);

}  // namespace rocforge
