// rocforge/tokenizer.h - text <-> token ids from the tokenizer.ggml.* metadata of a GGUF file.
//
// Two tokenizer families are supported:
//   tokenizer.ggml.model = "llama": SentencePiece-style BPE over token scores with byte fallback
//                                   (<0x0A> tokens) and the leading-space ("▁") convention.
//   tokenizer.ggml.model = "gpt2":  byte-level BPE over tokenizer.ggml.merges, after a regex
//                                   pre-tokenizer chosen by tokenizer.ggml.pre.
// Anything else (and an unknown `pre` value) is rejected with rocforge::Error rather than guessed:
// a wrong pre-tokenizer silently produces plausible but wrong ids. Supported `pre` values:
// gpt-2, llama-bpe / llama3 / llama-v3 (Llama 3), qwen2, deepseek-v3, and the names llama.cpp
// treats like one of these (dbrx, smaug-bpe, falcon3, chatglm-bpe, starcoder, refact, smollm,
// codeshell, command-r, exaone, minerva-7b, olmo, mpt, jais, trillion, stablelm2, bailingmoe,
// hunyuan, grok-2); each checked against llama.cpp (see src/tokenizer/pretokenizer.cpp). Not
// supported, for instance: gpt-4o, llama4, tekken, deepseek-llm. The environment variable
// ROCFORGE_PRE_TOKENIZER=<one of those> forces one for a file whose `pre` we do not know (logged).
//
// A Tokenizer is immutable after construction: encode/decode may be called from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocforge/error.h"

namespace rocforge {

namespace gguf {
class File;
}

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Everything the tokenizer reads from GGUF metadata, in plain form (tests build synthetic ones).
struct VocabData {
  std::string model;                 // tokenizer.ggml.model: "llama" | "gpt2"
  std::string pre;                   // tokenizer.ggml.pre ("" when absent)
  std::string architecture;          // general.architecture (for chat template guessing)
  std::string name;                  // general.name (model-specific token attributes)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<float> scores;         // tokenizer.ggml.scores (may be empty for gpt2)
  std::vector<int32_t> types;        // tokenizer.ggml.token_type (empty: all Normal)
  std::vector<std::string> merges;   // tokenizer.ggml.merges ("left right"), gpt2 only
  int32_t bos_id = -1, eos_id = -1, eot_id = -1, eom_id = -1, unk_id = -1, pad_id = -1;
  std::optional<bool> add_bos, add_eos, add_space_prefix;  // nullopt: the model family's default
  std::string chat_template;         // tokenizer.chat_template
};

// Reads VocabData from a GGUF file. Throws rocforge::Error naming the file and key on bad metadata.
VocabData read_vocab(const gguf::File& f);

class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& f);  // throws rocforge::Error
  static std::unique_ptr<Tokenizer> from_vocab(VocabData v);         // throws rocforge::Error
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS (and EOS) per tokenizer.ggml.add_bos_token / add_eos_token.
  // parse_special: control tokens written literally in the text (e.g. "<|eot_id|>") become their
  // ids. User-defined tokens (added vocabulary) are always matched literally, as HF tokenizers do.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // Concatenated pieces. The leading space the SentencePiece tokenizer adds is removed again, so
  // decode(encode(x, false)) == x for every x the vocabulary can represent. skip_special drops
  // control tokens (BOS/EOS/...); otherwise their text is included.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // Raw bytes this token contributes (control tokens: their text; byte tokens: the byte).
  std::string token_to_piece(int32_t id) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t eot_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;
  bool is_end_of_generation(int32_t id) const;  // EOS, EOT, EOM and other end-of-turn tokens
  bool add_bos() const;
  bool add_eos() const;
  const std::string& chat_template() const;  // tokenizer.chat_template or ""

  // Introspection.
  const std::string& model() const;         // "llama" | "gpt2"
  const std::string& pre() const;           // pre-tokenizer name ("" for llama)
  const std::string& architecture() const;  // general.architecture or ""
  TokenType token_type(int32_t id) const;   // throws on out-of-range id
  const std::string& token_text(int32_t id) const;  // the vocabulary string as stored
  std::optional<int32_t> find_token(std::string_view text) const;  // by vocabulary string
  bool is_special(int32_t id) const;  // control / unknown / user-defined (not plain text)

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns generated ids into text for streaming (SSE): push() returns only complete UTF-8
// sequences and keeps an incomplete tail for the next call. Bytes that can never become valid
// UTF-8 are replaced by U+FFFD, so the concatenated output is always valid UTF-8.
// flush() at the end returns what is left (an incomplete tail becomes U+FFFD).
//
// By default the ids continue a prompt (generation): every piece is kept as is, so a
// SentencePiece "▁Paris" after "The capital is" streams as " Paris". With at_text_start the ids
// begin the text (like decode()): the leading space SentencePiece adds is dropped once.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok, bool skip_special = true, bool at_text_start = false);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  bool at_start_;        // the SentencePiece leading space is still to be dropped
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace rocforge
