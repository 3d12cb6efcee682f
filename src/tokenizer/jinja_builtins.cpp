// jinja_builtins.cpp - filters, tests, Python-style methods and global functions.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <climits>
#include <cstdint>
#include <ctime>

#include "rocforge/error.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/utf8.h"

namespace rocforge::jinja {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw EvalError{msg}; }

const std::string& want_string(const Value& v, const char* what) {
  if (!v.is_string()) bad(std::string(what) + " expects a string, got " + kind_name(v.kind));
  return v.s;
}

int64_t want_int(const Value* v, int64_t dflt) {
  if (!v || v->is_none() || v->is_undefined()) return dflt;
  if (v->kind == Value::Kind::Int) return v->i;
  if (v->kind == Value::Kind::Bool) return v->b;
  bad(std::string("expected an integer, got ") + kind_name(v->kind));
}

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto drop = [&](char c) {
    if (chars && chars->is_string()) return chars->s.find(c) != std::string::npos;
    return is_py_space(c);
  };
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && drop(s[b])) ++b;
  if (right)
    while (e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string capitalize(const std::string& s) {
  std::string out = lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}
std::string title(const std::string& s) {
  std::string out = s;
  bool prev_alpha = false;
  for (auto& c : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c));
    if (alpha) c = static_cast<char>(prev_alpha ? std::tolower(static_cast<unsigned char>(c)) : std::toupper(static_cast<unsigned char>(c)));
    prev_alpha = alpha;
  }
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (size_t hit; count != 0 && (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size(), --count) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos);
  return out;
}

Array split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Array out;
  if (!sep || sep->is_none() || sep->is_undefined()) {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_py_space(s[i])) ++i;
      if (i >= s.size()) break;
      size_t j = i;
      if (maxsplit == 0) {
        size_t e = s.size();
        while (e > i && is_py_space(s[e - 1])) --e;
        out.push_back(Value::string(s.substr(i, e - i)));
        break;
      }
      while (j < s.size() && !is_py_space(s[j])) ++j;
      out.push_back(Value::string(s.substr(i, j - i)));
      --maxsplit;
      i = j;
    }
    return out;
  }
  const std::string& d = want_string(*sep, "split separator");
  if (d.empty()) bad("empty separator");
  size_t pos = 0;
  for (size_t hit; maxsplit != 0 && (hit = s.find(d, pos)) != std::string::npos; pos = hit + d.size(), --maxsplit)
    out.push_back(Value::string(s.substr(pos, hit - pos)));
  out.push_back(Value::string(s.substr(pos)));
  return out;
}

Value items_of(const Value& v) {
  if (!v.is_object()) bad(std::string("items() needs a dict, got ") + kind_name(v.kind));
  Array out;
  for (const auto& [k, x] : *v.obj) out.push_back(Value::array({Value::string(k), x}));
  return Value::array(std::move(out));
}

std::vector<Value> iter_or_fail(const Value& v) {
  std::vector<Value> items;
  if (v.is_undefined()) return items;
  if (!iterate(v, items)) bad(std::string("cannot iterate over a ") + kind_name(v.kind));
  return items;
}

// Attribute lookup used by map/selectattr/sort/join(attribute=...): "a.b" walks nested dicts.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const Value* m = cur.member(part);
    cur = m ? *m : Value();
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

CallArgs tail_args(const CallArgs& a, size_t from) {
  CallArgs t;
  for (size_t i = from; i < a.pos.size(); ++i) t.pos.push_back(a.pos[i]);
  t.kw = a.kw;
  return t;
}

std::string join(const Value& in, const CallArgs& a) {
  const Value* sep = a.get(0, "d");
  const Value* attr = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const auto& x : iter_or_fail(in)) {
    if (!first && sep) out += to_str(*sep);
    first = false;
    out += to_str(attr ? attr_path(x, to_str(*attr)) : x);
  }
  return out;
}

}  // namespace

bool iterate(const Value& v, std::vector<Value>& out) {
  switch (v.kind) {
    case Value::Kind::Array: out.assign(v.arr->begin(), v.arr->end()); return true;
    case Value::Kind::Object:
      out.clear();
      for (const auto& [k, x] : *v.obj) out.push_back(Value::string(k));
      return true;
    case Value::Kind::String:
      out.clear();
      for (size_t i = 0; i < v.s.size();) {
        const size_t n = tok::utf8_char_len(v.s, i);
        out.push_back(Value::string(v.s.substr(i, n)));
        i += n;
      }
      return true;
    default: return false;
  }
}

