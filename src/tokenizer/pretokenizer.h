// pretokenizer.h - splits text into words before byte-level BPE (tokenizer.ggml.pre).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rocforge::tok {

// One compiled regex (PCRE2, UTF + UCP, JIT when available).
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws rocforge::Error on a bad pattern
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Appends to `out` the pieces of `text`: every match, and every gap between matches, in order.
  // `text` must be valid UTF-8 (the caller splits invalid bytes off first).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The regex sequence of one `pre` value. Each regex splits every piece the previous one produced.
class PreTokenizer {
 public:
  // Throws rocforge::Error for an unknown name, listing the supported ones.
  static std::unique_ptr<PreTokenizer> create(const std::string& pre);
  static std::vector<std::string> supported();

  // `text` must be valid UTF-8.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  // The Llama 3 tokenizer skips the merge loop when a whole word is already a token.
  bool ignore_merges() const { return ignore_merges_; }
  bool default_add_bos() const { return default_add_bos_; }

 private:
  std::vector<std::unique_ptr<Regex>> regexes_;
  bool ignore_merges_ = false;
  bool default_add_bos_ = false;
};

}  // namespace rocforge::tok
