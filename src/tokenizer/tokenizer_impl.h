// tokenizer_impl.h - Tokenizer's private state, shared by the .cpp files of src/tokenizer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rocforge/tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/token_map.h"

namespace rocforge {

struct Tokenizer::Impl {
  VocabData v;
  tok::TokenMap map;
  bool is_spm = false;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::unique_ptr<tok::PreTokenizer> pre;
  std::unique_ptr<tok::BpeModel> bpe;
  std::unique_ptr<tok::SpmModel> spm;
  // Tokens matched literally in text, longest first: user-defined ones always, plus control and
  // unknown ones when special parsing is requested.
  std::vector<int32_t> literal_always, literal_special;
  std::vector<std::string> pieces;  // decoded bytes of each token
  std::vector<uint8_t> eog;         // 1 for end-of-generation tokens
  // Literal-token whitespace attributes (HF added_tokens lstrip/rstrip), which GGUF does not
  // store: kLstrip eats whitespace before the token in the text, kRstrip whitespace after it.
  static constexpr uint8_t kLstrip = 1, kRstrip = 2;
  std::vector<uint8_t> strip;

  void check_id(int32_t id) const;
  TokenType type(int32_t id) const {
    return v.types.empty() ? TokenType::Normal : static_cast<TokenType>(v.types[static_cast<size_t>(id)]);
  }
  void encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const;
};

}  // namespace rocforge
