// reader.cpp - GGUF v2/v3 parsing and validation.
//
// File layout (little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv  x { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment | tensor data (each tensor at data_start + offset, aligned)
// where string = u64 length + bytes, and an array value = u32 elem_type | u64 count | elements.
//
// Every read goes through Parser::need(), which checks the remaining size first, so a hostile file
// can only produce an Error naming the field and its byte offset.
#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/mapped_file.h"
#include "rocforge/gguf.h"

namespace rocforge::gguf {

struct File::Mapping {
  MappedFile file;
};

namespace {

constexpr uint32_t kMaxDims = 4;          // ggml tensors have at most 4 dimensions
constexpr int kMaxArrayDepth = 8;          // nested arrays deeper than this are rejected
constexpr uint64_t kMaxStringBytes = 1ull << 30;

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : p_(data), size_(size), name_(name) {}

  void parse(File& f) {
    f.base_ = p_;
    f.size_ = size_;
    f.name_ = name_;

    need(4, "magic");
    if (std::memcmp(p_, "GGUF", 4) != 0) fail(0, "magic", "bad magic (not a GGUF file)");
    pos_ = 4;
    f.version_ = read_u32("version");
    if (f.version_ == 1) fail(4, "version", "GGUF version 1 is not supported (only versions 2 and 3)");
    if (f.version_ < 2 || f.version_ > 3)
      fail(4, "version", "unsupported GGUF version " + std::to_string(f.version_) + " (supported: 2, 3)");

    const size_t off_nt = pos_;
    const uint64_t n_tensors = read_u64("tensor_count");
    const size_t off_nkv = pos_;
    const uint64_t n_kv = read_u64("metadata_kv_count");
    // Each kv needs >= 8+1+4 bytes, each tensor info >= 8+1+4+8+4+8 bytes: bound the counts by the
    // file size before reserving anything.
    if (n_kv > remaining() / 13) fail(off_nkv, "metadata_kv_count", "count " + std::to_string(n_kv) + " exceeds what the file can hold");
    if (n_tensors > remaining() / 33) fail(off_nt, "tensor_count", "count " + std::to_string(n_tensors) + " exceeds what the file can hold");

    std::unordered_set<std::string> keys;
    size_t alignment_off = 0;
    f.kv_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
      const size_t key_off = pos_;
      std::string key = read_string("metadata key #" + std::to_string(k));
      if (key.empty()) fail(key_off, "metadata key #" + std::to_string(k), "empty key");
      if (!keys.insert(key).second) fail(key_off, key, "duplicate metadata key");
      const size_t type_off = pos_;
      if (key == "general.alignment") alignment_off = type_off;
      const uint32_t t = read_u32(key + " (type)");
      if (!valid_type(t)) fail(type_off, key, "unknown value type " + std::to_string(t));
      Value v = read_value(static_cast<ValueType>(t), key, 0);
      f.kv_.push_back({std::move(key), std::move(v)});
    }

    if (const Value* a = f.find("general.alignment")) {
      if (a->type != ValueType::UINT32)
        fail(alignment_off, "general.alignment", std::string("must be u32, found ") + std::string(value_type_name(a->type)));
      if (a->u == 0 || (a->u & (a->u - 1)) != 0)
        fail(alignment_off, "general.alignment", "must be a power of two, found " + std::to_string(a->u));
      f.alignment_ = a->u;
    }

    std::unordered_set<std::string> names;
    f.tensors_.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) f.tensors_.push_back(read_tensor_info(k, names));

    // Data section starts at the next multiple of the alignment after the header.
    const uint64_t data_off = (pos_ + f.alignment_ - 1) / f.alignment_ * f.alignment_;
    if (f.tensors_.empty()) {
      f.data_offset_ = std::min<uint64_t>(data_off, size_);
      return;
    }
    if (data_off > size_) fail(pos_, "tensor data", "file ends before the tensor data section (truncated)");
    f.data_offset_ = data_off;
    const uint64_t data_size = size_ - data_off;

