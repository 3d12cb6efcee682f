// chat_template_json_test.cpp - OpenAI-style requests (tools, tool calls, reasoning) through real
// templates: Qwen 2.5 with tools, Qwen 3 with <think> handling.
#include <nlohmann/json.hpp>
#include <ctime>
#include <string>

#include "rocforge/chat_template.h"
#include "test_support.h"

namespace {

using nlohmann::ordered_json;

// Qwen/Qwen3-8B (tokenizer_config.json chat_template)
const char* kQwen3 = R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %})TPL";

const ordered_json kTools = ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
  "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
  "required": ["city"]}}}])");

const ordered_json kToolChat = ordered_json::parse(R"([
  {"role": "system", "content": "You are a helpful assistant."},
  {"role": "user", "content": "Weather in Paris?"},
  {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
  {"role": "tool", "content": "{\"temp\": 20}"}
])");

const std::string kToolsHeader =
    "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with "
    "the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    R"({"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})"
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";
const std::string kToolTurns =
    "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
    "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
    "<|im_start|>user\n<tool_response>\n{\"temp\": 20}\n</tool_response><|im_end|>\n"
    "<|im_start|>assistant\n";

TEST(ChatTemplateJson, Qwen3WithToolsAndToolResults) {
  const ordered_json extra = {{"tools", kTools}};
  EXPECT_EQ(rocforge::render_chat_template_json(kQwen3, kToolChat, true, "", "<|im_end|>", &extra),
            kToolsHeader + kToolTurns);
}

TEST(ChatTemplateJson, Qwen3ThinkingIsKeptOnlyAfterTheLastQuery) {
  const ordered_json chat = ordered_json::parse(R"([
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
    {"role": "user", "content": "3+3?"},
    {"role": "assistant", "content": "<think>\nadd again\n</think>\n\n6"}
  ])");
  // The first answer precedes the last user query: its reasoning is dropped. The last one keeps it.
  EXPECT_EQ(rocforge::render_chat_template_json(kQwen3, chat, false, "", ""),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n<think>\nadd again\n</think>\n\n6<|im_end|>\n");
  const ordered_json no_think = {{"enable_thinking", false}};
  const ordered_json q = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(rocforge::render_chat_template_json(kQwen3, q, true, "", "", &no_think),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplateJson, ContentPartsAndBadInput) {
  // Gemma-3 style templates accept content as a list of typed parts.
  const std::string tpl =
      "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
      "{% for p in m.content %}{{ p.text if p.type == 'text' else '<img>' }}{% endfor %}{% endif %}|{% endfor %}";
  const ordered_json chat = ordered_json::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "look: "}, {"type": "image"}]}, {"role": "assistant", "content": "ok"}])");
  EXPECT_EQ(rocforge::render_chat_template_json(tpl, chat, false, "", ""), "look: <img>|ok|");
  EXPECT_THROW(rocforge::render_chat_template_json(tpl, ordered_json::object(), false, "", ""), rocforge::Error);
}

}  // namespace

namespace {

// deepseek-ai/DeepSeek-R1-Distill (system prompt collected through a namespace, reasoning stripped
// from earlier answers, generation prompt opens <think>). Tool-call branches omitted.
const char* kDeepSeekR1 = R"TPL({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %})TPL";

TEST(ChatTemplateJson, DeepSeekR1StyleNamespaceAndNotIn) {
  const ordered_json chat = ordered_json::parse(R"([
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
    {"role": "user", "content": "3+3?"}
  ])");
  EXPECT_EQ(rocforge::render_chat_template_json(kDeepSeekR1, chat, true, "<｜begin▁of▁sentence｜>", ""),
            "<｜begin▁of▁sentence｜>Be terse.<｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?"
            "<｜Assistant｜><think>\n");
}

// Llama 3.2 picks today's date through strftime_now when the caller gives no date_string.
TEST(ChatTemplateJson, StrftimeNowGivesTodaysDate) {
  const std::string tpl =
      "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
      "{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- else %}{%- set date_string = \"26 Jul 2024\" %}"
      "{%- endif %}{%- endif %}Today Date: {{ date_string }}";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char want[64];
  std::strftime(want, sizeof want, "Today Date: %d %b %Y", &tm);
  EXPECT_EQ(rocforge::render_chat_template_json(tpl, ordered_json::array(), true, "", ""), want);
  const ordered_json fixed = {{"date_string", "01 Jan 2025"}};
  EXPECT_EQ(rocforge::render_chat_template_json(tpl, ordered_json::array(), true, "", "", &fixed),
            "Today Date: 01 Jan 2025");
}

}  // namespace
