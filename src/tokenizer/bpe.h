// bpe.h - byte-level BPE (GPT-2 style): bytes -> printable code points -> merges by rank.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/token_map.h"

namespace rocforge::tok {

class BpeModel {
 public:
  // merges: "left right" strings in rank order (rank = index). Merges naming unknown tokens are
  // skipped. Throws rocforge::Error on a malformed merge entry.
  BpeModel(const std::vector<std::string>& merges, const TokenMap& map, bool ignore_merges, int32_t unk_id);

  // Appends the ids of one pre-tokenized word (raw bytes, not yet byte-encoded).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  size_t n_merges() const { return merges_.size(); }

 private:
  MergeMap merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of the token for each single byte (-1 if none)
  const TokenMap& map_;
  bool ignore_merges_;
  int32_t unk_id_;
};

}  // namespace rocforge::tok
