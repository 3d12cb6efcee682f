#include "tokenizer/bpe.h"

#include <queue>

#include "rocforge/error.h"
#include "tokenizer/utf8.h"

namespace rocforge::tok {

BpeModel::BpeModel(const std::vector<std::string>& merges, const TokenMap& map, bool ignore_merges, int32_t unk_id)
    : map_(map), ignore_merges_(ignore_merges), unk_id_(unk_id) {
  for (int b = 0; b < 256; ++b) byte_ids_[b] = lookup(map, byte_to_unicode(static_cast<uint8_t>(b)));
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    // Split at the first space after the first character: byte-level tokens never contain a
    // literal space (it is encoded as "Ġ"), but start the search at 1 so "  x" style entries work.
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size())
      throw Error("tokenizer: tokenizer.ggml.merges[" + std::to_string(i) + "] = '" + m + "' is not 'left right'");
    const std::string_view l(m.data(), sp), r(m.data() + sp + 1, m.size() - sp - 1);
    const int32_t lid = lookup(map, l), rid = lookup(map, r);
    if (lid < 0 || rid < 0) continue;
    joined.assign(l).append(r);
    const int32_t res = lookup(map, joined);
    if (res < 0) continue;
    // First occurrence wins: lower index = higher priority.
    merges_.insert(lid, rid, {static_cast<int32_t>(i), res});
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // Llama 3 ("ignore_merges"): a word that is itself a token is emitted as is, even if the
    // merge order would have split it differently.
    thread_local std::string enc;
    enc.clear();
    for (char c : word) enc += byte_to_unicode(static_cast<uint8_t>(c));
    const int32_t id = lookup(map_, enc);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, left, lid, rid;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  thread_local std::vector<Sym> syms;
  thread_local std::vector<Cand> heap_storage;
  syms.clear();
  const int32_t n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) syms.push_back({byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});

  heap_storage.clear();
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap(std::greater<Cand>{}, std::move(heap_storage));
  auto try_pair = [&](int32_t l) {
    if (l < 0) return;
    const int32_t r = syms[l].next;
    if (r < 0 || syms[l].id < 0 || syms[r].id < 0) return;
    if (const auto* m = merges_.find(syms[l].id, syms[r].id)) heap.push({m->rank, l, syms[l].id, syms[r].id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_pair(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& L = syms[c.left];
    // Stale entry: one side was merged away or changed since this pair was queued.
    if (L.id != c.lid || L.next < 0 || syms[L.next].id != c.rid) continue;
    const int32_t r = L.next;
    L.id = merges_.find(c.lid, c.rid)->result;
    L.next = syms[r].next;
    if (L.next >= 0) syms[L.next].prev = c.left;
    syms[r].id = -2;  // dead
    try_pair(L.prev);
    try_pair(c.left);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    const int32_t id = syms[i].id;
    if (id >= 0) {
      out.push_back(id);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);  // a byte with no token in this vocabulary
    }
  }
}

}  // namespace rocforge::tok