    // Bounds and overlap: sort by offset, then each tensor must end before the next begins.
    std::vector<size_t> order(f.tensors_.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return f.tensors_[a].offset < f.tensors_[b].offset; });
    uint64_t prev_end = 0;
    const TensorInfo* prev = nullptr;
    for (size_t idx : order) {
      TensorInfo& t = f.tensors_[idx];
      if (t.offset % f.alignment_ != 0)
        fail(data_off, t.name, "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(f.alignment_));
      if (t.offset > data_size || t.n_bytes > data_size - t.offset)
        fail(data_off + std::min(t.offset, data_size), t.name,
             "tensor data (offset " + std::to_string(t.offset) + ", " + std::to_string(t.n_bytes) +
                 " bytes) extends past the end of the file (truncated?)");
      if (prev && t.offset < prev_end)
        fail(data_off + t.offset, t.name, "tensor data overlaps tensor '" + prev->name + "'");
      prev_end = t.offset + t.n_bytes;
      prev = &t;
      t.data = p_ + data_off + t.offset;
    }
  }

 private:
  [[noreturn]] void fail(size_t offset, const std::string& field, const std::string& what) const {
    throw Error(name_ + ": offset " + std::to_string(offset) + ": " + field + ": " + what);
  }

  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& field) const {
    if (n > size_ - pos_)
      fail(pos_, field, "truncated file: needs " + std::to_string(n) + " bytes, " + std::to_string(size_ - pos_) + " left");
  }

  template <typename T>
  T read_raw(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t read_u32(const std::string& field) { return read_raw<uint32_t>(field); }
  uint64_t read_u64(const std::string& field) { return read_raw<uint64_t>(field); }

  std::string read_string(const std::string& field) {
    const size_t off = pos_;
    const uint64_t len = read_u64(field + " (string length)");
    if (len > remaining())
      fail(off, field, "string length " + std::to_string(len) + " runs past the end of the file");
    if (len > kMaxStringBytes) fail(off, field, "string length " + std::to_string(len) + " is unreasonably large");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }

  static bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

  // Smallest encoding of one element, to bound array counts by the bytes left.
  static uint64_t min_size(ValueType t) {
    switch (t) {
      case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
      case ValueType::UINT16: case ValueType::INT16: return 2;
      case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
      case ValueType::STRING: case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
      case ValueType::ARRAY: return 12;
    }
    return 1;
  }

  Value read_value(ValueType t, const std::string& key, int depth) {
    Value v;
    v.type = t;
    switch (t) {
      case ValueType::UINT8: v.u = read_raw<uint8_t>(key); break;
      case ValueType::INT8: v.i = read_raw<int8_t>(key); break;
      case ValueType::UINT16: v.u = read_raw<uint16_t>(key); break;
      case ValueType::INT16: v.i = read_raw<int16_t>(key); break;
      case ValueType::UINT32: v.u = read_raw<uint32_t>(key); break;
      case ValueType::INT32: v.i = read_raw<int32_t>(key); break;
      case ValueType::UINT64: v.u = read_raw<uint64_t>(key); break;
      case ValueType::INT64: v.i = read_raw<int64_t>(key); break;
      case ValueType::FLOAT32: v.f = read_raw<float>(key); break;
      case ValueType::FLOAT64: v.f = read_raw<double>(key); break;
      case ValueType::BOOL: {
        const size_t off = pos_;
        const uint8_t b = read_raw<uint8_t>(key);
        if (b > 1) fail(off, key, "bool value " + std::to_string(b) + " is neither 0 nor 1");
        v.b = b != 0;
        break;
      }
      case ValueType::STRING: v.str = read_string(key); break;
      case ValueType::ARRAY: {
        const size_t off = pos_;
        if (depth >= kMaxArrayDepth) fail(off, key, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
        const uint32_t et = read_u32(key + " (array element type)");
        if (!valid_type(et)) fail(off, key, "unknown array element type " + std::to_string(et));
        v.elem_type = static_cast<ValueType>(et);
        const size_t count_off = pos_;
        const uint64_t n = read_u64(key + " (array length)");
        if (n > remaining() / min_size(v.elem_type))
          fail(count_off, key, "array length " + std::to_string(n) + " runs past the end of the file");
        v.arr.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.arr.push_back(read_value(v.elem_type, key, depth + 1));
        break;
      }
    }
    return v;
  }

  TensorInfo read_tensor_info(uint64_t index, std::unordered_set<std::string>& names) {
    TensorInfo t;
    const size_t name_off = pos_;
    t.name = read_string("tensor #" + std::to_string(index) + " name");
    if (t.name.empty()) fail(name_off, "tensor #" + std::to_string(index), "empty tensor name");
    if (!names.insert(t.name).second) fail(name_off, t.name, "duplicate tensor name");
    const size_t dims_off = pos_;
    const uint32_t n_dims = read_u32(t.name + " (n_dims)");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(dims_off, t.name, "n_dims " + std::to_string(n_dims) + " out of range 1.." + std::to_string(kMaxDims));
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t off = pos_;
      const uint64_t ne = read_u64(t.name + " (dim " + std::to_string(d) + ")");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(off, t.name, "dimension " + std::to_string(d) + " = " + std::to_string(ne) + " is out of range");
      if (mul_overflows(t.n_elements, ne, &t.n_elements) || t.n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(off, t.name, "element count overflows 64 bits");
      t.shape.push_back(ne);
    }
    const size_t type_off = pos_;
    const uint32_t type_id = read_u32(t.name + " (type)");
    const auto traits = ggml_type_traits(type_id);
    if (!traits) fail(type_off, t.name, "unknown tensor type " + std::to_string(type_id));
    t.type = traits->type;
    if (t.shape[0] % traits->block_elems != 0)
      fail(dims_off, t.name, "row length " + std::to_string(t.shape[0]) + " is not a multiple of the " +
                                 std::string(traits->name) + " block size " + std::to_string(traits->block_elems));
    uint64_t bytes = 0;
    if (mul_overflows(t.n_elements / traits->block_elems, traits->block_bytes, &bytes))
      fail(dims_off, t.name, "byte size overflows 64 bits");
    t.n_bytes = bytes;
    t.offset = read_u64(t.name + " (offset)");
    return t;
  }

  const uint8_t* p_;
  size_t size_;
  std::string name_;
  size_t pos_ = 0;
};

File::~File() = default;

std::unique_ptr<File> File::open(const std::string& path) {
  auto mapping = std::make_unique<Mapping>();
  mapping->file = MappedFile(path);
  std::unique_ptr<File> f(new File());
  Parser(mapping->file.data(), mapping->file.size(), path).parse(*f);
  f->mapping_ = std::move(mapping);
  return f;
}

std::unique_ptr<File> File::parse(const uint8_t* data, size_t size, const std::string& name) {
  std::unique_ptr<File> f(new File());
  static const uint8_t kEmpty[1] = {0};
  Parser(data ? data : kEmpty, data ? size : 0, name).parse(*f);
  return f;
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kv_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {
[[noreturn]] void type_error(const File& f, std::string_view key, std::string_view want, const Value& v) {
  throw Error(f.path() + ": metadata " + std::string(key) + ": expected " + std::string(want) + ", found " +
              std::string(value_type_name(v.type)));
}
}  // namespace

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::STRING) type_error(*this, key, "string", *v);
  return v->str;
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer() && v->type != ValueType::BOOL) type_error(*this, key, "integer", *v);
  return v->as_int();
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(*this, key, "number", *v);
  return v->as_double();
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::BOOL) type_error(*this, key, "bool", *v);
  return v->b;
}

std::optional<std::vector<std::string>> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array() || v->elem_type != ValueType::STRING) type_error(*this, key, "array of strings", *v);
  std::vector<std::string> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) out.push_back(e.str);
  return out;
}

std::optional<std::vector<float>> File::get_f32_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) type_error(*this, key, "array of numbers", *v);
  std::vector<float> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) {
    auto d = e.as_double();
    if (!d) type_error(*this, key, "array of numbers", *v);
    out.push_back(static_cast<float>(*d));
  }
  return out;
}

std::optional<std::vector<int64_t>> File::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) type_error(*this, key, "array of integers", *v);
  std::vector<int64_t> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) {
    auto d = e.as_int();
    if (!d || e.type == ValueType::BOOL) type_error(*this, key, "array of integers", *v);
    out.push_back(*d);
  }
  return out;
}

}  // namespace rocforge::gguf