Value apply_filter(const std::string& name, const Value& in, const CallArgs& a) {
  if (name == "trim") return Value::string(strip(want_string(in, "trim"), a.get(0, "chars"), true, true));
  if (name == "upper") return Value::string(upper(want_string(in, "upper")));
  if (name == "lower") return Value::string(lower(want_string(in, "lower")));
  if (name == "capitalize") return Value::string(capitalize(want_string(in, "capitalize")));
  if (name == "title") return Value::string(title(want_string(in, "title")));
  if (name == "string") return Value::string(to_str(in));
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    // Autoescaping is off for chat templates, so these leave text unchanged... except escape,
    // which does HTML-escape explicitly.
    if (name == "safe") return in;
    std::string s = to_str(in), out;
    for (char c : s) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::string(std::move(out));
  }
  if (name == "length" || name == "count") {
    if (in.is_string()) {
      std::vector<Value> chars;
      iterate(in, chars);
      return Value::integer(static_cast<int64_t>(chars.size()));
    }
    if (in.is_array()) return Value::integer(static_cast<int64_t>(in.arr->size()));
    if (in.is_object()) return Value::integer(static_cast<int64_t>(in.obj->size()));
    if (in.is_undefined()) return Value::integer(0);
    bad(std::string("object of type ") + kind_name(in.kind) + " has no length");
  }
  if (name == "first" || name == "last") {
    auto items = iter_or_fail(in);
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "default" || name == "d") {
    const Value* dflt = a.get(0, "default_value");
    const Value* boolean = a.get(1, "boolean");
    const bool use = in.is_undefined() || (boolean && boolean->truthy() && !in.truthy());
    return use ? (dflt ? *dflt : Value::string("")) : in;
  }
  if (name == "tojson") {
    const Value* indent = a.get(0, "indent");
    return Value::string(to_json(in, indent && !indent->is_none() ? static_cast<int>(want_int(indent, -1)) : -1));
  }
  if (name == "join") return Value::string(join(in, a));
  if (name == "replace") {
    const Value* from = a.get(0, "old");
    const Value* to = a.get(1, "new");
    if (!from || !to) bad("replace needs two arguments");
    return Value::string(replace(want_string(in, "replace"), to_str(*from), to_str(*to), want_int(a.get(2, "count"), -1)));
  }
  if (name == "items") return items_of(in);
  if (name == "list") return Value::array(iter_or_fail(in));
  if (name == "reverse") {
    if (in.is_string()) {
      auto chars = iter_or_fail(in);
      std::string s;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) s += it->s;
      return Value::string(std::move(s));
    }
    auto items = iter_or_fail(in);
    std::reverse(items.begin(), items.end());
    return Value::array(std::move(items));
  }
  if (name == "int") {
    if (in.kind == Value::Kind::Int) return in;
    if (in.kind == Value::Kind::Float) {
      if (!(std::fabs(in.f) < 9.2e18)) bad("float out of integer range");
      return Value::integer(static_cast<int64_t>(in.f));
    }
    if (in.kind == Value::Kind::Bool) return Value::integer(in.b);
    if (in.is_string()) {
      try {
        return Value::integer(std::stoll(in.s));
      } catch (...) {
      }
    }
    return Value::integer(want_int(a.get(0, "default"), 0));
  }
  if (name == "float") {
    if (in.is_number() || in.kind == Value::Kind::Bool) return Value::number(in.as_double());
    if (in.is_string()) {
      try {
        return Value::number(std::stod(in.s));
      } catch (...) {
      }
    }
    return Value::number(0.0);
  }
  if (name == "abs") {
    if (in.kind == Value::Kind::Int) return in.i == INT64_MIN ? Value::number(9.223372036854775808e18) : Value::integer(in.i < 0 ? -in.i : in.i);
    if (in.kind == Value::Kind::Float) return Value::number(std::fabs(in.f));
    bad("abs needs a number");
  }
  if (name == "round") {
    const int64_t prec = want_int(a.get(0, "precision"), 0);
    const double m = std::pow(10.0, static_cast<double>(prec));
    return Value::number(std::round(in.as_double() * m) / m);
  }
  if (name == "indent") {
    const Value* w = a.get(0, "width");
    const std::string pad = w && w->is_string() ? w->s : std::string(static_cast<size_t>(want_int(w, 4)), ' ');
    const Value* first = a.get(1, "first");
    const Value* blank = a.get(2, "blank");
    std::string s = to_str(in), out;
    size_t pos = 0;
    bool line0 = true;
    while (pos <= s.size()) {
      size_t nl = s.find('\n', pos);
      const std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if ((!line0 || (first && first->truthy())) && (!line.empty() || (blank && blank->truthy()))) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      pos = nl + 1;
      line0 = false;
    }
    return Value::string(std::move(out));
  }
  if (name == "unique") {
    Array out;
    for (const auto& x : iter_or_fail(in))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equals(x, y); })) out.push_back(x);
    return Value::array(std::move(out));
  }
  if (name == "sum") {
    Value acc = Value::integer(0);
    const Value* attr = a.get(0, "attribute");
    for (const auto& x0 : iter_or_fail(in)) {
      const Value x = attr ? attr_path(x0, to_str(*attr)) : x0;
      if (acc.kind == Value::Kind::Int && x.kind == Value::Kind::Int) acc.i += x.i;
      else acc = Value::number(acc.as_double() + x.as_double());
    }
    return acc;
  }
  if (name == "min" || name == "max") {
    auto items = iter_or_fail(in);
    if (items.empty()) return Value();
    Value best = items[0];
    for (const auto& x : items) {
      auto c = compare(x, best);
      if (!c) bad("values are not comparable");
      if ((name == "min" && *c < 0) || (name == "max" && *c > 0)) best = x;
    }
    return best;
  }
  if (name == "sort") {
    auto items = iter_or_fail(in);
    const Value* rev = a.get(0, "reverse");
    const Value* attr = a.get(2, "attribute");
    bool ok = true;
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      auto c = attr ? compare(attr_path(x, to_str(*attr)), attr_path(y, to_str(*attr))) : compare(x, y);
      if (!c) ok = false;
      return c && *c < 0;
    });
    if (!ok) bad("values are not comparable");
    if (rev && rev->truthy()) std::reverse(items.begin(), items.end());
    return Value::array(std::move(items));
  }
  if (name == "map") {
    Array out;
    const Value* attr = a.get(99, "attribute");
    for (const auto& x : iter_or_fail(in)) {
      if (attr) {
        Value v = attr_path(x, to_str(*attr));
        if (v.is_undefined())
          if (const Value* d = a.get(99, "default")) v = *d;
        out.push_back(v);
      } else {
        if (a.pos.empty()) bad("map needs a filter name or attribute=");
        out.push_back(apply_filter(to_str(a.pos[0]), x, tail_args(a, 1)));
      }
    }
    return Value::array(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name.size() > 6;
    const bool keep_if = name[0] == 's';
    Array out;
    for (const auto& x : iter_or_fail(in)) {
      Value subject = x;
      size_t next = 0;
      if (by_attr) {
        if (a.pos.empty()) bad(name + " needs an attribute name");
        subject = attr_path(x, to_str(a.pos[0]));
        next = 1;
      }
      bool t;
      if (a.pos.size() > next) t = apply_test(to_str(a.pos[next]), subject, tail_args(a, next + 1));
      else t = subject.truthy();
      if (t == keep_if) out.push_back(x);
    }
    return Value::array(std::move(out));
  }
  if (name == "wordcount") return Value::integer(static_cast<int64_t>(split(to_str(in), nullptr, -1).size()));
  if (name == "dictsort") {
    if (!in.is_object()) bad("dictsort needs a dict");
    Object o = *in.obj;
    std::stable_sort(o.begin(), o.end(), [](const auto& x, const auto& y) { return lower(x.first) < lower(y.first); });
    Array out;
    for (auto& [k, v] : o) out.push_back(Value::array({Value::string(k), v}));
    return Value::array(std::move(out));
  }
  bad("unknown filter '" + name + "'");
}

