// value.cpp - gguf::Value helpers and rendering.
#include <cstdio>

#include "rocforge/gguf.h"

namespace rocforge::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "?";
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}

bool Value::is_number() const { return is_integer() || type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

std::optional<int64_t> Value::as_int() const {
  switch (type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
      return static_cast<int64_t>(u);
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      return i;
    case ValueType::BOOL:
      return b ? 1 : 0;
    default:
      return std::nullopt;
  }
}

std::optional<double> Value::as_double() const {
  if (type == ValueType::FLOAT32 || type == ValueType::FLOAT64) return f;
  if (auto v = as_int()) return static_cast<double>(*v);
  return std::nullopt;
}

Value Value::make_u32(uint32_t v) { Value x; x.type = ValueType::UINT32; x.u = v; return x; }
Value Value::make_i32(int32_t v) { Value x; x.type = ValueType::INT32; x.i = v; return x; }
Value Value::make_u64(uint64_t v) { Value x; x.type = ValueType::UINT64; x.u = v; return x; }
Value Value::make_f32(float v) { Value x; x.type = ValueType::FLOAT32; x.f = v; return x; }
Value Value::make_bool(bool v) { Value x; x.type = ValueType::BOOL; x.b = v; return x; }
Value Value::make_string(std::string v) { Value x; x.type = ValueType::STRING; x.str = std::move(v); return x; }

Value Value::make_array(ValueType elem_type, std::vector<Value> elems) {
  Value x;
  x.type = ValueType::ARRAY;
  x.elem_type = elem_type;
  x.arr = std::move(elems);
  return x;
}

Value Value::make_string_array(const std::vector<std::string>& v) {
  std::vector<Value> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(make_string(s));
  return make_array(ValueType::STRING, std::move(e));
}

Value Value::make_f32_array(const std::vector<float>& v) {
  std::vector<Value> e;
  e.reserve(v.size());
  for (float f : v) e.push_back(make_f32(f));
  return make_array(ValueType::FLOAT32, std::move(e));
}

Value Value::make_i32_array(const std::vector<int32_t>& v) {
  std::vector<Value> e;
  e.reserve(v.size());
  for (int32_t i : v) e.push_back(make_i32(i));
  return make_array(ValueType::INT32, std::move(e));
}

std::string to_string(const Value& v, size_t max_items) {
  char buf[64];
  switch (v.type) {
    case ValueType::STRING: {
      std::string s = v.str.size() > 80 ? v.str.substr(0, 77) + "..." : v.str;
      std::string out = "\"";
      for (char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '"') out += "\\\"";
        else out += c;
      }
      return out + "\"";
    }
    case ValueType::BOOL: return v.b ? "true" : "false";
    case ValueType::FLOAT32: case ValueType::FLOAT64:
      std::snprintf(buf, sizeof buf, "%.9g", v.f);
      return buf;
    case ValueType::ARRAY: {
      std::string out = "[";
      for (size_t k = 0; k < v.arr.size() && k < max_items; ++k) {
        if (k) out += ", ";
        out += to_string(v.arr[k], max_items);
      }
      if (v.arr.size() > max_items) out += ", ... (" + std::to_string(v.arr.size()) + " items)";
      return out + "]";
    }
    default:
      return std::to_string(*v.as_int());
  }
}

}  // namespace rocforge::gguf
