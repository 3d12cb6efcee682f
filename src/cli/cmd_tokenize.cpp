// rocforge tokenize / detokenize - the model's tokenizer from the command line.
//
//   rocforge tokenize -m MODEL [--ids|--pieces] [--no-add-special] [--parse-special] TEXT|-
//   rocforge tokenize -m MODEL --chat [--system S] [--chat-template NAME|FILE] TEXT   (the prompt
//       the chat template makes of one user message; --show-prompt prints it instead of tokens)
//   rocforge detokenize -m MODEL [--skip-special] IDS...     (ids as args, "1,2,3" or "[1, 2, 3]")
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "rocforge/chat_template.h"
#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"

namespace rocforge::cli {
namespace {

// A piece as a double-quoted string with JSON escapes, so spaces, newlines and control bytes are
// visible. Bytes that are not valid UTF-8 on their own (partial characters) are shown as \xNN.
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    char buf[8];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c >= 0x80) {
      // Copy a complete, well-formed multi-byte sequence; escape anything else byte by byte.
      const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok) {
        out.append(s, i, n);
        i += n - 1;
      } else {
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const auto f = gguf::File::open(path);
  return Tokenizer::from_gguf(*f);
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  CLI::App app{"Tokenize text with a model's tokenizer", "rocforge tokenize"};
  std::string model, text, file;
  bool ids_only = false, pieces_only = false, no_add_special = false, parse_special = false;
  bool chat = false, show_prompt = false;
  std::string system_prompt, chat_template;
  app.add_option("-m,--model", model, "GGUF model (a vocab-only GGUF works)")->required();
  app.add_option("text", text, "text to tokenize ('-' reads stdin)");
  app.add_option("-f,--file", file, "read the text from a file");
  auto* ids_flag = app.add_flag("--ids", ids_only, "print only the ids, space-separated on one line");
  app.add_flag("--pieces", pieces_only, "print only the pieces, one quoted piece per line")->excludes(ids_flag);
  app.add_flag("--no-add-special", no_add_special, "do not add BOS/EOS (default: as the model's metadata says)");
  app.add_flag("--parse-special", parse_special, "turn special-token text such as <|eot_id|> into its id");
  app.add_flag("--chat", chat, "tokenize the chat prompt of TEXT as one user message (opens the assistant turn)");
  app.add_option("--system", system_prompt, "with --chat: a system message before TEXT");
  app.add_option("--chat-template", chat_template, "with --chat: built-in template name or Jinja file (default: the model's)");
  app.add_flag("--show-prompt", show_prompt, "with --chat: print the rendered prompt instead of tokens");
  CLI11_PARSE(app, argc, argv);

  if (!file.empty()) {
    if (!text.empty()) throw Error("give either TEXT or --file, not both");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error("cannot read --file '" + file + "'");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (text == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  const auto tok = load_tokenizer(model);
  std::vector<int32_t> ids;
  if (chat) {
    std::vector<ChatMessage> msgs;
    if (!system_prompt.empty()) msgs.push_back({"system", system_prompt});
    msgs.push_back({"user", text});
    const std::string prompt = apply_chat_template(*tok, chat_template, msgs, /*add_generation_prompt=*/true);
    if (show_prompt) {
      std::fwrite(prompt.data(), 1, prompt.size(), stdout);
      return 0;
    }
    ids = encode_chat_prompt(*tok, prompt);
  } else {
    if (!system_prompt.empty() || !chat_template.empty() || show_prompt)
      throw Error("--system, --chat-template and --show-prompt need --chat");
    ids = tok->encode(text, !no_add_special, parse_special);
  }
  if (ids_only) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    std::printf("%s\n", line.c_str());
  } else {
    for (int32_t id : ids) {
      if (pieces_only) std::printf("%s\n", quote(tok->token_to_piece(id)).c_str());
      else std::printf("%6d %s\n", id, quote(tok->token_to_piece(id)).c_str());
    }
  }
  return 0;
}

int run_detokenize(int argc, char** argv) {
  CLI::App app{"Turn token ids back into text", "rocforge detokenize"};
  std::string model;
  std::vector<std::string> args;
  bool skip_special = false;
  app.add_option("-m,--model", model, "GGUF model (a vocab-only GGUF works)")->required();
  app.add_option("ids", args, "token ids: separate arguments, '1,2,3' or '[1, 2, 3]'")->required();
  app.add_flag("--skip-special", skip_special, "leave out control tokens such as BOS/EOS");
  CLI11_PARSE(app, argc, argv);

  std::vector<int32_t> ids;
  for (const auto& a : args) {
    std::string cleaned = a;
    for (auto& c : cleaned)
      if (c == ',' || c == '[' || c == ']') c = ' ';
    std::istringstream in(cleaned);
    for (std::string w; in >> w;) {
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(w, &used);
      } catch (...) {
        used = 0;
      }
      if (used != w.size() || v < INT32_MIN || v > INT32_MAX) throw Error("'" + w + "' is not a token id");
      ids.push_back(static_cast<int32_t>(v));
    }
  }
  const auto tok = load_tokenizer(model);
  const std::string text = tok->decode(ids, skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace rocforge::cli
