// jinja_ast.h - lexer tokens and syntax tree of the chat-template (Jinja2 subset) interpreter.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace rocforge::jinja {

struct Loc {
  int line = 1, col = 1;
};

// ---- lexer --------------------------------------------------------------------------------
struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Type type;
  std::string text;  // Text content, name, decoded string literal, number spelling or operator
  Loc loc;
};

// Splits a template into tokens, applying whitespace control ("{%-", "-%}") and the
// trim_blocks / lstrip_blocks settings HF transformers renders chat templates with. Comments
// are dropped. Throws rocforge::Error with line:col on malformed input.
std::vector<Token> lex(const std::string& src);

// ---- expressions --------------------------------------------------------------------------
struct Expr {
  enum class Kind {
    Literal, Name, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, Cond, List, Dict, Tuple
  };
  Kind kind;
  Loc loc;
  Value value;                             // Literal
  std::string name;                        // Name, Attr, Filter, Test; Unary/Binary operator
  std::vector<std::unique_ptr<Expr>> args; // operands / call arguments / elements
  std::vector<std::string> kw_names;       // Call/Filter/Test: the last kw_names.size() args are keyword args
  bool negated = false;                    // Test: "is not"
  // Attr/Index/Slice/Call/Filter/Test: args[0] is the object; Slice: args[1..3] may be null.
  // Dict: args alternate key, value. Cond: args = {then, cond, else (may be null)}.
  Expr(Kind k, Loc l) : kind(k), loc(l) {}
};
using ExprPtr = std::unique_ptr<Expr>;

// ---- statements ---------------------------------------------------------------------------
struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue };
  Kind kind;
  Loc loc;
  std::string text;                  // Text
  ExprPtr expr;                      // Output / Set value / For iterable
  std::vector<ExprPtr> conds;        // If: one per branch (else branch has none)
  std::vector<Body> bodies;          // If: one per branch (+ else); For: {body, else}; Macro/SetBlock: {body}
  std::vector<std::string> targets;  // For / Set: assigned names; Macro: {name, params...}
  std::string attr;                  // Set: "ns.attr" form writes this attribute of targets[0]
  ExprPtr filter;                    // For: "for x in y if cond"
  std::vector<ExprPtr> defaults;     // Macro: default value per param (null if none)
  Stmt(Kind k, Loc l) : kind(k), loc(l) {}
};

struct Template {
  Body body;
};

// Parses a whole template. Throws rocforge::Error with line:col.
std::unique_ptr<Template> parse(const std::string& src);

}  // namespace rocforge::jinja
