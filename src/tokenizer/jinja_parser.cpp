// jinja_parser.cpp - tokens -> syntax tree (recursive descent, Jinja2's operator precedence).
#include <cstdlib>

#include "rocforge/error.h"
#include "tokenizer/jinja_ast.h"

namespace rocforge::jinja {
namespace {

using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  std::unique_ptr<Template> run() {
    auto tpl = std::make_unique<Template>();
    std::string end;
    tpl->body = parse_body({}, &end);
    return tpl;
  }

 private:
  // ---- token helpers
  const Token& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(p_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == T::Op && peek(k).text == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).type == T::Name && peek(k).text == n; }
  [[noreturn]] void fail(const Loc& l, const std::string& msg) const {
    throw Error("chat template: line " + std::to_string(l.line) + " col " + std::to_string(l.col) + ": " + msg);
  }
  std::string describe(const Token& tk) const {
    switch (tk.type) {
      case T::End: return "end of template";
      case T::VarEnd: return "'}}'";
      case T::BlockEnd: return "'%}'";
      case T::Text: return "text";
      default: return "'" + tk.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(peek().loc, std::string("expected '") + op + "', found " + describe(peek()));
    ++p_;
  }
  std::string expect_name() {
    if (peek().type != T::Name) fail(peek().loc, "expected a name, found " + describe(peek()));
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != T::BlockEnd) fail(peek().loc, "expected '%}', found " + describe(peek()));
    ++p_;
  }

  // ---- statements
  // Parses until a block tag whose keyword is in `stops` (left unconsumed after "{%" + keyword is
  // read into *stop) or the end of the template (only allowed when stops is empty).
  Body parse_body(std::initializer_list<const char*> stops, std::string* stop) {
    Body body;
    for (;;) {
      const Token& tk = peek();
      if (tk.type == T::End) {
        if (stops.size()) {
          std::string want;
          for (const char* s : stops) want += std::string(want.empty() ? "" : " or ") + "'" + s + "'";
          fail(tk.loc, "unexpected end of template, expected " + want);
        }
        return body;
      }
      if (tk.type == T::Text) {
        auto s = std::make_unique<Stmt>(Stmt::Kind::Text, tk.loc);
        s->text = tk.text;
        body.push_back(std::move(s));
        ++p_;
      } else if (tk.type == T::VarBegin) {
        ++p_;
        auto s = std::make_unique<Stmt>(Stmt::Kind::Output, tk.loc);
        s->expr = parse_expr();
        if (peek().type != T::VarEnd) fail(peek().loc, "expected '}}', found " + describe(peek()));
        ++p_;
        body.push_back(std::move(s));
      } else if (tk.type == T::BlockBegin) {
        const Token& kw = peek(1);
        if (kw.type != T::Name) fail(kw.loc, "expected a statement keyword, found " + describe(kw));
        for (const char* s : stops)
          if (kw.text == s) {
            p_ += 2;
            *stop = kw.text;
            return body;
          }
        p_ += 2;
        body.push_back(parse_statement(kw));
      } else {
        fail(tk.loc, "unexpected " + describe(tk));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement(const Token& kw) {
    const Depth guard(*this, kw.loc);
    const std::string& k = kw.text;
    if (k == "if") return parse_if(kw.loc);
    if (k == "for") return parse_for(kw.loc);
    if (k == "set") return parse_set(kw.loc);
    if (k == "macro") return parse_macro(kw.loc);
    if (k == "break" || k == "continue") {
      expect_block_end();
      if (loop_depth_ == 0) fail(kw.loc, "'" + k + "' outside of a loop");
      return std::make_unique<Stmt>(k == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, kw.loc);
    }
    if (k == "generation") {  // HF's assistant-mask marker: renders its body unchanged
      expect_block_end();
      std::string stop;
      auto s = std::make_unique<Stmt>(Stmt::Kind::If, kw.loc);
      auto cond = std::make_unique<Expr>(Expr::Kind::Literal, kw.loc);
      cond->value = Value::boolean(true);
      s->conds.push_back(std::move(cond));
      s->bodies.push_back(parse_body({"endgeneration"}, &stop));
      expect_block_end();
      return s;
    }
    fail(kw.loc, "unknown or unsupported statement '" + k + "'");
  }

  std::unique_ptr<Stmt> parse_if(Loc loc) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::If, loc);
    s->conds.push_back(parse_expr());
    expect_block_end();
    for (;;) {
      std::string stop;
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, &stop));
      if (stop == "elif") {
        s->conds.push_back(parse_expr());
        expect_block_end();
      } else if (stop == "else") {
        expect_block_end();
        s->bodies.push_back(parse_body({"endif"}, &stop));
        expect_block_end();
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::unique_ptr<Stmt> parse_for(Loc loc) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::For, loc);
    s->targets.push_back(expect_name());
    while (is_op(",")) {
      ++p_;
      s->targets.push_back(expect_name());
    }
    if (!is_name("in")) fail(peek().loc, "expected 'in' in for loop, found " + describe(peek()));
    ++p_;
    s->expr = parse_or_test();  // not a full expression: "if" here starts the loop filter
    if (is_name("if")) {
      ++p_;
      s->filter = parse_or_test();
    }
    if (is_name("recursive")) fail(peek().loc, "recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    std::string stop;
    s->bodies.push_back(parse_body({"else", "endfor"}, &stop));
    --loop_depth_;
    expect_block_end();
    if (stop == "else") {
      s->bodies.push_back(parse_body({"endfor"}, &stop));
      expect_block_end();
    }
    return s;
  }

  std::unique_ptr<Stmt> parse_set(Loc loc) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::Set, loc);
    s->targets.push_back(expect_name());
    if (is_op(".")) {
      ++p_;
      s->attr = expect_name();
    } else {
      while (is_op(",")) {
        ++p_;
        s->targets.push_back(expect_name());
      }
    }
    if (peek().type == T::BlockEnd && s->targets.size() == 1 && s->attr.empty()) {
      // {% set x %}...{% endset %}
      ++p_;
      s->kind = Stmt::Kind::SetBlock;
      std::string stop;
      s->bodies.push_back(parse_body({"endset"}, &stop));
      expect_block_end();
      return s;
    }
    expect_op("=");
    s->expr = parse_expr();
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_macro(Loc loc) {
    auto s = std::make_unique<Stmt>(Stmt::Kind::Macro, loc);
    s->targets.push_back(expect_name());
    expect_op("(");
    while (!is_op(")")) {
      s->targets.push_back(expect_name());
      if (is_op("=")) {
        ++p_;
        s->defaults.push_back(parse_expr());
      } else {
        s->defaults.push_back(nullptr);
      }
      if (!is_op(")")) expect_op(",");
    }
    ++p_;
    expect_block_end();
    std::string stop;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(parse_body({"endmacro"}, &stop));
    loop_depth_ = saved;
    expect_block_end();
    return s;
  }

