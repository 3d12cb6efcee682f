#include "engine/kv_pool.h"

#include <algorithm>

namespace rocforge {

KvPool::KvPool(int32_t n_blocks, int32_t block_size)
    : n_blocks_(n_blocks), block_size_(block_size), refs_(n_blocks, 0), lru_pos_(n_blocks), in_lru_(n_blocks, 0),
      key_of_(n_blocks, 0), has_key_(n_blocks, 0) {
  free_.reserve(n_blocks);
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::optional<int32_t> KvPool::allocate() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!cached_lru_.empty()) {
    b = cached_lru_.front();
    cached_lru_.pop_front();
    in_lru_[b] = 0;
    drop_key(b);
  } else {
    return std::nullopt;
  }
  refs_[b] = 1;
  return b;
}

void KvPool::release(int32_t b) {
  if (b < 0 || b >= n_blocks_ || refs_[b] <= 0) return;
  if (--refs_[b] > 0) return;
  if (has_key_[b]) {
    cached_lru_.push_back(b);
    lru_pos_[b] = std::prev(cached_lru_.end());
    in_lru_[b] = 1;
  } else {
    free_.push_back(b);
  }
}

uint64_t KvPool::hash_chain(uint64_t prev, const int32_t* tokens, int32_t n) {
  // FNV-1a over the previous key and the block's tokens; 0 is reserved for "no prefix".
  uint64_t h = 1469598103934665603ull ^ prev;
  h *= 1099511628211ull;
  for (int32_t i = 0; i < n; ++i) {
    uint32_t t = static_cast<uint32_t>(tokens[i]);
    for (int k = 0; k < 4; ++k) {
      h ^= (t >> (8 * k)) & 0xffu;
      h *= 1099511628211ull;
    }
  }
  return h ? h : 1;
}

std::optional<int32_t> KvPool::lookup(uint64_t key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  const int32_t b = it->second;
  if (in_lru_[b]) {
    cached_lru_.erase(lru_pos_[b]);
    in_lru_[b] = 0;
  }
  ++refs_[b];
  ++hits_;
  return b;
}

void KvPool::publish(int32_t block, uint64_t key) {
  if (has_key_[block] || by_key_.count(key)) return;  // first writer wins; duplicates stay private
  by_key_[key] = block;
  key_of_[block] = key;
  has_key_[block] = 1;
}

void KvPool::drop_key(int32_t b) {
  if (!has_key_[b]) return;
  by_key_.erase(key_of_[b]);
  has_key_[b] = 0;
}

bool KvSequence::reserve(KvPool& pool, int32_t n) {
  const int32_t need = (n_past + n + pool.block_size() - 1) / pool.block_size();
  std::vector<int32_t> got;
  while (static_cast<int32_t>(blocks.size() + got.size()) < need) {
    auto b = pool.allocate();
    if (!b) {
      for (int32_t g : got) pool.release(g);
      return false;
    }
    got.push_back(*b);
  }
  blocks.insert(blocks.end(), got.begin(), got.end());
  return true;
}

void KvSequence::commit(KvPool& pool, const int32_t* toks, int32_t n) {
  const int32_t B = pool.block_size();
  tokens.insert(tokens.end(), toks, toks + n);
  n_past += n;
  while (static_cast<int32_t>(keys.size()) < n_past / B) {
    const int32_t k = static_cast<int32_t>(keys.size());
    const uint64_t key = KvPool::hash_chain(k ? keys.back() : 0, tokens.data() + k * B, B);
    keys.push_back(key);
    pool.publish(blocks[k], key);
  }
}

int32_t KvSequence::adopt_prefix(KvPool& pool, const std::vector<int32_t>& prompt) {
  if (n_past != 0 || !blocks.empty()) return 0;
  const int32_t B = pool.block_size();
  const int32_t max_blocks = (static_cast<int32_t>(prompt.size()) - 1) / B;
  uint64_t prev = 0;
  for (int32_t k = 0; k < max_blocks; ++k) {
    const uint64_t key = KvPool::hash_chain(prev, prompt.data() + k * B, B);
    auto b = pool.lookup(key);
    if (!b) break;
    blocks.push_back(*b);
    keys.push_back(key);
    tokens.insert(tokens.end(), prompt.begin() + k * B, prompt.begin() + (k + 1) * B);
    n_past += B;
    prev = key;
  }
  return n_past;
}

int32_t KvSequence::truncate(KvPool& pool, int32_t n) {
  const int32_t B = pool.block_size();
  const int32_t keep_blocks = std::max(0, std::min(n, n_past)) / B;
  for (size_t k = keep_blocks; k < blocks.size(); ++k) pool.release(blocks[k]);
  blocks.resize(keep_blocks);
  keys.resize(std::min<size_t>(keys.size(), keep_blocks));
  n_past = keep_blocks * B;
  tokens.resize(n_past);
  return n_past;
}

void KvSequence::release(KvPool& pool) {
  for (int32_t b : blocks) pool.release(b);
  blocks.clear();
  tokens.clear();
  keys.clear();
  n_past = 0;
}

}  // namespace rocforge