bool apply_test(const std::string& name, const Value& v, const CallArgs& a) {
  using K = Value::Kind;
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == K::Int;
  if (name == "float") return v.kind == K::Float;
  if (name == "boolean") return v.kind == K::Bool;
  if (name == "true") return v.kind == K::Bool && v.b;
  if (name == "false") return v.kind == K::Bool && !v.b;
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_string() || v.is_object();
  if (name == "iterable") return v.is_array() || v.is_string() || v.is_object();
  if (name == "callable") return v.kind == K::Function;
  if (name == "lower") return v.is_string() && lower(v.s) == v.s;
  if (name == "upper") return v.is_string() && upper(v.s) == v.s;
  if (name == "even" || name == "odd") {
    if (v.kind != K::Int) bad("needs an integer");
    return ((v.i % 2) == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    const int64_t d = want_int(a.get(0, "num"), 0);
    if (d == 0 || v.kind != K::Int) bad("needs a non-zero integer");
    return v.i % d == 0;
  }
  const Value* other = a.get(0, "other");
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    if (!other) bad("needs an argument");
    return equals(v, *other) && (name != "sameas" || v.kind == other->kind);
  }
  if (name == "ne" || name == "!=") return other && !equals(v, *other);
  if (name == "in") {
    if (!other) bad("needs an argument");
    if (other->is_string()) return v.is_string() && other->s.find(v.s) != std::string::npos;
    if (other->is_array())
      return std::any_of(other->arr->begin(), other->arr->end(), [&](const Value& x) { return equals(x, v); });
    if (other->is_object()) return v.is_string() && other->member(v.s);
    return false;
  }
  if (name == "gt" || name == "lt" || name == "ge" || name == "le") {
    if (!other) bad("needs an argument");
    auto c = compare(v, *other);
    if (!c) bad("values are not comparable");
    return name == "gt" ? *c > 0 : name == "lt" ? *c < 0 : name == "ge" ? *c >= 0 : *c <= 0;
  }
  bad("unknown test '" + name + "'");
}

