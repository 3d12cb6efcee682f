// utf8.h - the few UTF-8 helpers the tokenizers need, and GPT-2's byte <-> unicode mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rocforge::tok {

// Length of the sequence a lead byte announces (1..4); 1 for continuation/invalid bytes, so a
// scan over arbitrary bytes always advances.
inline size_t utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Length of the character starting at s[pos], clipped to the end of s.
inline size_t utf8_char_len(std::string_view s, size_t pos) {
  size_t n = utf8_seq_len(static_cast<uint8_t>(s[pos]));
  return pos + n > s.size() ? s.size() - pos : n;
}

void append_utf8(std::string& out, uint32_t cp);

// Decodes one code point at s[pos]; returns the number of bytes used (0 if s[pos...] is not a
// complete valid sequence).
size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp);

// Copies s to out, replacing each byte that cannot start or continue valid UTF-8 by U+FFFD.
// With keep_tail, a trailing sequence that could still become valid once more bytes arrive is
// not copied; its length is returned (0 otherwise).
size_t sanitize_utf8(std::string_view s, std::string& out, bool keep_tail);

// GPT-2 byte-level BPE represents each byte as one printable code point (space -> "Ġ").
// byte_to_unicode(b) is that code point's UTF-8; unicode_to_byte maps it back (-1 if none).
const std::string& byte_to_unicode(uint8_t b);
int unicode_to_byte(uint32_t cp);

}  // namespace rocforge::tok
