// kv_pool.h - the paged KV cache's bookkeeping: fixed-size blocks, a free list, reference counts,
// and prefix caching (full blocks are keyed by the hash of every token up to their end, so a later
// sequence with the same prefix reuses them instead of recomputing).
//
// The pool owns no K/V data: executors store K/V per slot; the pool decides which blocks a
// sequence uses. Not thread-safe: the scheduler thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace rocforge {

class KvPool {
 public:
  KvPool(int32_t n_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t n_blocks() const { return n_blocks_; }
  // Blocks not referenced by any sequence (cached-but-unused blocks count as free).
  int32_t n_free() const { return static_cast<int32_t>(free_.size() + cached_lru_.size()); }
  int32_t n_used() const { return n_blocks_ - n_free(); }

  // A fresh block (evicting the least recently used cached block if no plain free block is left);
  // nullopt when every block is in use.
  std::optional<int32_t> allocate();
  // Drops one reference; at zero the block returns to the free list (or the cache LRU if hashed).
  void release(int32_t block);

  // Prefix caching. hash_chain(prev, tokens) gives the key of a full block whose tokens follow a
  // prefix with key `prev` (0 for the first block).
  static uint64_t hash_chain(uint64_t prev, const int32_t* tokens, int32_t n);
  // The cached block holding this key, with its reference count raised; nullopt if not cached.
  std::optional<int32_t> lookup(uint64_t key);
  // Registers a full block under `key` so later sequences can reuse it.
  void publish(int32_t block, uint64_t key);

  int32_t ref_count(int32_t block) const { return refs_[block]; }
  uint64_t prefix_hits() const { return hits_; }

 private:
  void drop_key(int32_t block);

  int32_t n_blocks_, block_size_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;                      // never-hashed free blocks (stack)
  std::list<int32_t> cached_lru_;                  // hashed blocks with refs == 0, oldest first
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::vector<uint8_t> in_lru_;
  std::unordered_map<uint64_t, int32_t> by_key_;
  std::vector<uint64_t> key_of_;
  std::vector<uint8_t> has_key_;
  uint64_t hits_ = 0;
};

// One sequence's view of the cache: its block table and how many positions are filled.
struct KvSequence {
  std::vector<int32_t> blocks;
  std::vector<int32_t> tokens;   // token at each filled position (for prefix keys)
  std::vector<uint64_t> keys;    // prefix key of each full block
  int32_t n_past = 0;            // positions whose K/V are in the cache

  // Ensures blocks exist for positions [0, n_past + n). false if the pool ran out (nothing changed).
  bool reserve(KvPool& pool, int32_t n);
  // Records that positions [n_past, n_past + toks.size()) are now computed, publishing full blocks.
  void commit(KvPool& pool, const int32_t* toks, int32_t n);
  // Reuses cached blocks for the longest full-block prefix of `prompt` (leaving at least one token
  // to compute, so the last prompt token still yields logits). Returns positions reused.
  int32_t adopt_prefix(KvPool& pool, const std::vector<int32_t>& prompt);
  // Forgets positions >= n, rounded down to a block boundary (a full block may be shared through
  // the prefix cache, so it is never rewritten in place). Returns the positions kept.
  int32_t truncate(KvPool& pool, int32_t n);
  // Returns every block to the pool.
  void release(KvPool& pool);
};

}  // namespace rocforge