std::optional<Value> call_method(Value& v, const std::string& name, const CallArgs& a) {
  if (v.is_string()) {
    const std::string& s = v.s;
    if (name == "strip") return Value::string(strip(s, a.get(0, "chars"), true, true));
    if (name == "lstrip") return Value::string(strip(s, a.get(0, "chars"), true, false));
    if (name == "rstrip") return Value::string(strip(s, a.get(0, "chars"), false, true));
    if (name == "upper") return Value::string(upper(s));
    if (name == "lower") return Value::string(lower(s));
    if (name == "title") return Value::string(title(s));
    if (name == "capitalize") return Value::string(capitalize(s));
    if (name == "split") return Value::array(split(s, a.get(0, "sep"), want_int(a.get(1, "maxsplit"), -1)));
    if (name == "startswith" || name == "endswith") {
      const Value* x = a.get(0, "prefix");
      if (!x) bad("needs an argument");
      std::vector<Value> options = x->is_array() ? *x->arr : std::vector<Value>{*x};
      for (const auto& o : options) {
        const std::string& p = want_string(o, name.c_str());
        if (p.size() > s.size()) continue;
        if (name[0] == 's' ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0)
          return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    if (name == "replace") {
      const Value* from = a.get(0, "old");
      const Value* to = a.get(1, "new");
      if (!from || !to) bad("needs two arguments");
      return Value::string(replace(s, want_string(*from, "replace"), want_string(*to, "replace"), want_int(a.get(2, "count"), -1)));
    }
    if (name == "find") {
      const Value* x = a.get(0, "sub");
      if (!x) bad("needs an argument");
      const size_t p = s.find(want_string(*x, "find"));
      return Value::integer(p == std::string::npos ? -1 : static_cast<int64_t>(p));
    }
    if (name == "count") {
      const Value* x = a.get(0, "sub");
      if (!x) bad("needs an argument");
      const std::string& sub = want_string(*x, "count");
      int64_t n = 0;
      if (!sub.empty())
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (const auto& x : iter_or_fail(a.pos.empty() ? Value() : a.pos[0])) {
        if (!first) out += s;
        first = false;
        out += to_str(x);
      }
      return Value::string(std::move(out));
    }
    if (name == "format") {
      // Positional "{}" / "{0}" replacement only.
      std::string out;
      size_t next = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '{') { out += '{'; ++i; continue; }
        if (s[i] == '}' && i + 1 < s.size() && s[i + 1] == '}') { out += '}'; ++i; continue; }
        if (s[i] != '{') { out += s[i]; continue; }
        const size_t close = s.find('}', i);
        if (close == std::string::npos) bad("unmatched '{' in format string");
        const std::string field = s.substr(i + 1, close - i - 1);
        if (field.size() > 6 || field.find_first_not_of("0123456789") != std::string::npos)
          bad("only positional {} / {N} fields are supported in format()");
        const size_t idx = field.empty() ? next++ : static_cast<size_t>(std::stoul(field));
        if (idx >= a.pos.size()) bad("format index out of range");
        out += to_str(a.pos[idx]);
        i = close;
      }
      return Value::string(std::move(out));
    }
    if (name == "isdigit" || name == "isalpha" || name == "isspace") {
      if (s.empty()) return Value::boolean(false);
      for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((name == "isdigit" && !std::isdigit(u)) || (name == "isalpha" && !std::isalpha(u)) ||
            (name == "isspace" && !is_py_space(c)))
          return Value::boolean(false);
      }
      return Value::boolean(true);
    }
    return std::nullopt;
  }
  if (v.is_object()) {
    if (name == "items") return items_of(v);
    if (name == "keys" || name == "values") {
      Array out;
      for (const auto& [k, x] : *v.obj) out.push_back(name == "keys" ? Value::string(k) : x);
      return Value::array(std::move(out));
    }
    if (name == "get") {
      const Value* key = a.get(0, "key");
      if (!key) bad("needs a key");
      const Value* m = key->is_string() ? v.member(key->s) : nullptr;
      if (m) return *m;
      const Value* d = a.get(1, "default");
      return d ? *d : Value::none();
    }
    return std::nullopt;
  }
  if (v.is_array()) {
    if (name == "append") {
      if (a.pos.size() != 1) bad("append takes one argument");
      v.arr->push_back(a.pos[0]);
      return Value::none();
    }
    if (name == "pop") {
      if (v.arr->empty()) bad("pop from empty list");
      int64_t i = want_int(a.get(0, "index"), -1);
      const auto n = static_cast<int64_t>(v.arr->size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) bad("pop index out of range");
      Value x = (*v.arr)[static_cast<size_t>(i)];
      v.arr->erase(v.arr->begin() + i);
      return x;
    }
    if (name == "index") {
      const Value* x = a.get(0, "value");
      for (size_t i = 0; x && i < v.arr->size(); ++i)
        if (equals((*v.arr)[i], *x)) return Value::integer(static_cast<int64_t>(i));
      bad("value is not in list");
    }
    if (name == "count") {
      const Value* x = a.get(0, "value");
      int64_t n = 0;
      for (const auto& y : *v.arr) n += x && equals(y, *x);
      return Value::integer(n);
    }
    return std::nullopt;
  }
  return std::nullopt;
}

