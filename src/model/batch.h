// batch.h - one forward step: tokens of several sequences at different positions (continuous
// batching), each writing its K/V into a slot of the paged KV cache.
//
// The KV cache is a pool of blocks of `block_size` positions. A sequence owns a block table; the
// K/V of its position p lives in slot  table[p / block_size] * block_size + p % block_size.
// A token at position p attends to positions 0..p of its sequence: earlier ones are already in the
// cache, and the batch's own tokens are written before attention runs, layer by layer.
#pragma once

#include <cstdint>
#include <vector>

#include "rocforge/kv_type.h"

namespace rocforge {

struct Batch {
  std::vector<int32_t> token;   // [T]
  std::vector<int32_t> pos;     // [T] position within its sequence
  std::vector<int32_t> seq;     // [T] index into block_tables
  std::vector<uint8_t> logits;  // [T] 1 = produce next-token logits for this token
  std::vector<std::vector<int32_t>> block_tables;  // per sequence of this batch

  int32_t size() const { return static_cast<int32_t>(token.size()); }
  int32_t n_logits() const {
    int32_t n = 0;
    for (auto l : logits) n += l;
    return n;
  }
  void add(int32_t tok, int32_t p, int32_t s, bool want_logits) {
    token.push_back(tok);
    pos.push_back(p);
    seq.push_back(s);
    logits.push_back(want_logits ? 1 : 0);
  }
  void clear() {
    token.clear(); pos.clear(); seq.clear(); logits.clear(); block_tables.clear();
  }
};

struct KvConfig {
  int32_t n_blocks = 0;
  int32_t block_size = 16;
  KvType type = KvType::F16;  // element type of the cached K/V rows

  int64_t n_slots() const { return static_cast<int64_t>(n_blocks) * block_size; }
  // Bytes of K and V together for `layers` layers of kv_dim values per position, over every slot.
  uint64_t bytes(int layers, int64_t kv_dim) const {
    return 2ull * static_cast<uint64_t>(layers) * static_cast<uint64_t>(n_slots()) * kv_row_bytes(type, kv_dim);
  }
};

inline int64_t kv_slot(const std::vector<int32_t>& table, int32_t pos, int32_t block_size) {
  return static_cast<int64_t>(table[pos / block_size]) * block_size + pos % block_size;
}

}  // namespace rocforge
