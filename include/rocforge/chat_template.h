// rocforge/chat_template.h - chat prompts from Jinja2 chat templates (tokenizer.chat_template).
//
// The interpreter covers the Jinja2 subset that model chat templates use: {{ }}, {% if/elif/else %},
// {% for %} with loop.* and else, {% set %} (incl. namespace attributes and tuple unpacking),
// {% macro %}, break/continue, whitespace control, filters (trim, tojson, join, default, length,
// map, selectattr, ...), tests (defined, none, string, mapping, ...), Python string/dict/list
// methods, raise_exception() and strftime_now(). Rendering uses HF's settings: trim_blocks and
// lstrip_blocks on, autoescape off. Not supported (a clear error): include/extends/block,
// recursive loops, {% call %} and {% filter %} blocks. upper/lower/title are ASCII-only.
// Limits: nesting depth 200, macro recursion 64, output 64 MiB.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rocforge/error.h"

namespace rocforge {

class Tokenizer;

struct ChatMessage {
  std::string role, content;
};

// Renders a chat template. Throws rocforge::Error naming the template line/col on syntax errors,
// on runtime errors and when the template calls raise_exception(msg).
std::string render_chat_template(const std::string& jinja_source, const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token);

// Full form for OpenAI-style requests: `messages` is a JSON array of message objects (content as
// a string or a list of parts, tool_calls, tool_call_id, reasoning_content, ...) and `extra` an
// object of further template variables (tools, enable_thinking, ...). ordered_json keeps key
// order, so `tojson` renders tool schemas in the order they were given, as Python does.
std::string render_chat_template_json(const std::string& jinja_source, const nlohmann::ordered_json& messages,
                                      bool add_generation_prompt, const std::string& bos_token,
                                      const std::string& eos_token, const nlohmann::ordered_json* extra = nullptr);

// Built-in templates: "llama2", "llama3", "chatml" (Qwen), "mistral", "phi3", "gemma"
// (aliases: "llama-2", "llama-3", "qwen", "qwen2", "phi-3", "gemma2"). nullopt if unknown.
std::optional<std::string> builtin_chat_template(std::string_view name);
std::vector<std::string> builtin_chat_template_names();

// The template to use for a model: override (a built-in name or a file path) > the GGUF's
// tokenizer.chat_template > a guess from the vocabulary's special tokens and architecture > chatml.
// Throws rocforge::Error if the override is neither a built-in name nor a readable file.
std::string resolve_chat_template(const Tokenizer& tok, const std::string& override_name_or_file);

// Convenience: resolve + render with the tokenizer's BOS/EOS texts.
std::string apply_chat_template(const Tokenizer& tok, const std::string& override_name_or_file,
                                const std::vector<ChatMessage>& messages, bool add_generation_prompt);

// Token ids of a rendered chat prompt: special-token text is parsed, and BOS is prepended only
// when the model wants one and the template did not already write it (no double BOS). EOS is
// never appended (the prompt continues with the assistant's turn).
std::vector<int32_t> encode_chat_prompt(const Tokenizer& tok, const std::string& rendered_prompt);

}  // namespace rocforge
