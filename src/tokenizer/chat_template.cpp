// chat_template.cpp - rendering, built-in templates and template selection.
#include "rocforge/chat_template.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rocforge/tokenizer.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_eval.h"

namespace rocforge {
namespace {

// Our own renderings of the common chat formats (used when a GGUF has no template).
struct Builtin {
  const char* name;
  const char* source;
};

constexpr Builtin kBuiltins[] = {
    {"chatml", R"({%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%})"},

    // Llama 2 chat: the system prompt goes inside the first [INST] block.
    {"llama2", R"({%- if messages and messages[0]['role'] == 'system' -%}
  {%- set sys = '<<SYS>>\n' + messages[0]['content'] + '\n<</SYS>>\n\n' -%}
  {%- set msgs = messages[1:] -%}
{%- else -%}
  {%- set sys = '' -%}{%- set msgs = messages -%}
{%- endif -%}
{%- for message in msgs -%}
  {%- if message['role'] == 'user' -%}
    {{- bos_token + '[INST] ' + (sys if loop.first else '') + message['content'] | trim + ' [/INST]' -}}
  {%- elif message['role'] == 'assistant' -%}
    {{- ' ' + message['content'] | trim + ' ' + eos_token -}}
  {%- endif -%}
{%- endfor -%})"},

    {"llama3", R"({%- for message in messages -%}
  {%- if loop.first -%}{{- bos_token -}}{%- endif -%}
  {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%})"},

    // Mistral instruct (v0.3 convention): no system role; the system prompt is prepended to the
    // last user turn.
    {"mistral", R"({{- bos_token -}}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set sys = messages[0]['content'] + '\n\n' -%}{%- set msgs = messages[1:] -%}
{%- else -%}
  {%- set sys = '' -%}{%- set msgs = messages -%}
{%- endif -%}
{%- for message in msgs -%}
  {%- if message['role'] == 'user' -%}
    {{- '[INST] ' + (sys if loop.last else '') + message['content'] + '[/INST]' -}}
  {%- elif message['role'] == 'assistant' -%}
    {{- ' ' + message['content'] + eos_token -}}
  {%- endif -%}
{%- endfor -%})"},

    {"phi3", R"({%- for message in messages -%}
  {{- '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%})"},

    // Gemma: roles user/model; the system prompt is prepended to the first user turn.
    {"gemma", R"({{- bos_token -}}
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set sys = messages[0]['content'] | trim + '\n\n' -%}{%- set msgs = messages[1:] -%}
{%- else -%}
  {%- set sys = '' -%}{%- set msgs = messages -%}
{%- endif -%}
{%- for message in msgs -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{- '<start_of_turn>' + role + '\n' + (sys if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<start_of_turn>model\n' -}}{%- endif -%})"},
};

struct Alias {
  const char* alias;
  const char* name;
};
constexpr Alias kAliases[] = {{"llama-2", "llama2"}, {"llama-3", "llama3"}, {"qwen", "chatml"},
                              {"qwen2", "chatml"},   {"phi-3", "phi3"},     {"gemma2", "gemma"}};

jinja::Value from_json(const nlohmann::ordered_json& j) {
  using jinja::Value;
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float: return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      jinja::Array a;
      for (const auto& x : j) a.push_back(from_json(x));
      return Value::array(std::move(a));
    }
    case nlohmann::ordered_json::value_t::object: {
      jinja::Object o;
      for (auto it = j.begin(); it != j.end(); ++it) o.emplace_back(it.key(), from_json(it.value()));
      return Value::object(std::move(o));
    }
    default: return Value();
  }
}

}  // namespace

std::string render_chat_template_json(const std::string& jinja_source, const nlohmann::ordered_json& messages,
                                      bool add_generation_prompt, const std::string& bos_token,
                                      const std::string& eos_token, const nlohmann::ordered_json* extra) {
  using jinja::Value;
  if (!messages.is_array()) throw Error("chat template: messages must be a JSON array");
  const auto tpl = jinja::parse(jinja_source);
  jinja::Object globals;
  if (extra) {
    if (!extra->is_object()) throw Error("chat template: extra variables must be a JSON object");
    for (auto it = extra->begin(); it != extra->end(); ++it) globals.emplace_back(it.key(), from_json(it.value()));
  }
  globals.emplace_back("messages", from_json(messages));
  globals.emplace_back("add_generation_prompt", Value::boolean(add_generation_prompt));
  globals.emplace_back("bos_token", Value::string(bos_token));
  globals.emplace_back("eos_token", Value::string(eos_token));
  return jinja::render(*tpl, globals);
}

std::string render_chat_template(const std::string& jinja_source, const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token) {
  using jinja::Value;
  const auto tpl = jinja::parse(jinja_source);
  jinja::Array msgs;
  for (const auto& m : messages)
    msgs.push_back(Value::object({{"role", Value::string(m.role)}, {"content", Value::string(m.content)}}));
  const jinja::Object globals = {
      {"messages", Value::array(std::move(msgs))},
      {"add_generation_prompt", Value::boolean(add_generation_prompt)},
      {"bos_token", Value::string(bos_token)},
      {"eos_token", Value::string(eos_token)},
  };
  return jinja::render(*tpl, globals);
}

std::optional<std::string> builtin_chat_template(std::string_view name) {
  for (const auto& a : kAliases)
    if (name == a.alias) name = a.name;
  for (const auto& b : kBuiltins)
    if (name == b.name) return std::string(b.source);
  return std::nullopt;
}

std::vector<std::string> builtin_chat_template_names() {
  std::vector<std::string> v;
  for (const auto& b : kBuiltins) v.emplace_back(b.name);
  return v;
}

std::string resolve_chat_template(const Tokenizer& tok, const std::string& override_name_or_file) {
  if (!override_name_or_file.empty()) {
    if (auto b = builtin_chat_template(override_name_or_file)) return *b;
    std::error_code ec;
    if (std::filesystem::is_regular_file(override_name_or_file, ec)) {
      std::ifstream in(override_name_or_file, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      if (!in.bad()) return ss.str();
    }
    std::string names;
    for (const auto& n : builtin_chat_template_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error("chat template '" + override_name_or_file + "' is neither a built-in name (" + names +
                ") nor a readable file");
  }
  if (!tok.chat_template().empty()) return tok.chat_template();
  // No template in the file: recognise the format by its special tokens.
  auto has = [&](const char* t) { return tok.find_token(t).has_value(); };
  const char* guess = "chatml";
  if (has("<|start_header_id|>") && has("<|eot_id|>")) guess = "llama3";
  else if (has("<|im_start|>")) guess = "chatml";
  else if (has("<start_of_turn>")) guess = "gemma";
  else if (has("<|user|>") && has("<|assistant|>") && has("<|end|>")) guess = "phi3";
  else if (has("[INST]")) guess = "mistral";
  else if (tok.model() == "llama" && tok.architecture() == "llama") guess = "llama2";
  return *builtin_chat_template(guess);
}

std::string apply_chat_template(const Tokenizer& tok, const std::string& override_name_or_file,
                                const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  const std::string src = resolve_chat_template(tok, override_name_or_file);
  const std::string bos = tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : "";
  const std::string eos = tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : "";
  return render_chat_template(src, messages, add_generation_prompt, bos, eos);
}

std::vector<int32_t> encode_chat_prompt(const Tokenizer& tok, const std::string& rendered_prompt) {
  std::vector<int32_t> ids = tok.encode(rendered_prompt, /*add_special=*/false, /*parse_special=*/true);
  if (tok.add_bos() && tok.bos_id() >= 0 && (ids.empty() || ids[0] != tok.bos_id())) ids.insert(ids.begin(), tok.bos_id());
  return ids;
}

}  // namespace rocforge
