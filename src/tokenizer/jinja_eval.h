// jinja_eval.h - renders a parsed chat template.
#pragma once

#include <string>

#include "tokenizer/jinja_ast.h"

namespace rocforge::jinja {

// Thrown by builtins (filters, tests, methods, globals) without a location; the interpreter
// turns it into rocforge::Error carrying the template line:col of the failing expression.
struct EvalError {
  std::string msg;
};

// Renders `tpl` with `globals` as the outermost scope (messages, bos_token, ...) plus the
// built-in functions range, namespace, raise_exception and strftime_now.
std::string render(const Template& tpl, const Object& globals);

// Builtins (jinja_builtins.cpp).
Value apply_filter(const std::string& name, const Value& in, const CallArgs& args);
bool apply_test(const std::string& name, const Value& v, const CallArgs& args);
// Python-style methods: "abc".upper(), d.items(), list.append(x), ... nullopt if `name` is not
// a method of v's type.
std::optional<Value> call_method(Value& v, const std::string& name, const CallArgs& args);
Value make_global(const std::string& name);  // Undefined if not a builtin global
bool iterate(const Value& v, std::vector<Value>& out);  // false if v is not iterable

}  // namespace rocforge::jinja
