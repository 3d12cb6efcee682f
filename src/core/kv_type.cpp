#include "rocforge/kv_type.h"

#include "rocforge/error.h"

namespace rocforge {

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
  }
  return "?";
}

std::string kv_type_choices() { return "f16 | f32 | q8_0"; }

KvType parse_kv_type(std::string_view text) {
  for (KvType t : {KvType::F16, KvType::F32, KvType::Q8_0})
    if (text == kv_type_name(t)) return t;
  throw Error("--kv-type " + std::string(text) + ": unknown K/V cache type (expected " + kv_type_choices() + ")");
}

void check_kv_type_fits(KvType t, int head_dim) {
  if (t == KvType::Q8_0 && (head_dim <= 0 || head_dim % kKvQ8Block != 0))
    throw Error("--kv-type q8_0: the model's head_dim is " + std::to_string(head_dim) +
                ", not a multiple of 32 (Q8_0 blocks are 32 values of one head); use --kv-type f16");
}

}  // namespace rocforge
