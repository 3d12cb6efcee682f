// rocforge/gguf.h - reading and writing GGUF (v2, v3) files.
//
// A File is a validated view of a memory-mapped GGUF file: metadata is parsed into Values, tensor
// data stays in the mapping (TensorInfo::data points into it). Every structural problem is reported
// as rocforge::Error naming the file, the field and its byte offset; nothing reads out of bounds.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocforge/error.h"
#include "rocforge/ggml_type.h"

namespace rocforge::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);

// One metadata value. Scalars use the member matching their type class; arrays keep their element
// type and elements (arrays of arrays nest).
struct Value {
  ValueType type = ValueType::UINT32;
  uint64_t u = 0;    // UINT8/16/32/64
  int64_t i = 0;     // INT8/16/32/64
  double f = 0;      // FLOAT32/64
  bool b = false;    // BOOL
  std::string str;   // STRING
  ValueType elem_type = ValueType::UINT32;  // ARRAY
  std::vector<Value> arr;                   // ARRAY

  bool is_array() const { return type == ValueType::ARRAY; }
  bool is_integer() const;
  bool is_number() const;  // integer or float
  // Numeric value of any integer/float/bool scalar; nullopt otherwise.
  std::optional<int64_t> as_int() const;
  std::optional<double> as_double() const;

  static Value make_u32(uint32_t v);
  static Value make_i32(int32_t v);
  static Value make_u64(uint64_t v);
  static Value make_f32(float v);
  static Value make_bool(bool v);
  static Value make_string(std::string v);
  static Value make_array(ValueType elem_type, std::vector<Value> elems);
  static Value make_string_array(const std::vector<std::string>& v);
  static Value make_f32_array(const std::vector<float>& v);
  static Value make_i32_array(const std::vector<int32_t>& v);
};

// Human-readable rendering (arrays abbreviated after `max_items`), used by `rocforge info`.
std::string to_string(const Value& v, size_t max_items = 8);

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the row length (fastest varying)
  uint64_t offset = 0;          // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file mapping

  uint64_t rows() const { return shape.empty() ? 0 : n_elements / shape[0]; }
};

struct KeyValue {
  std::string key;
  Value value;
};

class File {
 public:
  // Maps and validates `path`. Throws rocforge::Error.
  static std::unique_ptr<File> open(const std::string& path);
  // Parses a buffer the caller keeps alive (fuzzing, tests). `name` appears in error messages.
  static std::unique_ptr<File> parse(const uint8_t* data, size_t size, const std::string& name);
  ~File();

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: nullopt when absent; Error when present with an incompatible type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_f32_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;

 private:
  File() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::string name_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
  friend class Parser;
};

// Writes GGUF v3. Tensor data is produced at write time (a callback per tensor), so files larger
// than memory can be written (quantize, synth).
class Writer {
 public:
  // Fills exactly n_bytes at dst.
  using Producer = std::function<void(uint8_t* dst, size_t n_bytes)>;

  void set(const std::string& key, Value v);  // replaces an existing key in place
  void set_string(const std::string& key, std::string v) { set(key, Value::make_string(std::move(v))); }
  void set_u32(const std::string& key, uint32_t v) { set(key, Value::make_u32(v)); }
  void set_f32(const std::string& key, float v) { set(key, Value::make_f32(v)); }
  void set_bool(const std::string& key, bool v) { set(key, Value::make_bool(v)); }
  void remove(const std::string& key);
  // Copies every metadata key of `f` (in file order).
  void copy_metadata(const File& f);
  void set_alignment(uint32_t a);

  // shape in ggml order (row length first). Throws if the name repeats or the shape does not fit
  // the type's block size.
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> shape, Producer produce);
  // Convenience: bytes that stay valid until write() returns.
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> shape, const void* data);

  size_t tensor_count() const { return tensors_.size(); }
  // Called after each tensor's data is written: (index, count, name).
  void on_progress(std::function<void(size_t, size_t, const std::string&)> cb) { progress_ = std::move(cb); }

  // Writes to path + ".tmp" then renames, so a failed write never leaves a half file at `path`.
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> shape;
    uint64_t n_bytes;
    Producer produce;
  };
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = 32;
  std::function<void(size_t, size_t, const std::string&)> progress_;
};

}  // namespace rocforge::gguf
