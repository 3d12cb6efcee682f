// tokenizer.cpp - Tokenizer construction, special-token partitioning, encode and decode.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "core/log.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace rocforge {
namespace {

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// "<0x0A>" -> 0x0A, or -1.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  unsigned v = 0;
  if (std::sscanf(t.c_str() + 3, "%2x", &v) != 1) return -1;
  return static_cast<int>(v);
}

// Texts of end-of-turn tokens used by common chat formats; EOT is guessed from these when the
// file names none, and all of them end generation.
constexpr const char* kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"};
constexpr const char* kEogTexts[] = {"<|eot_id|>",    "<|eom_id|>",    "<|im_end|>",      "<|end|>", "<end_of_turn>",
                                     "<|endoftext|>", "<|end_of_text|>", "<EOT>",          "</s>"};

bool contains_ci(std::string s, std::string_view needle) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s.find(needle) != std::string::npos;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_vocab(VocabData vocab) {
  auto im = std::make_unique<Impl>();
  // The models keep references into im->v, so it is filled first and never moved afterwards.
  im->v = std::move(vocab);
  VocabData& v = im->v;
  const size_t n = v.tokens.size();
  if (n == 0) throw Error("tokenizer: tokenizer.ggml.tokens is empty");
  if (n > 0x7FFFFFFF) throw Error("tokenizer: vocabulary too large");
  if (!v.scores.empty() && v.scores.size() != n)
    throw Error("tokenizer: tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries, tokens has " +
                std::to_string(n));
  if (!v.types.empty() && v.types.size() != n)
    throw Error("tokenizer: tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
                " entries, tokens has " + std::to_string(n));
  for (size_t i = 0; i < v.types.size(); ++i)
    if (v.types[i] < 0 || v.types[i] > 6)
      throw Error("tokenizer: tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(v.types[i]) +
                  " is not a token type (0..6)");
  auto check_special = [&](int32_t& id, const char* key) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      throw Error(std::string("tokenizer: tokenizer.ggml.") + key + " = " + std::to_string(id) +
                  " is out of range (vocabulary has " + std::to_string(n) + " tokens)");
  };
  check_special(v.bos_id, "bos_token_id");
  check_special(v.eos_id, "eos_token_id");
  check_special(v.eot_id, "eot_token_id");
  check_special(v.eom_id, "eom_token_id");
  check_special(v.unk_id, "unknown_token_id");
  check_special(v.pad_id, "padding_token_id");

  im->map.build(v.tokens);  // first occurrence of a duplicated string wins

  if (v.model == "llama") {
    im->is_spm = true;
    im->add_bos = v.add_bos.value_or(true);
    im->add_eos = v.add_eos.value_or(false);
    im->add_space_prefix = v.add_space_prefix.value_or(true);
    if (v.scores.empty()) v.scores.assign(n, 0.0f);
    im->spm = std::make_unique<tok::SpmModel>(v.tokens, v.scores, im->map, v.unk_id);
  } else if (v.model == "gpt2") {
    // Documented escape hatch for a `pre` value we do not know but whose regex the user knows to
    // be one of ours (e.g. a fine-tune re-labelled with a new name): never applied silently.
    if (const char* forced = std::getenv("ROCFORGE_PRE_TOKENIZER"); forced && *forced) {
      log::warn("tokenizer: ROCFORGE_PRE_TOKENIZER={} overrides tokenizer.ggml.pre='{}'", forced, v.pre);
      v.pre = forced;
    }
    if (v.pre.empty())
      throw Error("tokenizer: tokenizer.ggml.pre is missing for a gpt2 (byte-level BPE) tokenizer; supported values: " +
                  [] {
                    std::string s;
                    for (auto& p : tok::PreTokenizer::supported()) s += (s.empty() ? "" : ", ") + p;
                    return s;
                  }());
    im->pre = tok::PreTokenizer::create(v.pre);
    if (v.merges.empty()) throw Error("tokenizer: tokenizer.ggml.merges is missing for a gpt2 tokenizer");
    im->add_bos = v.add_bos.value_or(im->pre->default_add_bos());
    im->add_eos = v.add_eos.value_or(false);
    im->add_space_prefix = v.add_space_prefix.value_or(false);
    im->bpe = std::make_unique<tok::BpeModel>(v.merges, im->map, im->pre->ignore_merges(), v.unk_id);
  } else {
    throw Error("tokenizer: unsupported tokenizer.ggml.model '" + v.model + "' (supported: llama, gpt2)");
  }

  // Tokens with end-of-turn texts are control tokens in effect even when stored as user-defined
  // (phi-3's "</s>") or normal (qwen2's "</s>"): they end generation, match literally only with
  // special parsing, and never come out of plain text. llama.cpp applies the same override.
  if (v.types.size() == n)
    for (const char* e : kEogTexts) {
      const int32_t id = tok::lookup(im->map, e);
      if (id >= 0 && (v.types[id] == static_cast<int32_t>(TokenType::UserDefined) ||
                      v.types[id] == static_cast<int32_t>(TokenType::Normal)))
        v.types[id] = static_cast<int32_t>(TokenType::Control);
    }

  if (v.eot_id < 0) {
    for (const char* t : kEotTexts) {
      const int32_t id = tok::lookup(im->map, t);
      if (id >= 0 && v.types.size() == n && v.types[id] != static_cast<int32_t>(TokenType::Normal)) {
        v.eot_id = id;
        break;
      }
    }
  }
  if (v.eom_id < 0) {
    const int32_t id = tok::lookup(im->map, "<|eom_id|>");
    if (id >= 0) v.eom_id = id;
  }

  // Phi-3's tokenizer_config marks its chat tokens (<|user|>, <|end|>, ...) and "</s>" rstrip:
  // "<|user|>\nHi" encodes like "<|user|>Hi". BOS, UNK and <|endoftext|> are not stripped.
  im->strip.assign(n, 0);
  if (v.architecture == "phi3" || contains_ci(v.name, "phi-3") || contains_ci(v.name, "phi3")) {
    for (size_t i = 0; i < n; ++i)
      if (im->type(static_cast<int32_t>(i)) == TokenType::Control) im->strip[i] = Impl::kRstrip;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) {
      const int32_t id = tok::lookup(im->map, t);
      if (id >= 0) im->strip[id] = 0;
    }
  }

  const VocabData& vd = im->v;
  // Decoded bytes of every token.
  im->pieces.resize(n);
  im->eog.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = vd.tokens[i];
    const TokenType ty = im->type(static_cast<int32_t>(i));
    std::string& p = im->pieces[i];
    switch (ty) {
      case TokenType::Control:
        p = t;
        break;
      case TokenType::Byte: {
        const int b = parse_byte_token(t);
        p = b >= 0 ? std::string(1, static_cast<char>(b)) : t;
        break;
      }
      case TokenType::Unknown:
        p = "\xEF\xBF\xBD";  // stands for text the vocabulary could not represent
        break;
      case TokenType::UserDefined:
        p = im->is_spm ? replace_all(t, kSpaceMark, " ") : t;
        break;
      default:
        if (im->is_spm) {
          p = replace_all(t, kSpaceMark, " ");
        } else {
          // Byte-level: each code point stands for one byte.
          for (size_t pos = 0; pos < t.size();) {
            uint32_t cp = 0;
            const size_t len = tok::decode_utf8(t, pos, &cp);
            const int b = len ? tok::unicode_to_byte(cp) : -1;
            if (b >= 0) {
              p += static_cast<char>(b);
              pos += len;
            } else {
              const size_t l = len ? len : 1;
              p.append(t, pos, l);  // not a byte-level code point: keep it verbatim
              pos += l;
            }
          }
        }
    }
    if (ty == TokenType::UserDefined) im->literal_always.push_back(static_cast<int32_t>(i));
    if (ty == TokenType::UserDefined || ty == TokenType::Control || ty == TokenType::Unknown)
      if (!t.empty()) im->literal_special.push_back(static_cast<int32_t>(i));
    if (ty == TokenType::Control || ty == TokenType::UserDefined)
      for (const char* e : kEogTexts)
        if (t == e) im->eog[i] = 1;
  }
  for (int32_t id : {vd.eos_id, vd.eot_id, vd.eom_id})
    if (id >= 0) im->eog[id] = 1;
  auto longest_first = [&](std::vector<int32_t>& ids) {
    std::stable_sort(ids.begin(), ids.end(),
                     [&](int32_t a, int32_t b) { return vd.tokens[a].size() > vd.tokens[b].size(); });
  };
  longest_first(im->literal_always);
  longest_first(im->literal_special);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(im)));
}

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= v.tokens.size())
    throw Error("tokenizer: token id " + std::to_string(id) + " is out of range (vocabulary has " +
                std::to_string(v.tokens.size()) + " tokens)");
}

