// jinja_lexer.cpp - template source -> tokens, with Jinja's whitespace rules.
#include <cctype>
#include <cstring>

#include "rocforge/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/utf8.h"

namespace rocforge::jinja {
namespace {

class Lexer {
 public:
  explicit Lexer(const std::string& src) : src_(src) {
    // Line starts, for offset -> line:col.
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i)
      if (src[i] == '\n') line_starts_.push_back(i + 1);
  }

  Loc loc_of(size_t off) const {
    size_t lo = 0, hi = line_starts_.size();
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      (line_starts_[mid] <= off ? lo : hi) = mid;
    }
    return {static_cast<int>(lo + 1), static_cast<int>(off - line_starts_[lo] + 1)};
  }

  [[noreturn]] void fail(size_t off, const std::string& msg) const {
    const Loc l = loc_of(off);
    throw Error("chat template: line " + std::to_string(l.line) + " col " + std::to_string(l.col) + ": " + msg);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    // How the previous tag wants the following text trimmed on the left.
    enum class LeftTrim { None, All, Newline } left = LeftTrim::None;
    while (pos <= src_.size()) {
      const size_t open = find_tag(pos);
      const size_t text_end = open == std::string::npos ? src_.size() : open;
      size_t s = pos, e = text_end;
      if (left == LeftTrim::All) {
        while (s < e && std::isspace(static_cast<unsigned char>(src_[s]))) ++s;
      } else if (left == LeftTrim::Newline) {
        if (s < e && src_[s] == '\n') ++s;
        else if (s + 1 < e && src_[s] == '\r' && src_[s + 1] == '\n') s += 2;
      }
      if (open != std::string::npos) {
        const char kind = src_[open + 1];  // '{', '%' or '#'
        const char mod = open + 2 < src_.size() ? src_[open + 2] : 0;
        if (mod == '-') {
          while (e > s && std::isspace(static_cast<unsigned char>(src_[e - 1]))) --e;
        } else if (kind != '{' && mod != '+') {
          // lstrip_blocks: spaces/tabs between a line start and a block tag are dropped.
          size_t k = e;
          while (k > pos && (src_[k - 1] == ' ' || src_[k - 1] == '\t')) --k;
          if (k == 0 || src_[k - 1] == '\n') e = std::max(s, k);
        }
      }
      if (e > s) out_.push_back({Token::Type::Text, src_.substr(s, e - s), loc_of(s)});
      if (open == std::string::npos) break;
      pos = lex_tag(open, left);
    }
    out_.push_back({Token::Type::End, "", loc_of(src_.size())});
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  template <typename LeftTrimT>
  size_t lex_tag(size_t open, LeftTrimT& left) {
    const char kind = src_[open + 1];
    size_t p = open + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    if (kind == '#') {
      const size_t close = src_.find("#}", p);
      if (close == std::string::npos) fail(open, "unterminated comment");
      const bool strip = close > p && src_[close - 1] == '-';
      left = strip ? LeftTrimT::All : LeftTrimT::Newline;
      return close + 2;
    }
    const char close_ch = kind == '{' ? '}' : '%';
    out_.push_back({kind == '{' ? Token::Type::VarBegin : Token::Type::BlockBegin, "", loc_of(open)});
    for (;;) {
      while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
      if (p >= src_.size()) fail(open, std::string("unterminated ") + (kind == '{' ? "'{{'" : "'{%'"));
      // End of tag, possibly with '-' / '+' whitespace control.
      if ((src_[p] == '-' || src_[p] == '+') && p + 2 < src_.size() + 0 && src_[p + 1] == close_ch && src_[p + 2] == '}') {
        out_.push_back({kind == '{' ? Token::Type::VarEnd : Token::Type::BlockEnd, "", loc_of(p)});
        left = src_[p] == '-' ? LeftTrimT::All : LeftTrimT::None;
        return p + 3;
      }
      if (src_[p] == close_ch && p + 1 < src_.size() && src_[p + 1] == '}') {
        out_.push_back({kind == '{' ? Token::Type::VarEnd : Token::Type::BlockEnd, "", loc_of(p)});
        left = kind == '{' ? LeftTrimT::None : LeftTrimT::Newline;  // trim_blocks
        return p + 2;
      }
      p = lex_one(p);
    }
  }

  size_t lex_one(size_t p) {
    const char c = src_[p];
    const Loc l = loc_of(p);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = p;
      while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      out_.push_back({Token::Type::Name, src_.substr(p, e - p), l});
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t e = p;
      bool is_float = false;
      while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
        is_float = true;
        ++e;
        while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t k = e + 1;
        if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
        if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
          is_float = true;
          e = k;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
      }
      std::string num;
      for (size_t i = p; i < e; ++i)
        if (src_[i] != '_') num += src_[i];
      out_.push_back({is_float ? Token::Type::Float : Token::Type::Int, num, l});
      return e;
    }
    if (c == '\'' || c == '"') return lex_string(p);
    static const char* kOps[] = {"==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">",
                                 "(",  ")",  "[",  "]",  "{",  "}",  ",", ".", ":", "|", "="};
    for (const char* op : kOps) {
      const size_t n = std::strlen(op);
      if (src_.compare(p, n, op) == 0) {
        out_.push_back({Token::Type::Op, op, l});
        return p + n;
      }
    }
    fail(p, std::string("unexpected character '") + c + "'");
  }

  size_t lex_string(size_t p) {
    const char q = src_[p];
    std::string s;
    size_t i = p + 1;
    for (;; ++i) {
      if (i >= src_.size()) fail(p, "unterminated string literal");
      const char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (++i >= src_.size()) fail(p, "unterminated string literal");
      switch (src_[i]) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case '0': s += '\0'; break;
        case '\\': s += '\\'; break;
        case '\'': s += '\''; break;
        case '"': s += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = src_[i] == 'x' ? 2 : src_[i] == 'u' ? 4 : 8;
          if (i + n >= src_.size()) fail(i, "truncated escape in string literal");
          uint32_t cp = 0;
          for (size_t k = 1; k <= n; ++k) {
            const char h = src_[i + k];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail(i, "bad hex escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF) fail(i, "escape out of Unicode range");
          tok::append_utf8(s, cp);
          i += n;
          break;
        }
        default:  // Python keeps unknown escapes verbatim
          s += '\\';
          s += src_[i];
      }
    }
    out_.push_back({Token::Type::String, std::move(s), loc_of(p)});
    return i + 1;
  }

  const std::string& src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex(const std::string& src) { return Lexer(src).run(); }

}  // namespace rocforge::jinja
