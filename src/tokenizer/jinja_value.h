// jinja_value.h - the dynamic values of the chat-template (Jinja2 subset) interpreter.
//
// Values follow Python semantics where templates depend on them: truthiness, == across int and
// float, dicts that keep insertion order, str() / repr() / json.dumps renderings.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rocforge::jinja {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, like a Python dict

// Arguments of a call: positional then keyword.
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, std::string_view name) const;  // positional i or keyword `name`
};
using Function = std::function<Value(const CallArgs&)>;

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<jinja::Array> arr;  // shared: `list.append` and namespace writes are visible to all holders
  std::shared_ptr<jinja::Object> obj;
  std::shared_ptr<jinja::Function> fn;
  bool is_namespace = false;  // namespace(): the only object `set ns.attr = ...` may write

  Value() = default;
  static Value none() { Value v; v.kind = Kind::None; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::Float; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::String; v.s = std::move(x); return v; }
  static Value array(jinja::Array a = {}) { Value v; v.kind = Kind::Array; v.arr = std::make_shared<jinja::Array>(std::move(a)); return v; }
  static Value object(jinja::Object o = {}) { Value v; v.kind = Kind::Object; v.obj = std::make_shared<jinja::Object>(std::move(o)); return v; }
  static Value function(jinja::Function f) { Value v; v.kind = Kind::Function; v.fn = std::make_shared<jinja::Function>(std::move(f)); return v; }

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_object() const { return kind == Kind::Object; }
  double as_double() const { return kind == Kind::Int ? static_cast<double>(i) : kind == Kind::Bool ? b : f; }

  bool truthy() const;
  // Object member lookup (nullptr if absent / not an object).
  const Value* member(std::string_view key) const;
  void set_member(const std::string& key, Value v);
};

const char* kind_name(Value::Kind k);
bool equals(const Value& a, const Value& b);
// Python-like ordering for numbers and strings; nullopt when the types cannot be compared.
std::optional<int> compare(const Value& a, const Value& b);

std::string to_str(const Value& v);   // str(v): what {{ v }} prints
std::string to_repr(const Value& v);  // repr(v): strings quoted, as inside a printed list
// json.dumps(v, ensure_ascii=False, indent=indent) with Python's default separators.
std::string to_json(const Value& v, int indent = -1);
std::string format_float(double d);  // Python repr of a float ("1.0", "0.1", "1e-05")

}  // namespace rocforge::jinja