  // ---- expressions (lowest to highest precedence)
  ExprPtr make(Expr::Kind k, Loc l) { return std::make_unique<Expr>(k, l); }
  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, Loc l) {
    auto e = make(Expr::Kind::Binary, l);
    e->name = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // A full expression; a bare "a, b" becomes a tuple only inside parentheses.
  ExprPtr parse_expr() {
    const Loc l = peek().loc;
    ExprPtr e = parse_or_test();
    while (is_name("if")) {
      ++p_;
      auto c = make(Expr::Kind::Cond, l);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or_test());
      if (is_name("else")) {
        ++p_;
        c->args.push_back(parse_expr());
      } else {
        c->args.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or_test() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Loc l = next().loc;
      e = binary("or", std::move(e), parse_and(), l);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Loc l = next().loc;
      e = binary("and", std::move(e), parse_not(), l);
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      const Loc l = next().loc;
      auto e = make(Expr::Kind::Unary, l);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    for (;;) {
      const Loc l = peek().loc;
      std::string op;
      if (peek().type == T::Op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                   peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        ++p_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        op = "not in";
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1(), l);
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& tk = next();
      e = binary(tk.text, std::move(e), parse_concat(), tk.loc);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Loc l = next().loc;
      e = binary("~", std::move(e), parse_math2(), l);
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& tk = next();
      e = binary(tk.text, std::move(e), parse_pow(), tk.loc);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (is_op("**")) {
      const Loc l = next().loc;
      e = binary("**", std::move(e), parse_unary(), l);
    }
    return e;
  }
  // Nesting guard: deeply nested input must give an error, not a stack overflow.
  struct Depth {
    Parser& p;
    explicit Depth(Parser& parser, const Loc& l) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail(l, "expression or block nesting is too deep");
    }
    ~Depth() { --p.depth_; }
  };
  static constexpr int kMaxDepth = 200;

  ExprPtr parse_unary() {
    const Depth guard(*this, peek().loc);
    if (is_op("-") || is_op("+")) {
      const Token& tk = next();
      auto e = make(Expr::Kind::Unary, tk.loc);
      e->name = tk.text;
      e->args.push_back(parse_unary());
      return e;
    }
    ExprPtr e = parse_postfix(parse_primary());
    return parse_filters_and_tests(std::move(e));
  }

  ExprPtr parse_primary() {
    const Token& tk = next();
    switch (tk.type) {
      case T::String: {
        auto e = make(Expr::Kind::Literal, tk.loc);
        std::string s = tk.text;
        while (peek().type == T::String) s += next().text;  // adjacent literals concatenate
        e->value = Value::string(std::move(s));
        return e;
      }
      case T::Int: {
        auto e = make(Expr::Kind::Literal, tk.loc);
        try {
          e->value = Value::integer(std::stoll(tk.text));
        } catch (...) {
          fail(tk.loc, "integer literal out of range");
        }
        return e;
      }
      case T::Float: {
        auto e = make(Expr::Kind::Literal, tk.loc);
        e->value = Value::number(std::strtod(tk.text.c_str(), nullptr));  // huge literals become inf, as in Python
        return e;
      }
      case T::Name: {
        auto e = make(Expr::Kind::Literal, tk.loc);
        if (tk.text == "true" || tk.text == "True") e->value = Value::boolean(true);
        else if (tk.text == "false" || tk.text == "False") e->value = Value::boolean(false);
        else if (tk.text == "none" || tk.text == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::Name;
          e->name = tk.text;
        }
        return e;
      }
      case T::Op:
        if (tk.text == "(") {
          if (is_op(")")) {
            ++p_;
            return make(Expr::Kind::Tuple, tk.loc);
          }
          ExprPtr first = parse_expr();
          if (!is_op(",")) {
            expect_op(")");
            return first;
          }
          auto t = make(Expr::Kind::Tuple, tk.loc);
          t->args.push_back(std::move(first));
          while (is_op(",")) {
            ++p_;
            if (is_op(")")) break;
            t->args.push_back(parse_expr());
          }
          expect_op(")");
          return t;
        }
        if (tk.text == "[") {
          auto e = make(Expr::Kind::List, tk.loc);
          while (!is_op("]")) {
            e->args.push_back(parse_expr());
            if (!is_op("]")) expect_op(",");
          }
          ++p_;
          return e;
        }
        if (tk.text == "{") {
          auto e = make(Expr::Kind::Dict, tk.loc);
          while (!is_op("}")) {
            e->args.push_back(parse_expr());
            expect_op(":");
            e->args.push_back(parse_expr());
            if (!is_op("}")) expect_op(",");
          }
          ++p_;
          return e;
        }
        break;
      default: break;
    }
    fail(tk.loc, "unexpected " + describe(tk) + " in expression");
  }

  // Call arguments after "(": positional, then name=value.
  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == T::Name && is_op("=", 1)) {
        e.kw_names.push_back(next().text);
        ++p_;
        e.args.push_back(parse_expr());
      } else {
        if (!e.kw_names.empty()) fail(peek().loc, "positional argument after keyword argument");
        e.args.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
    ++p_;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        const Loc l = next().loc;
        auto a = make(Expr::Kind::Attr, l);
        if (peek().type == T::Int) a->name = next().text;  // foo.0 (Jinja allows it)
        else a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        const Loc l = next().loc;
        ExprPtr idx[3];
        bool slice = false;
        for (int part = 0; part < 3; ++part) {
          if (!is_op(":") && !is_op("]")) idx[part] = parse_expr();
          if (is_op(":") && part < 2) {
            ++p_;
            slice = true;
          } else {
            break;
          }
        }
        expect_op("]");
        auto a = make(slice ? Expr::Kind::Slice : Expr::Kind::Index, l);
        a->args.push_back(std::move(e));
        if (slice) {
          for (auto& x : idx) a->args.push_back(std::move(x));
        } else {
          if (!idx[0]) fail(l, "empty subscript");
          a->args.push_back(std::move(idx[0]));
        }
        e = std::move(a);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call, e->loc);  // errors point at the callee
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters_and_tests(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        ++p_;
        const Loc l = peek().loc;
        auto f = make(Expr::Kind::Filter, l);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        const Loc l = next().loc;
        auto t = make(Expr::Kind::Test, l);
        if (is_name("not")) {
          ++p_;
          t->negated = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if (peek().type == T::String || peek().type == T::Int || peek().type == T::Float ||
                   (peek().type == T::Name && !is_name("and") && !is_name("or") && !is_name("if") &&
                    !is_name("else") && !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->args.push_back(parse_primary());  // "is divisibleby 3", "is sameas none"
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Template> parse(const std::string& src) { return Parser(lex(src)).run(); }

}  // namespace rocforge::jinja
