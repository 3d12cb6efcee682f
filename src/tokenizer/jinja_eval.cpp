// jinja_eval.cpp - the tree-walking interpreter: scopes, statements, operators.
#include "tokenizer/jinja_eval.h"

#include <climits>
#include <cmath>
#include <unordered_map>

#include "rocforge/error.h"

namespace rocforge::jinja {
namespace {

[[noreturn]] void fail(const Loc& l, const std::string& msg) {
  throw Error("chat template: line " + std::to_string(l.line) + " col " + std::to_string(l.col) + ": " + msg);
}

enum class Flow { Normal, Break, Continue };

// Python floor division / modulo on integers.
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class Interpreter {
 public:
  Interpreter(const Object& globals, std::string& out) : out_(out) {
    frames_.emplace_back();
    for (const auto& [k, v] : globals) frames_.back()[k] = v;
    frames_.emplace_back();  // the template's own top-level variables
  }

  Flow exec(const Body& body) {
    for (const auto& s : body) {
      const Flow f = exec(*s);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

 private:
  Flow exec(const Stmt& s) {
    switch (s.kind) {
      case Stmt::Kind::Text: emit(s.text, s.loc); return Flow::Normal;
      case Stmt::Kind::Output: emit(to_str(eval(*s.expr)), s.loc); return Flow::Normal;
      case Stmt::Kind::If:
        for (size_t i = 0; i < s.bodies.size(); ++i)
          if (i >= s.conds.size() || eval(*s.conds[i]).truthy()) return exec(s.bodies[i]);
        return Flow::Normal;
      case Stmt::Kind::For: return exec_for(s);
      case Stmt::Kind::Set: exec_set(s); return Flow::Normal;
      case Stmt::Kind::SetBlock: {
        std::string captured;
        std::swap(captured, out_);
        exec(s.bodies[0]);
        std::swap(captured, out_);
        frames_.back()[s.targets[0]] = Value::string(std::move(captured));
        return Flow::Normal;
      }
      case Stmt::Kind::Macro: define_macro(s); return Flow::Normal;
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  // Runaway templates (loops over huge ranges, string repetition) stop with an error.
  static constexpr size_t kMaxOutput = size_t{64} << 20;
  void emit(const std::string& text, const Loc& loc) {
    if (out_.size() + text.size() > kMaxOutput) fail(loc, "template output exceeds 64 MiB");
    out_ += text;
  }

  void assign(const std::vector<std::string>& names, const Value& v, const Loc& loc) {
    auto& frame = frames_.back();
    if (names.size() == 1) {
      frame[names[0]] = v;
      return;
    }
    std::vector<Value> items;
    if (!iterate(v, items)) fail(loc, std::string("cannot unpack a ") + kind_name(v.kind));
    if (items.size() != names.size())
      fail(loc, "cannot unpack " + std::to_string(items.size()) + " values into " + std::to_string(names.size()) +
                    " names");
    for (size_t i = 0; i < names.size(); ++i) frame[names[i]] = items[i];
  }

  void exec_set(const Stmt& s) {
    Value v = eval(*s.expr);
    if (s.attr.empty()) {
      assign(s.targets, v, s.loc);
      return;
    }
    Value* target = lookup(s.targets[0]);
    if (!target || !target->is_object() || !target->is_namespace)
      fail(s.loc, "'" + s.targets[0] + "' is not a namespace: only namespace() objects support 'set x.attr'");
    target->set_member(s.attr, std::move(v));
  }

  Flow exec_for(const Stmt& s) {
    const Value seq = eval(*s.expr);
    std::vector<Value> items;
    if (!seq.is_undefined() && !iterate(seq, items)) fail(s.expr->loc, std::string("cannot iterate over a ") + kind_name(seq.kind));
    frames_.emplace_back();
    if (s.filter) {
      std::vector<Value> kept;
      for (auto& it : items) {
        assign(s.targets, it, s.loc);
        if (eval(*s.filter).truthy()) kept.push_back(std::move(it));
      }
      items.swap(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    // loop.cycle(a, b, ...) picks by the current index, read back from the loop object.
    const Value cycle = Value::function([this](const CallArgs& a) {
      if (a.pos.empty()) throw EvalError{"loop.cycle() needs at least one argument"};
      const Value* loop = lookup("loop");
      const Value* idx = loop ? loop->member("index0") : nullptr;
      return a.pos[static_cast<size_t>(idx ? idx->i : 0) % a.pos.size()];
    });
    for (int64_t i = 0; i < n; ++i) {
      assign(s.targets, items[i], s.loc);
      Value loop = Value::object({
          {"index", Value::integer(i + 1)},
          {"index0", Value::integer(i)},
          {"revindex", Value::integer(n - i)},
          {"revindex0", Value::integer(n - i - 1)},
          {"first", Value::boolean(i == 0)},
          {"last", Value::boolean(i == n - 1)},
          {"length", Value::integer(n)},
          {"previtem", i > 0 ? items[i - 1] : Value()},
          {"nextitem", i + 1 < n ? items[i + 1] : Value()},
          {"cycle", cycle},
      });
      frames_.back()["loop"] = std::move(loop);
      if (exec(s.bodies[0]) == Flow::Break) break;
    }
    frames_.pop_back();
    if (n == 0 && s.bodies.size() > 1) return exec(s.bodies[1]);
    return Flow::Normal;
  }

  void define_macro(const Stmt& s) {
    const Stmt* def = &s;
    frames_.back()[s.targets[0]] = Value::function([this, def](const CallArgs& a) {
      if (call_depth_ >= kMaxCallDepth) throw EvalError{"macro recursion is too deep"};
      ++call_depth_;
      frames_.emplace_back();
      const size_t n_params = def->targets.size() - 1;
      if (a.pos.size() > n_params) throw EvalError{"too many arguments for macro '" + def->targets[0] + "'"};
      for (size_t p = 0; p < n_params; ++p) {
        const std::string& pname = def->targets[p + 1];
        if (const Value* v = a.get(p, pname)) frames_.back()[pname] = *v;
        else if (def->defaults[p]) frames_.back()[pname] = eval(*def->defaults[p]);
        else frames_.back()[pname] = Value();
      }
      std::string captured;
      std::swap(captured, out_);
      exec(def->bodies[0]);
      std::swap(captured, out_);
      frames_.pop_back();
      --call_depth_;
      return Value::string(std::move(captured));
    });
  }

  Value* lookup(const std::string& name) {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &f->second;
    }
    return nullptr;
  }

  CallArgs eval_args(const Expr& e, size_t first) {
    CallArgs a;
    const size_t n_kw = e.kw_names.size();
    const size_t n_pos = e.args.size() - first - n_kw;
    for (size_t i = 0; i < n_pos; ++i) a.pos.push_back(eval(*e.args[first + i]));
    for (size_t i = 0; i < n_kw; ++i) a.kw.emplace_back(e.kw_names[i], eval(*e.args[first + n_pos + i]));
    return a;
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: {
        if (const Value* v = lookup(e.name)) return *v;
        return make_global(e.name);
      }
      case Expr::Kind::Attr: {
        const Value obj = eval(*e.args[0]);
        return get_item(obj, Value::string(e.name), true);
      }
      case Expr::Kind::Index: {
        const Value obj = eval(*e.args[0]);
        return get_item(obj, eval(*e.args[1]), false);
      }
      case Expr::Kind::Slice: return eval_slice(e);
      case Expr::Kind::Call: return eval_call(e);
      case Expr::Kind::Filter: {
        Value in = eval(*e.args[0]);
        CallArgs a = eval_args(e, 1);
        try {
          return apply_filter(e.name, in, a);
        } catch (const EvalError& err) {
          fail(e.loc, "filter '" + e.name + "': " + err.msg);
        }
      }
      case Expr::Kind::Test: {
        Value v = eval(*e.args[0]);
        CallArgs a = eval_args(e, 1);
        try {
          return Value::boolean(apply_test(e.name, v, a) != e.negated);
        } catch (const EvalError& err) {
          fail(e.loc, "test '" + e.name + "': " + err.msg);
        }
      }
      case Expr::Kind::Unary: {
        if (e.name == "not") return Value::boolean(!eval(*e.args[0]).truthy());
        const Value v = eval(*e.args[0]);
        if (v.kind == Value::Kind::Int) {
          if (e.name == "-" && v.i == INT64_MIN) return Value::number(-static_cast<double>(v.i));
          return Value::integer(e.name == "-" ? -v.i : v.i);
        }
        if (v.kind == Value::Kind::Float) return Value::number(e.name == "-" ? -v.f : v.f);
        fail(e.loc, "bad operand for unary " + e.name + ": " + kind_name(v.kind));
      }
      case Expr::Kind::Binary: return eval_binary(e);
      case Expr::Kind::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        Array a;
        for (const auto& x : e.args) a.push_back(eval(*x));
        return Value::array(std::move(a));
      }
      case Expr::Kind::Dict: {
        Value d = Value::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i]);
          if (!k.is_string()) fail(e.args[i]->loc, "dict keys must be strings");
          d.set_member(k.s, eval(*e.args[i + 1]));
        }
        return d;
      }
    }
    fail(e.loc, "unsupported expression");
  }

  // obj.name / obj[key]. Missing keys and indexes give undefined, as in Jinja.
  Value get_item(const Value& obj, const Value& key, bool attr_syntax) {
    if (obj.is_object()) {
      if (!key.is_string()) return Value();
      const Value* m = obj.member(key.s);
      return m ? *m : Value();
    }
    int64_t idx = 0;
    bool have_idx = false;
    if (key.kind == Value::Kind::Int) {
      idx = key.i;
      have_idx = true;
    } else if (attr_syntax && key.is_string() && !key.s.empty() && key.s.size() < 18 &&
               key.s.find_first_not_of("0123456789") == std::string::npos) {
      idx = std::stoll(key.s);  // < 18 digits: cannot overflow
      have_idx = true;
    }
    if (!have_idx) return Value();
    if (obj.is_array()) {
      const auto n = static_cast<int64_t>(obj.arr->size());
      if (idx < 0) idx += n;
      return idx >= 0 && idx < n ? (*obj.arr)[static_cast<size_t>(idx)] : Value();
    }
    if (obj.is_string()) {
      std::vector<Value> chars;
      iterate(obj, chars);
      const auto n = static_cast<int64_t>(chars.size());
      if (idx < 0) idx += n;
      return idx >= 0 && idx < n ? chars[static_cast<size_t>(idx)] : Value();
    }
    return Value();
  }

  Value eval_slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    std::vector<Value> items;
    if (!obj.is_array() && !obj.is_string()) fail(e.loc, std::string("cannot slice a ") + kind_name(obj.kind));
    iterate(obj, items);
    const auto n = static_cast<int64_t>(items.size());
    auto num = [&](int k, int64_t dflt) -> int64_t {
      if (!e.args[k]) return dflt;
      const Value v = eval(*e.args[k]);
      if (v.is_none()) return dflt;
      if (v.kind != Value::Kind::Int) fail(e.args[k]->loc, "slice indices must be integers");
      return v.i;
    };
    const int64_t step = num(3, 1);
    if (step == 0) fail(e.loc, "slice step cannot be zero");
    // Python's slice index normalisation.
    auto clamp = [&](int64_t v, bool is_start) {
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      (void)is_start;
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    int64_t start = e.args[1] ? clamp(num(1, 0), true) : (step > 0 ? 0 : n - 1);
    int64_t stop = e.args[2] ? clamp(num(2, 0), false) : (step > 0 ? n : -1);
    Array out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(items[static_cast<size_t>(i)]);
    if (obj.is_string()) {
      std::string s;
      for (const auto& c : out) s += c.s;
      return Value::string(std::move(s));
    }
    return Value::array(std::move(out));
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.args[0];
    CallArgs a;
    if (callee.kind == Expr::Kind::Attr) {
      // Method call on a value: "text.strip()", "messages.append(x)", "d.items()".
      Value obj = eval(*callee.args[0]);
      const Value* member = obj.is_object() ? obj.member(callee.name) : nullptr;
      if (!member || member->kind != Value::Kind::Function) {
        a = eval_args(e, 1);
        try {
          if (auto r = call_method(obj, callee.name, a)) return *r;
        } catch (const EvalError& err) {
          fail(e.loc, callee.name + "(): " + err.msg);
        }
        if (!member) fail(callee.loc, std::string(kind_name(obj.kind)) + " has no method '" + callee.name + "'");
      }
    }
    const Value fn = eval(callee);
    if (fn.kind != Value::Kind::Function) {
      const std::string what = callee.kind == Expr::Kind::Name ? "'" + callee.name + "'" : "expression";
      fail(e.loc, what + " is " + (fn.is_undefined() ? "undefined" : std::string("a ") + kind_name(fn.kind)) +
                      ", not a function");
    }
    a = eval_args(e, 1);
    try {
      return (*fn.fn)(a);
    } catch (const EvalError& err) {
      fail(e.loc, err.msg);
    }
  }

  Value eval_binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value l = eval(*e.args[0]);
      return l.truthy() ? eval(*e.args[1]) : l;
    }
    if (op == "or") {
      Value l = eval(*e.args[0]);
      return l.truthy() ? l : eval(*e.args[1]);
    }
    const Value l = eval(*e.args[0]);
    const Value r = eval(*e.args[1]);
    using K = Value::Kind;
    if (op == "==") return Value::boolean(equals(l, r));
    if (op == "!=") return Value::boolean(!equals(l, r));
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      auto c = compare(l, r);
      if (!c) fail(e.loc, "cannot compare " + std::string(kind_name(l.kind)) + " and " + kind_name(r.kind));
      return Value::boolean(op == "<" ? *c < 0 : op == "<=" ? *c <= 0 : op == ">" ? *c > 0 : *c >= 0);
    }
    if (op == "in" || op == "not in") {
      bool found = false;
      if (r.is_string()) {
        if (!l.is_string()) fail(e.loc, "'in <string>' needs a string on the left");
        found = r.s.find(l.s) != std::string::npos;
      } else if (r.is_array()) {
        for (const auto& x : *r.arr) found = found || equals(x, l);
      } else if (r.is_object()) {
        found = l.is_string() && r.member(l.s) != nullptr;
      } else if (!r.is_undefined() && !r.is_none()) {
        fail(e.loc, std::string("'in' needs a string, list or dict on the right, not ") + kind_name(r.kind));
      }
      return Value::boolean(found == (op == "in"));
    }
    if (op == "~") return Value::string(to_str(l) + to_str(r));
    const bool nums = (l.is_number() || l.kind == K::Bool) && (r.is_number() || r.kind == K::Bool);
    const bool ints = nums && l.kind != K::Float && r.kind != K::Float;
    auto li = [&] { return l.kind == K::Bool ? int64_t(l.b) : l.i; };
    auto ri = [&] { return r.kind == K::Bool ? int64_t(r.b) : r.i; };
    int64_t res = 0;
    if (op == "+") {
      // Python integers do not overflow; past int64 we continue in floating point.
      if (ints) return __builtin_add_overflow(li(), ri(), &res) ? Value::number(double(li()) + double(ri())) : Value::integer(res);
      if (nums) return Value::number(l.as_double() + r.as_double());
      if (l.is_string() && r.is_string()) return Value::string(l.s + r.s);
      if (l.is_array() && r.is_array()) {
        Array a = *l.arr;
        a.insert(a.end(), r.arr->begin(), r.arr->end());
        return Value::array(std::move(a));
      }
    } else if (op == "-") {
      if (ints) return __builtin_sub_overflow(li(), ri(), &res) ? Value::number(double(li()) - double(ri())) : Value::integer(res);
      if (nums) return Value::number(l.as_double() - r.as_double());
    } else if (op == "*") {
      if (ints) return __builtin_mul_overflow(li(), ri(), &res) ? Value::number(double(li()) * double(ri())) : Value::integer(res);
      if (nums) return Value::number(l.as_double() * r.as_double());
      const Value* s = l.is_string() ? &l : r.is_string() ? &r : nullptr;
      const Value* k = l.kind == K::Int ? &l : r.kind == K::Int ? &r : nullptr;
      if (s && k) {
        if (k->i > 0 && !s->s.empty() && static_cast<uint64_t>(k->i) > kMaxOutput / s->s.size())
          fail(e.loc, "string repetition too large");
        std::string out;
        for (int64_t i = 0; i < k->i; ++i) out += s->s;
        return Value::string(std::move(out));
      }
    } else if (op == "/") {
      if (nums) {
        if (r.as_double() == 0) fail(e.loc, "division by zero");
        return Value::number(l.as_double() / r.as_double());
      }
    } else if (op == "//" || op == "%") {
      if (nums && r.as_double() == 0) fail(e.loc, "division by zero");
      if (ints && li() == INT64_MIN && ri() == -1) return op == "//" ? Value::number(9.223372036854775808e18) : Value::integer(0);
      if (ints) return Value::integer(op == "//" ? floor_div(li(), ri()) : li() - floor_div(li(), ri()) * ri());
      if (nums) {
        const double q = std::floor(l.as_double() / r.as_double());
        return Value::number(op == "//" ? q : l.as_double() - q * r.as_double());
      }
    } else if (op == "**") {
      if (ints && ri() >= 0) {
        const int64_t b = li(), n = ri();
        if (b == 0 || b == 1) return Value::integer(n == 0 ? 1 : b);
        if (b == -1) return Value::integer(n % 2 ? -1 : 1);
        int64_t x = 1;
        bool overflow = false;
        for (int64_t i = 0; i < n && !overflow; ++i) overflow = __builtin_mul_overflow(x, b, &x);  // |b| >= 2: < 64 steps
        if (!overflow) return Value::integer(x);
        return Value::number(std::pow(double(li()), double(ri())));
      }
      if (nums) return Value::number(std::pow(l.as_double(), r.as_double()));
    }
    fail(e.loc, "unsupported operand types for " + op + ": " + kind_name(l.kind) + " and " + kind_name(r.kind));
  }

  std::string& out_;
  std::vector<std::unordered_map<std::string, Value>> frames_;
  static constexpr int kMaxCallDepth = 64;
  int call_depth_ = 0;
};

}  // namespace

std::string render(const Template& tpl, const Object& globals) {
  std::string out;
  Interpreter(globals, out).exec(tpl.body);
  return out;
}

}  // namespace rocforge::jinja
