// make_seeds.cpp - writes small valid GGUF files into DIR as extra seeds for the reader fuzzer
// (every value type, nested arrays, several tensor types, custom alignment, no tensors at all).
// The real model and vocab files are added by fuzz/run.sh; none of these are committed.
#include <cstdio>
#include <string>
#include <vector>

#include "rocforge/gguf.h"

using namespace rocforge;
using gguf::Value;
using gguf::ValueType;

namespace {

Value scalar(ValueType t, uint64_t u, int64_t i, double f) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

void all_values(gguf::Writer& w) {
  w.set_string("general.architecture", "llama");
  w.set("u8", scalar(ValueType::UINT8, 200, 0, 0));
  w.set("i8", scalar(ValueType::INT8, 0, -5, 0));
  w.set("u16", scalar(ValueType::UINT16, 60000, 0, 0));
  w.set("i16", scalar(ValueType::INT16, 0, -300, 0));
  w.set_u32("llama.block_count", 2);
  w.set("i32", Value::make_i32(-7));
  w.set("u64", Value::make_u64(1ull << 40));
  w.set("i64", scalar(ValueType::INT64, 0, -(1ll << 40), 0));
  w.set_f32("f32", 0.5f);
  w.set("f64", scalar(ValueType::FLOAT64, 0, 0, 1e-300));
  w.set_bool("bool", true);
  w.set("tokenizer.ggml.tokens", Value::make_string_array({"<s>", "</s>", "a", "b"}));
  w.set("tokenizer.ggml.scores", Value::make_f32_array({0, 0, -1, -2}));
  w.set("tokenizer.ggml.token_type", Value::make_i32_array({3, 3, 1, 1}));
  w.set("nested", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1}), Value::make_string_array({"x", "y"})}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    {
      gguf::Writer w;
      all_values(w);
      w.write(dir + "/seed-values.gguf");
    }
    {
      gguf::Writer w;
      all_values(w);
      std::vector<uint8_t> bytes(4096, 0x3C);
      w.add_tensor("f32", GgmlType::F32, {4, 2}, bytes.data());
      w.add_tensor("f16", GgmlType::F16, {8}, bytes.data());
      w.add_tensor("q4_0", GgmlType::Q4_0, {32, 2}, bytes.data());
      w.add_tensor("q8_0", GgmlType::Q8_0, {64}, bytes.data());
      w.add_tensor("q4_k", GgmlType::Q4_K, {256, 1, 1}, bytes.data());
      w.add_tensor("mxfp4", GgmlType::MXFP4, {32, 1, 1, 2}, bytes.data());
      w.write(dir + "/seed-tensors.gguf");
      w.set_alignment(64);
      w.write(dir + "/seed-align64.gguf");
    }
    {
      gguf::Writer w;
      w.write(dir + "/seed-empty.gguf");
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
