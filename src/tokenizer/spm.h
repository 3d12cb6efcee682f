// spm.h - SentencePiece-style BPE: merge adjacent pieces by the score of the merged token.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/token_map.h"

namespace rocforge::tok {

class SpmModel {
 public:
  SpmModel(const std::vector<std::string>& tokens, const std::vector<float>& scores, const TokenMap& map,
           int32_t unk_id);

  // `text` is already escaped (spaces replaced by U+2581). Characters with no token fall back to
  // <0xXX> byte tokens, or to unk when the vocabulary has no byte tokens.
  void encode(std::string_view text, std::vector<int32_t>& out) const;

 private:
  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  // True when no token has a "▁" right after another character: then no merge can cross the
  // start of a "▁word", and the text can be split there without changing the result (linear
  // time on long inputs instead of one huge merge queue).
  bool split_at_spaces_ = false;
  const std::vector<float>& scores_;
  const TokenMap& map_;
  int32_t unk_id_;
  std::array<int32_t, 256> byte_ids_{};  // "<0x0A>"-style tokens, -1 if absent
};

}  // namespace rocforge::tok
