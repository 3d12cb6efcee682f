// gguf_reader_fuzz.cpp - libFuzzer target: gguf::File::parse on arbitrary bytes.
//
// A well-formed rejection is a rocforge::Error and is fine. Anything else is a finding: a sanitizer
// report (out-of-bounds read, UB), any other exception escaping (bad_alloc from a count the reader
// trusted, length_error), a timeout or running out of memory. On success the harness walks
// everything the File exposes, so a parsed-but-inconsistent result (tensor data outside the input,
// bad sizes) shows up as an ASan report or a trap here.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rocforge/gguf.h"

namespace {

using namespace rocforge;

// Folds a value tree into a number, so the compiler cannot drop the walk.
uint64_t walk(const gguf::Value& v, int depth) {
  if (depth > 16) std::abort();  // the reader promises a nesting limit
  uint64_t h = static_cast<uint64_t>(v.type) * 31 + v.u + static_cast<uint64_t>(v.i) + v.str.size() + (v.b ? 1 : 0);
  if (v.as_double()) h += 7;
  for (const auto& e : v.arr) {
    if (e.type != v.elem_type) std::abort();  // every element has the array's declared type
    h = h * 131 + walk(e, depth + 1);
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<gguf::File> f;
  try {
    f = gguf::File::parse(data, size, "fuzz");
  } catch (const Error&) {
    return 0;
  }
  volatile uint64_t sink = f->version() + f->alignment();
  if (f->data_offset() > size) std::abort();
  for (const auto& kv : f->metadata()) {
    sink = sink + walk(kv.value, 0) + kv.key.size();
    sink = sink + gguf::to_string(kv.value).size();
  }
  // The typed getters either return or throw Error; never anything else.
  try {
    (void)f->get_string("general.architecture");
    (void)f->get_int("general.alignment");
    (void)f->get_string_array("tokenizer.ggml.tokens");
    (void)f->get_f32_array("tokenizer.ggml.scores");
    (void)f->get_int_array("tokenizer.ggml.token_type");
  } catch (const Error&) {
  }
  for (const auto& t : f->tensors()) {
    const auto& tr = ggml_type_traits(t.type);
    if (t.shape.empty() || t.shape.size() > 4 || t.shape[0] % tr.block_elems != 0) std::abort();
    if (t.n_bytes != t.n_elements / tr.block_elems * tr.block_bytes) std::abort();
    if (t.data < data + f->data_offset() || t.n_bytes > size || t.data + t.n_bytes > data + size) std::abort();
    // Touch the first and last byte: ASan checks they are inside the input.
    sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    if (f->tensor(t.name) == nullptr) std::abort();
  }
  return 0;
}
