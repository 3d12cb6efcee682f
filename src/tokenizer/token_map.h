// token_map.h - flat open-addressing hash tables for the vocabulary (string -> id) and the BPE
// merge table ((left id, right id) -> rank, result). Node-based std::unordered_map spent most of
// a Llama 3 vocabulary's load time on allocations and cache misses.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rocforge::tok {

// Vocabulary string -> id. Keeps a pointer to the token strings (which must outlive it and stay
// unchanged); the first occurrence of a duplicated string wins.
class TokenMap {
 public:
  void build(const std::vector<std::string>& tokens) {
    tokens_ = &tokens;
    size_t cap = 16;
    while (cap < tokens.size() * 2) cap <<= 1;
    mask_ = cap - 1;
    slots_.assign(cap, -1);
    for (size_t i = 0; i < tokens.size(); ++i) {
      size_t h = hash(tokens[i]) & mask_;
      for (;; h = (h + 1) & mask_) {
        if (slots_[h] < 0) {
          slots_[h] = static_cast<int32_t>(i);
          break;
        }
        if (tokens[slots_[h]] == tokens[i]) break;  // duplicate: keep the first id
      }
    }
  }
  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    for (size_t h = hash(s) & mask_;; h = (h + 1) & mask_) {
      const int32_t id = slots_[h];
      if (id < 0) return -1;
      if ((*tokens_)[id] == s) return id;
    }
  }

 private:
  static size_t hash(std::string_view s) { return std::hash<std::string_view>{}(s); }
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<int32_t> slots_;
  size_t mask_ = 0;
};

inline int32_t lookup(const TokenMap& m, std::string_view s) { return m.find(s); }

// (left, right) token pair -> merge rank and merged token.
class MergeMap {
 public:
  struct Merge {
    int32_t rank, result;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    mask_ = cap - 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
  }
  // Keeps the first insertion of a pair (the lower rank).
  void insert(int32_t l, int32_t r, Merge m) {
    const uint64_t k = key(l, r);
    for (size_t h = hash(k) & mask_;; h = (h + 1) & mask_) {
      if (slots_[h].key == kEmpty) {
        slots_[h] = {k, m};
        ++size_;
        return;
      }
      if (slots_[h].key == k) return;
    }
  }
  const Merge* find(int32_t l, int32_t r) const {
    const uint64_t k = key(l, r);
    for (size_t h = hash(k) & mask_;; h = (h + 1) & mask_) {
      if (slots_[h].key == k) return &slots_[h].m;
      if (slots_[h].key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^31, so no real key has it
  struct Slot {
    uint64_t key;
    Merge m;
  };
  static uint64_t key(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  static size_t hash(uint64_t k) { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> 17); }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace rocforge::tok
