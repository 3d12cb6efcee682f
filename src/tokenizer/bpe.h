// bpe.h - byte-level BPE (GPT-2 style): bytes -> printable code points -> merges by rank.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }

  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of the token for each single byte (-1 if none)
  const TokenMap& map_;
  bool ignore_merges_;
  int32_t unk_id_;
};

}  // namespace rocforge::tok
