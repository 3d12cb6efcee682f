// gguf_bytes.h - hand-assembles GGUF byte images for the validation tests.
//
// The reader's errors name a byte offset; building files field by field lets each test know the
// exact offset of the field it corrupts (every put_* returns the offset it wrote at).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "rocforge/error.h"
#include "rocforge/gguf.h"

namespace rocforge::test {

class GgufBytes {
 public:
  std::vector<uint8_t> b;

  size_t pos() const { return b.size(); }

  template <typename T>
  size_t put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return at;
  }
  size_t u8(uint8_t v) { return put(v); }
  size_t u32(uint32_t v) { return put(v); }
  size_t u64(uint64_t v) { return put(v); }
  size_t str(std::string_view s) {
    const size_t at = u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return at;
  }
  void pad(size_t alignment) {
    while (b.size() % alignment) b.push_back(0);
  }
  void zeros(size_t n) { b.insert(b.end(), n, 0); }

  // Overwrites a field written earlier.
  template <typename T>
  void patch(size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof(T));
  }

  // magic, version, tensor count, kv count.
  void header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    u32(version);
    u64(n_tensors);
    u64(n_kv);
  }
  // A u32 key/value pair; returns the offset of the value's type field.
  size_t kv_u32(std::string_view key, uint32_t v) {
    str(key);
    const size_t at = u32(static_cast<uint32_t>(gguf::ValueType::UINT32));
    u32(v);
    return at;
  }
  // A tensor info; returns the offset of its name.
  size_t tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    const size_t at = str(name);
    u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    u32(type);
    u64(offset);
    return at;
  }
};

// Parses `bytes`, which must fail; returns the error text ("" and a test failure if it parsed).
inline std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& name = "t.gguf") {
  try {
    gguf::File::parse(bytes.data(), bytes.size(), name);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "a corrupt file parsed without error";
  return "";
}

}  // namespace rocforge::test
