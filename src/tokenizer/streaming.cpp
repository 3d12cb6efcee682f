// streaming.cpp - StreamingDetokenizer: token-by-token text that never splits a UTF-8 character.
#include "rocforge/tokenizer.h"
#include "tokenizer/utf8.h"

namespace rocforge {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tok, bool skip_special, bool at_text_start)
    : tok_(tok), skip_special_(skip_special), at_start_(at_text_start) {}

std::string StreamingDetokenizer::push(int32_t id) {
  const TokenType ty = tok_.token_type(id);  // throws on a bad id
  if (ty == TokenType::Control && skip_special_) return {};
  // decode() of a lone first text token drops the SentencePiece leading space, exactly as
  // decoding the whole sequence would.
  pending_ += at_start_ ? tok_.decode({id}, skip_special_) : tok_.token_to_piece(id);
  if (ty != TokenType::Control) at_start_ = false;
  std::string out;
  const size_t tail = tok::sanitize_utf8(pending_, out, /*keep_tail=*/true);
  pending_.erase(0, pending_.size() - tail);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  tok::sanitize_utf8(pending_, out, /*keep_tail=*/false);
  pending_.clear();
  return out;
}

}  // namespace rocforge