// Encodes text that contains no literal special tokens.
void Tokenizer::Impl::encode_text(std::string_view text, bool prefix_space, std::vector<int32_t>& out) const {
  if (is_spm) {
    std::string s;
    if (prefix_space) s = " ";
    s.append(text);
    spm->encode(replace_all(s, " ", kSpaceMark), out);
    return;
  }
  // Byte-level BPE: the regexes need valid UTF-8, so invalid bytes become words of their own
  // (they still round-trip through their byte tokens).
  thread_local std::vector<std::string_view> words;
  size_t run = 0, pos = 0;
  auto flush_run = [&](size_t end) {
    if (end > run) {
      words.clear();
      pre->split(text.substr(run, end - run), words);
      for (auto w : words) bpe->encode_word(w, out);
    }
  };
  while (pos < text.size()) {
    const auto b = static_cast<uint8_t>(text[pos]);
    if (b < 0x80) {
      ++pos;
      continue;
    }
    uint32_t cp;
    const size_t len = tok::decode_utf8(text, pos, &cp);
    if (len > 0) {
      pos += len;
      continue;
    }
    flush_run(pos);
    bpe->encode_word(text.substr(pos, 1), out);
    run = ++pos;
  }
  flush_run(text.size());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& im = *impl_;
  // Fragments: literal special tokens (id >= 0) and raw text spans (id < 0).
  struct Frag {
    int32_t id;
    size_t off, len;
  };
  std::vector<Frag> frags;
  if (!text.empty()) frags.push_back({-1, 0, text.size()});
  const auto& literals = parse_special ? im.literal_special : im.literal_always;
  for (int32_t id : literals) {
    const std::string& t = im.v.tokens[id];
    for (size_t f = 0; f < frags.size(); ++f) {
      if (frags[f].id >= 0 || frags[f].len < t.size()) continue;
      const std::string_view span = text.substr(frags[f].off, frags[f].len);
      const size_t hit = span.find(t);
      if (hit == std::string_view::npos) continue;
      // Split into [before][token][after]; `after` is searched again on the next iteration.
      Frag before{-1, frags[f].off, hit};
      const Frag tokf{id, frags[f].off + hit, t.size()};
      Frag after{-1, frags[f].off + hit + t.size(), frags[f].len - hit - t.size()};
      if (im.strip[id] & Impl::kLstrip)
        while (before.len && is_ascii_space(text[before.off + before.len - 1])) --before.len;
      if (im.strip[id] & Impl::kRstrip)
        while (after.len && is_ascii_space(text[after.off])) ++after.off, --after.len;
      std::vector<Frag> repl;
      if (before.len) repl.push_back(before);
      repl.push_back(tokf);
      if (after.len) repl.push_back(after);
      frags.erase(frags.begin() + static_cast<std::ptrdiff_t>(f));
      frags.insert(frags.begin() + static_cast<std::ptrdiff_t>(f), repl.begin(), repl.end());
      f += (before.len ? 1 : 0);  // continue with `after` (loop's ++f skips the token)
    }
  }

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && im.add_bos && im.v.bos_id >= 0) out.push_back(im.v.bos_id);
  // SentencePiece adds its leading space at the start and after each literal special token.
  bool prev_special = true;
  for (const Frag& fr : frags) {
    if (fr.id >= 0) {
      out.push_back(fr.id);
      prev_special = true;
    } else {
      im.encode_text(text.substr(fr.off, fr.len), im.add_space_prefix && prev_special, out);
      prev_special = false;
    }
  }
  if (add_special && im.add_eos && im.v.eos_id >= 0) out.push_back(im.v.eos_id);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::string out;
  bool at_start = true;
  for (int32_t id : ids) {
    im.check_id(id);
    const TokenType ty = im.type(id);
    if (ty == TokenType::Control && skip_special) continue;
    const std::string& p = im.pieces[id];
    // Undo the SentencePiece leading space on the first text piece.
    if (at_start && ty != TokenType::Control) {
      at_start = false;
      if (im.add_space_prefix && !p.empty() && p[0] == ' ') {
        out.append(p, 1);
        continue;
      }
    }
    out += p;
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  impl_->check_id(id);
  return impl_->pieces[id];
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->v.tokens.size()); }
int32_t Tokenizer::bos_id() const { return impl_->v.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->v.eos_id; }
int32_t Tokenizer::eot_id() const { return impl_->v.eot_id; }
int32_t Tokenizer::unk_id() const { return impl_->v.unk_id; }
int32_t Tokenizer::pad_id() const { return impl_->v.pad_id; }
bool Tokenizer::is_end_of_generation(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->eog.size() && impl_->eog[id];
}
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
const std::string& Tokenizer::chat_template() const { return impl_->v.chat_template; }
const std::string& Tokenizer::model() const { return impl_->v.model; }
const std::string& Tokenizer::pre() const { return impl_->v.pre; }
const std::string& Tokenizer::architecture() const { return impl_->v.architecture; }
TokenType Tokenizer::token_type(int32_t id) const {
  impl_->check_id(id);
  return impl_->type(id);
}
const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->v.tokens[id];
}
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = tok::lookup(impl_->map, text);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}
bool Tokenizer::is_special(int32_t id) const {
  const TokenType t = token_type(id);
  return t == TokenType::Control || t == TokenType::Unknown || t == TokenType::UserDefined;
}

}  // namespace rocforge
