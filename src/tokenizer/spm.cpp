#include "tokenizer/spm.h"

#include <cstdio>
#include <queue>

#include "tokenizer/utf8.h"

namespace rocforge::tok {
namespace {
constexpr std::string_view kMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space
}  // namespace

SpmModel::SpmModel(const std::vector<std::string>& tokens, const std::vector<float>& scores, const TokenMap& map,
                   int32_t unk_id)
    : scores_(scores), map_(map), unk_id_(unk_id) {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = lookup(map, name);
  }
  split_at_spaces_ = true;
  for (const auto& text : tokens) {
    for (size_t p = text.find(kMark, 1); p != std::string::npos; p = text.find(kMark, p + 1)) {
      if (p < 3 || text.compare(p - 3, 3, kMark) != 0) {
        split_at_spaces_ = false;
        break;
      }
    }
    if (!split_at_spaces_) break;
  }
}

void SpmModel::encode(std::string_view text, std::vector<int32_t>& out) const {
  if (!split_at_spaces_) return encode_segment(text, out);
  size_t start = 0;
  for (size_t p = text.find(kMark, 1); p != std::string_view::npos; p = text.find(kMark, p + 1)) {
    if (p >= 3 && text.compare(p - 3, 3, kMark) == 0) continue;  // inside a run of spaces
    encode_segment(text.substr(start, p - start), out);
    start = p;
  }
  encode_segment(text.substr(start), out);
}

void SpmModel::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  // Symbols are contiguous byte ranges of `text`; initially one per UTF-8 character.
  struct Sym {
    int32_t off, len, prev, next;
  };
  struct Cand {
    float score;
    int32_t left, len;  // len: combined length when queued (detects stale entries)
    // Highest score first; on ties the leftmost pair.
    bool operator<(const Cand& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  thread_local std::vector<Sym> syms;
  syms.clear();
  for (size_t pos = 0; pos < text.size();) {
    const auto n = static_cast<int32_t>(utf8_char_len(text, pos));
    const auto i = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<int32_t>(pos), n, i - 1, -1});
    if (i > 0) syms[i - 1].next = i;
    pos += n;
  }
  std::priority_queue<Cand> heap;
  auto try_pair = [&](int32_t l) {
    if (l < 0 || syms[l].next < 0) return;
    const Sym& a = syms[l];
    const Sym& b = syms[a.next];
    const int32_t id = lookup(map_, text.substr(a.off, a.len + b.len));
    if (id < 0) return;
    const float s = static_cast<size_t>(id) < scores_.size() ? scores_[id] : 0.0f;
    heap.push({s, l, a.len + b.len});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) try_pair(i);

  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& a = syms[c.left];
    if (a.len == 0 || a.next < 0 || a.len + syms[a.next].len != c.len) continue;  // stale
    Sym& b = syms[a.next];
    a.len += b.len;
    b.len = 0;  // dead
    a.next = b.next;
    if (a.next >= 0) syms[a.next].prev = c.left;
    try_pair(a.prev);
    try_pair(c.left);
  }

  for (int32_t i = 0; i >= 0 && !syms.empty(); i = syms[i].next) {
    const std::string_view piece = text.substr(syms[i].off, syms[i].len);
    const int32_t id = lookup(map_, piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char ch : piece) {
      const int32_t bid = byte_ids_[static_cast<uint8_t>(ch)];
      if (bid >= 0) {
        out.push_back(bid);
      } else if (unk_id_ >= 0) {
        out.push_back(unk_id_);
        break;  // one unk per character, as SentencePiece does
      }
    }
  }
}

}  // namespace rocforge::tok
