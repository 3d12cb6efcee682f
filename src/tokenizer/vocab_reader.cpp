// vocab_reader.cpp - VocabData from the tokenizer.ggml.* keys of a GGUF file.
#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"

namespace rocforge {

VocabData read_vocab(const gguf::File& f) {
  VocabData v;
  auto where = [&](const char* key) { return f.path() + ": " + key; };
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) throw Error(where("tokenizer.ggml.model") + " is missing (the file has no tokenizer)");
  v.model = *model;
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("");
  v.architecture = f.get_string("general.architecture").value_or("");
  v.name = f.get_string("general.name").value_or("");
  auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) throw Error(where("tokenizer.ggml.tokens") + " is missing");
  v.tokens = std::move(*tokens);
  if (auto s = f.get_f32_array("tokenizer.ggml.scores")) v.scores = std::move(*s);
  if (auto t = f.get_int_array("tokenizer.ggml.token_type")) {
    v.types.reserve(t->size());
    for (size_t i = 0; i < t->size(); ++i) {
      const int64_t x = (*t)[i];
      if (x < 0 || x > 6)
        throw Error(where("tokenizer.ggml.token_type") + "[" + std::to_string(i) + "] = " + std::to_string(x) +
                    " is not a token type (0..6)");
      v.types.push_back(static_cast<int32_t>(x));
    }
  }
  if (auto m = f.get_string_array("tokenizer.ggml.merges")) v.merges = std::move(*m);
  auto id = [&](const char* key, int32_t& dst) {
    auto x = f.get_int(key);
    if (!x) return;
    if (*x < 0 || *x >= static_cast<int64_t>(v.tokens.size())) {
      // Some converters write -1 or a value past the vocabulary for "none": treat as absent only
      // for -1 (also written as u32 0xFFFFFFFF, e.g. stories260K's padding id); anything else is
      // a broken file.
      if (*x == -1 || *x == 0xFFFFFFFFll) return;
      throw Error(where(key) + " = " + std::to_string(*x) + " is out of range (vocabulary has " +
                  std::to_string(v.tokens.size()) + " tokens)");
    }
    dst = static_cast<int32_t>(*x);
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id);
  id("tokenizer.ggml.eos_token_id", v.eos_id);
  id("tokenizer.ggml.eot_token_id", v.eot_id);
  id("tokenizer.ggml.eom_token_id", v.eom_id);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  id("tokenizer.ggml.padding_token_id", v.pad_id);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  v.chat_template = f.get_string("tokenizer.chat_template").value_or("");
  return v;
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  try {
    return from_vocab(read_vocab(f));
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(f.path(), 0) == 0) throw;
    throw Error(f.path() + ": " + msg);
  }
}

}  // namespace rocforge
