// writer.cpp - GGUF v3 writer. Header first, then each tensor's data produced on demand and aligned.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "rocforge/gguf.h"

namespace rocforge::gguf {
namespace {

class Out {
 public:
  explicit Out(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (!f_) throw Error(path + ": cannot create: " + std::strerror(errno));
  }
  ~Out() {
    if (f_) std::fclose(f_);
  }
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  void raw(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    raw<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    while (pos_ % alignment) bytes(zeros, std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros));
  }
  void close() {
    if (std::fclose(f_) != 0) {
      f_ = nullptr;
      throw Error(path_ + ": close failed: " + std::strerror(errno));
    }
    f_ = nullptr;
  }
  uint64_t pos() const { return pos_; }

 private:
  std::string path_;
  std::FILE* f_;
  uint64_t pos_ = 0;
};

void write_value(Out& o, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: o.raw<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case ValueType::INT8: o.raw<int8_t>(static_cast<int8_t>(v.i)); break;
    case ValueType::UINT16: o.raw<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case ValueType::INT16: o.raw<int16_t>(static_cast<int16_t>(v.i)); break;
    case ValueType::UINT32: o.raw<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case ValueType::INT32: o.raw<int32_t>(static_cast<int32_t>(v.i)); break;
    case ValueType::UINT64: o.raw<uint64_t>(v.u); break;
    case ValueType::INT64: o.raw<int64_t>(v.i); break;
    case ValueType::FLOAT32: o.raw<float>(static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: o.raw<double>(v.f); break;
    case ValueType::BOOL: o.raw<uint8_t>(v.b ? 1 : 0); break;
    case ValueType::STRING: o.str(v.str); break;
    case ValueType::ARRAY:
      o.raw<uint32_t>(static_cast<uint32_t>(v.elem_type));
      o.raw<uint64_t>(v.arr.size());
      for (const auto& e : v.arr) write_value(o, e);
      break;
  }
}

// The file stores one element type per array: an element of another type would be written in its
// own encoding and make the rest of the file unreadable.
void check_value(const std::string& key, const Value& v) {
  if (!v.is_array()) return;
  for (const auto& e : v.arr) {
    if (e.type != v.elem_type)
      throw Error("gguf writer: key '" + key + "': array of " + std::string(value_type_name(v.elem_type)) +
                  " holds a " + std::string(value_type_name(e.type)) + " element");
    check_value(key, e);
  }
}

}  // namespace

void Writer::set(const std::string& key, Value v) {
  if (key.empty()) throw Error("gguf writer: empty metadata key");
  check_value(key, v);
  for (auto& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(v);
      return;
    }
  kv_.push_back({key, std::move(v)});
}

void Writer::remove(const std::string& key) {
  std::erase_if(kv_, [&](const KeyValue& kv) { return kv.key == key; });
}

void Writer::copy_metadata(const File& f) {
  for (const auto& kv : f.metadata()) set(kv.key, kv.value);
}

void Writer::set_alignment(uint32_t a) {
  if (a == 0 || (a & (a - 1))) throw Error("gguf writer: alignment " + std::to_string(a) + " is not a power of two");
  alignment_ = a;
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> shape, Producer produce) {
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("gguf writer: duplicate tensor name '" + name + "'");
  if (shape.empty() || shape.size() > 4) throw Error("gguf writer: tensor '" + name + "' must have 1..4 dimensions");
  const auto& tr = ggml_type_traits(type);
  if (shape[0] % tr.block_elems != 0)
    throw Error("gguf writer: tensor '" + name + "' row length " + std::to_string(shape[0]) +
                " is not a multiple of the " + std::string(tr.name) + " block size " + std::to_string(tr.block_elems));
  // The reader rejects zero dimensions and element counts beyond int64: never write such a file.
  uint64_t n = 1;
  for (uint64_t d : shape)
    if (d == 0 || __builtin_mul_overflow(n, d, &n) || n > static_cast<uint64_t>(INT64_MAX))
      throw Error("gguf writer: tensor '" + name + "' has a zero dimension or more than 2^63 elements");
  tensors_.push_back({name, type, std::move(shape), n / tr.block_elems * tr.block_bytes, std::move(produce)});
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> shape, const void* data) {
  add_tensor(name, type, std::move(shape), [data](uint8_t* dst, size_t n) { std::memcpy(dst, data, n); });
}

void Writer::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    Out o(tmp);
    o.bytes("GGUF", 4);
    o.raw<uint32_t>(3);
    o.raw<uint64_t>(tensors_.size());
    // general.alignment is written only when it differs from the default 32.
    const bool write_alignment = alignment_ != 32;
    uint64_t n_kv = 0;
    for (const auto& kv : kv_) n_kv += kv.key != "general.alignment";
    o.raw<uint64_t>(n_kv + (write_alignment ? 1 : 0));
    for (const auto& kv : kv_) {
      if (kv.key == "general.alignment") continue;
      o.str(kv.key);
      o.raw<uint32_t>(static_cast<uint32_t>(kv.value.type));
      write_value(o, kv.value);
    }
    if (write_alignment) {
      o.str("general.alignment");
      o.raw<uint32_t>(static_cast<uint32_t>(ValueType::UINT32));
      o.raw<uint32_t>(alignment_);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      o.str(t.name);
      o.raw<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (uint64_t d : t.shape) o.raw<uint64_t>(d);
      o.raw<uint32_t>(static_cast<uint32_t>(t.type));
      o.raw<uint64_t>(offset);
      offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
    }
    o.pad_to(alignment_);
    std::vector<uint8_t> buf;
    for (size_t k = 0; k < tensors_.size(); ++k) {
      const auto& t = tensors_[k];
      buf.assign(t.n_bytes, 0);
      t.produce(buf.data(), buf.size());
      o.bytes(buf.data(), buf.size());
      o.pad_to(alignment_);
      if (progress_) progress_(k, tensors_.size(), t.name);
    }
    o.close();
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace rocforge::gguf
