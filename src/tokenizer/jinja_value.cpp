#include "tokenizer/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace rocforge::jinja {

const Value* CallArgs::get(size_t idx, std::string_view name) const {
  if (idx < pos.size()) return &pos[idx];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0.0;
    case Kind::String: return !s.empty();
    case Kind::Array: return !arr->empty();
    case Kind::Object: return !obj->empty();
    case Kind::Function: return true;
  }
  return false;
}

const Value* Value::member(std::string_view key) const {
  if (kind != Kind::Object) return nullptr;
  for (const auto& [k, v] : *obj)
    if (k == key) return &v;
  return nullptr;
}

void Value::set_member(const std::string& key, Value v) {
  for (auto& [k, old] : *obj)
    if (k == key) {
      old = std::move(v);
      return;
    }
  obj->emplace_back(key, std::move(v));
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Undefined: return "undefined";
    case Value::Kind::None: return "none";
    case Value::Kind::Bool: return "boolean";
    case Value::Kind::Int: return "integer";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "string";
    case Value::Kind::Array: return "list";
    case Value::Kind::Object: return "dict";
    case Value::Kind::Function: return "function";
  }
  return "?";
}

bool equals(const Value& a, const Value& b) {
  using K = Value::Kind;
  const bool an = a.is_number() || a.kind == K::Bool, bn = b.is_number() || b.kind == K::Bool;
  if (an && bn) {
    if (a.kind == K::Float || b.kind == K::Float) return a.as_double() == b.as_double();
    const int64_t x = a.kind == K::Bool ? a.b : a.i, y = b.kind == K::Bool ? b.b : b.i;
    return x == y;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::Undefined:
    case K::None: return true;
    case K::String: return a.s == b.s;
    case K::Array:
      if (a.arr->size() != b.arr->size()) return false;
      for (size_t i = 0; i < a.arr->size(); ++i)
        if (!equals((*a.arr)[i], (*b.arr)[i])) return false;
      return true;
    case K::Object:
      if (a.obj->size() != b.obj->size()) return false;
      for (const auto& [k, v] : *a.obj) {
        const Value* o = b.member(k);
        if (!o || !equals(v, *o)) return false;
      }
      return true;
    case K::Function: return a.fn == b.fn;
    default: return false;
  }
}

std::optional<int> compare(const Value& a, const Value& b) {
  if ((a.is_number() || a.kind == Value::Kind::Bool) && (b.is_number() || b.kind == Value::Kind::Bool)) {
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < a.arr->size() && i < b.arr->size(); ++i) {
      auto c = compare((*a.arr)[i], (*b.arr)[i]);
      if (!c) return std::nullopt;
      if (*c) return c;
    }
    return a.arr->size() < b.arr->size() ? -1 : a.arr->size() > b.arr->size() ? 1 : 0;
  }
  return std::nullopt;
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest representation that round-trips, like Python's repr.
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, res.ptr);
  const double ad = std::fabs(d);
  if (ad != 0 && (ad >= 1e16 || ad < 1e-4)) {
    // Python switches to exponent form at these magnitudes: "1e-05", "1e+16".
    res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    s.assign(buf, res.ptr);
    return s;
  }
  res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  s.assign(buf, res.ptr);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

namespace {

void repr_string(const std::string& s, std::string& out) {
  // Python picks single quotes unless the string contains one and no double quote.
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  out += q;
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c == q) {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char b[8];
          std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
          out += b;
        } else {
          out += c;
        }
    }
  }
  out += q;
}

void repr_into(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::String: repr_string(v.s, out); break;
    case Value::Kind::Array:
      out += '[';
      for (size_t i = 0; i < v.arr->size(); ++i) {
        if (i) out += ", ";
        repr_into((*v.arr)[i], out);
      }
      out += ']';
      break;
    case Value::Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : *v.obj) {
        if (!first) out += ", ";
        first = false;
        repr_string(k, out);
        out += ": ";
        repr_into(x, out);
      }
      out += '}';
      break;
    }
    default: out += to_str(v);
  }
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned char>(c));
          out += b;
        } else {
          out += c;  // ensure_ascii=False: UTF-8 passes through
        }
    }
  }
  out += '"';
}

void json_into(const Value& v, int indent, int depth, std::string& out) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.kind) {
    case Value::Kind::Undefined:
    case Value::Kind::None: out += "null"; break;
    case Value::Kind::Bool: out += v.b ? "true" : "false"; break;
    case Value::Kind::Int: out += std::to_string(v.i); break;
    case Value::Kind::Float:
      out += std::isfinite(v.f) ? format_float(v.f) : (std::isnan(v.f) ? "NaN" : v.f > 0 ? "Infinity" : "-Infinity");
      break;
    case Value::Kind::String: json_string(v.s, out); break;
    case Value::Kind::Function: out += "null"; break;
    case Value::Kind::Array:
      if (v.arr->empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < v.arr->size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        json_into((*v.arr)[i], indent, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out += ']';
      break;
    case Value::Kind::Object: {
      if (v.obj->empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, x] : *v.obj) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(depth + 1);
        json_string(k, out);
        out += ": ";
        json_into(x, indent, depth + 1, out);
      }
      if (indent >= 0) newline(depth);
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Value::Kind::Undefined: return "";
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return v.b ? "True" : "False";
    case Value::Kind::Int: return std::to_string(v.i);
    case Value::Kind::Float: return format_float(v.f);
    case Value::Kind::String: return v.s;
    case Value::Kind::Function: return "<function>";
    default: {
      std::string out;
      repr_into(v, out);
      return out;
    }
  }
}

std::string to_repr(const Value& v) {
  std::string out;
  repr_into(v, out);
  return out;
}

std::string to_json(const Value& v, int indent) {
  std::string out;
  json_into(v, indent, 0, out);
  return out;
}

}  // namespace rocforge::jinja