Value make_global(const std::string& name) {
  if (name == "raise_exception") {
    return Value::function([](const CallArgs& a) -> Value {
      throw EvalError{"raise_exception: " + (a.pos.empty() ? std::string("(no message)") : to_str(a.pos[0]))};
    });
  }
  if (name == "range") {
    return Value::function([](const CallArgs& a) {
      int64_t start = 0, stop, step = 1;
      if (a.pos.size() == 1) {
        stop = want_int(&a.pos[0], 0);
      } else if (a.pos.size() >= 2) {
        start = want_int(&a.pos[0], 0);
        stop = want_int(&a.pos[1], 0);
        if (a.pos.size() > 2) step = want_int(&a.pos[2], 1);
      } else {
        bad("range() needs 1 to 3 arguments");
      }
      if (step == 0) bad("range() step must not be zero");
      Array out;
      // Count first (in wide arithmetic) so huge bounds neither overflow nor allocate.
      const __int128 span = step > 0 ? (__int128)stop - start : (__int128)start - stop;
      const __int128 count = span <= 0 ? 0 : (span + (step > 0 ? step : -(__int128)step) - 1) / (step > 0 ? step : -(__int128)step);
      if (count > 1000000) bad("range() too large");
      for (__int128 k = 0; k < count; ++k) out.push_back(Value::integer(static_cast<int64_t>(start + k * step)));
      return Value::array(std::move(out));
    });
  }
  if (name == "namespace" || name == "dict") {
    const bool ns = name == "namespace";
    return Value::function([ns](const CallArgs& a) {
      Value o = Value::object();
      o.is_namespace = ns;
      for (const auto& [k, v] : a.kw) o.set_member(k, v);
      return o;
    });
  }
  if (name == "strftime_now") {
    return Value::function([](const CallArgs& a) {
      const Value* fmt = a.get(0, "format");
      if (!fmt || !fmt->is_string()) bad("strftime_now needs a format string");
      const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::tm tm{};
      localtime_r(&t, &tm);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, fmt->s.c_str(), &tm);
      return Value::string(std::string(buf, n));
    });
  }
  return Value();
}

}  // namespace rocforge::jinja
