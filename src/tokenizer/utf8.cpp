#include "tokenizer/utf8.h"

#include <array>

namespace rocforge::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  const size_t n = utf8_seq_len(b0);
  if (n == 1) {
    if (b0 >= 0x80) return 0;
    *cp = b0;
    return 1;
  }
  if (pos + n > s.size()) return 0;
  uint32_t c = b0 & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF (not valid UTF-8).
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[n] || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) return 0;
  *cp = c;
  return n;
}

size_t sanitize_utf8(std::string_view s, std::string& out, bool keep_tail) {
  size_t pos = 0;
  while (pos < s.size()) {
    uint32_t cp;
    const size_t n = decode_utf8(s, pos, &cp);
    if (n > 0) {
      out.append(s.substr(pos, n));
      pos += n;
      continue;
    }
    // Could the rest still become a valid sequence once more bytes arrive?
    const auto b0 = static_cast<uint8_t>(s[pos]);
    const size_t want = utf8_seq_len(b0);
    if (keep_tail && want > 1 && pos + want > s.size()) {
      bool prefix_ok = true;
      for (size_t i = pos + 1; i < s.size(); ++i) prefix_ok &= (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80;
      if (prefix_ok) return s.size() - pos;
    }
    out += "\xEF\xBF\xBD";  // U+FFFD for one bad byte; resynchronise on the next one
    pos += 1;
  }
  return 0;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int, 512> from_unicode;  // every mapped code point is < 0x144
  ByteMap() {
    from_unicode.fill(-1);
    // Printable Latin-1 bytes map to themselves; the rest get code points 256, 257, ... in order.
    auto keeps_itself = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = keeps_itself(b) ? static_cast<uint32_t>(b) : static_cast<uint32_t>(next++);
      append_utf8(to_unicode[b], cp);
      from_unicode[cp] = b;
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

int unicode_to_byte(uint32_t cp) { return cp < 512 ? byte_map().from_unicode[cp] : -1; }

}  // namespace rocforge::tok
