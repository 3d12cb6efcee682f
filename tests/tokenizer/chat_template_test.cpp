// chat_template_test.cpp - real model chat templates (Jinja sources as published in each model's
// tokenizer_config.json) rendered for one conversation, against strings derived by hand from the
// format each model documents.
#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "rocforge/chat_template.h"
#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"
#include "test_support.h"

namespace {

using rocforge::ChatMessage;
using rocforge::render_chat_template;

const std::vector<ChatMessage> kChat = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "Hi there."},
    {"user", "What is 2+2?"},
};
const std::vector<ChatMessage> kChatNoSystem(kChat.begin() + 1, kChat.end());

// meta-llama/Llama-2-7b-chat-hf
const char* kLlama2 = R"TPL({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})TPL";

// meta-llama/Meta-Llama-3-8B-Instruct
const char* kLlama3 = R"TPL({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %})TPL";

// meta-llama/Llama-3.1-8B-Instruct (tools, dates, ipython)
const char* kLlama31 = R"TPL({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)TPL";

// mistralai/Mistral-7B-Instruct-v0.1 (no system role)
const char* kMistralV1 = R"TPL({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})TPL";

// mistralai/Mistral-7B-Instruct-v0.3 (system prompt goes into the last user turn; tools omitted)
const char* kMistralV3 = R"TPL({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message["role"] == "user") != (loop.index0 % 2 == 0) %}
        {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)TPL";

// Qwen/Qwen2.5-7B-Instruct
const char* kQwen25 = R"TPL({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)TPL";

// microsoft/Phi-3-mini-4k-instruct
const char* kPhi3 = R"TPL({% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %})TPL";

// google/gemma-2-9b-it (no system role)
const char* kGemma2 = R"TPL({{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})TPL";

// google/gemma-3-4b-it (system prompt prefixed to the first user turn)
const char* kGemma3 = R"TPL({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
)TPL";

// Expected renderings, written out from each model's documented prompt format.
const std::string kWantLlama2 =
    "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST] Hi there. </s>"
    "<s>[INST] What is 2+2? [/INST]";
const std::string kWantLlama3Turns =
    "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n";
const std::string kWantLlama3 =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>" +
    kWantLlama3Turns;
const std::string kWantLlama31 =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    "You are a helpful assistant.<|eot_id|>" +
    kWantLlama3Turns;
const std::string kWantMistralV3 =
    "<s>[INST] Hello![/INST] Hi there.</s>[INST] You are a helpful assistant.\n\nWhat is 2+2?[/INST]";
const std::string kWantChatmlTurns =
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi there.<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
const std::string kWantQwen = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + kWantChatmlTurns;
const std::string kWantPhi3 =
    "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n"
    "<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n";
const std::string kWantGemmaNoSystem =
    "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi there.<end_of_turn>\n"
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n";
const std::string kWantGemma3 =
    "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n<start_of_turn>model\n"
    "Hi there.<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n";

std::string expect_error(const std::string& tpl, const std::vector<ChatMessage>& msgs) {
  try {
    render_chat_template(tpl, msgs, true, "<s>", "</s>");
  } catch (const rocforge::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error raised";
  return "";
}

TEST(ChatTemplate, Llama2) { EXPECT_EQ(render_chat_template(kLlama2, kChat, true, "<s>", "</s>"), kWantLlama2); }

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render_chat_template(kLlama3, kChat, true, "<|begin_of_text|>", "<|end_of_text|>"), kWantLlama3);
  // Without the generation prompt the last assistant header is absent.
  const std::string no_gen = render_chat_template(kLlama3, kChat, false, "<|begin_of_text|>", "<|end_of_text|>");
  EXPECT_EQ(no_gen, kWantLlama3.substr(0, kWantLlama3.size() - std::string("<|start_header_id|>assistant<|end_header_id|>\n\n").size()));
}

TEST(ChatTemplate, Llama31WithToolsMachinery) {
  EXPECT_EQ(render_chat_template(kLlama31, kChat, true, "<|begin_of_text|>", "<|eot_id|>"), kWantLlama31);
}

TEST(ChatTemplate, MistralV3PutsSystemIntoLastUserTurn) {
  EXPECT_EQ(render_chat_template(kMistralV3, kChat, true, "<s>", "</s>"), kWantMistralV3);
}

TEST(ChatTemplate, MistralV1RejectsSystemRoleWithLocation) {
  const std::string err = expect_error(kMistralV1, kChat);
  EXPECT_NE(err.find("Conversation roles must alternate"), std::string::npos) << err;
  EXPECT_NE(err.find("line 1 col "), std::string::npos) << err;
  EXPECT_EQ(render_chat_template(kMistralV1, kChatNoSystem, true, "<s>", "</s>"),
            "<s>[INST] Hello! [/INST]Hi there.</s>[INST] What is 2+2? [/INST]");
}

TEST(ChatTemplate, Qwen25ChatML) {
  EXPECT_EQ(render_chat_template(kQwen25, kChat, true, "", "<|im_end|>"), kWantQwen);
  EXPECT_EQ(render_chat_template(kQwen25, kChatNoSystem, true, "", "<|im_end|>"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
                kWantChatmlTurns);
}

TEST(ChatTemplate, Phi3) {
  EXPECT_EQ(render_chat_template(kPhi3, kChat, true, "<s>", "<|endoftext|>"), kWantPhi3);
  const std::string no_gen = render_chat_template(kPhi3, kChat, false, "<s>", "<|endoftext|>");
  EXPECT_EQ(no_gen, kWantPhi3.substr(0, kWantPhi3.size() - std::string("<|assistant|>\n").size()) + "<|endoftext|>");
}

TEST(ChatTemplate, Gemma) {
  EXPECT_EQ(render_chat_template(kGemma2, kChatNoSystem, true, "<bos>", "<eos>"), kWantGemmaNoSystem);
  const std::string err = expect_error(kGemma2, kChat);
  EXPECT_NE(err.find("System role not supported"), std::string::npos) << err;
  EXPECT_EQ(render_chat_template(kGemma3, kChat, true, "<bos>", "<eos>"), kWantGemma3);
  EXPECT_EQ(render_chat_template(kGemma3, kChatNoSystem, true, "<bos>", "<eos>"), kWantGemmaNoSystem);
}

TEST(ChatTemplate, BuiltinsMatchTheOfficialTemplates) {
  auto b = [](const char* n) { return *rocforge::builtin_chat_template(n); };
  EXPECT_EQ(render_chat_template(b("llama2"), kChat, true, "<s>", "</s>"), kWantLlama2);
  EXPECT_EQ(render_chat_template(b("llama3"), kChat, true, "<|begin_of_text|>", "<|end_of_text|>"), kWantLlama3);
  EXPECT_EQ(render_chat_template(b("mistral"), kChat, true, "<s>", "</s>"), kWantMistralV3);
  EXPECT_EQ(render_chat_template(b("chatml"), kChat, true, "", ""), kWantQwen);
  EXPECT_EQ(render_chat_template(b("phi3"), kChat, true, "<s>", "<|endoftext|>"), kWantPhi3);
  EXPECT_EQ(render_chat_template(b("gemma"), kChat, true, "<bos>", "<eos>"), kWantGemma3);
  EXPECT_EQ(render_chat_template(b("gemma"), kChatNoSystem, true, "<bos>", "<eos>"), kWantGemmaNoSystem);
  EXPECT_EQ(rocforge::builtin_chat_template("qwen2"), rocforge::builtin_chat_template("chatml"));
  EXPECT_FALSE(rocforge::builtin_chat_template("no-such-template").has_value());
}

TEST(ChatTemplate, TrimBlocksAndLstripBlocksLikeTransformers) {
  const std::string tpl =
      "{% for message in messages %}\n"
      "  {% if message.role == 'user' %}\n"
      "User: {{ message.content }}\n"
      "  {% endif %}\n"
      "{% endfor %}\n";
  EXPECT_EQ(render_chat_template(tpl, kChat, false, "", ""), "User: Hello!\nUser: What is 2+2?\n");
  // "{%+" disables lstrip_blocks; "+%}" disables trim_blocks.
  EXPECT_EQ(render_chat_template("a\n  {%+ if true +%}\nb{% endif %}", {}, false, "", ""), "a\n  \nb");
}

TEST(ChatTemplate, ExpressionsAndFilters) {
  auto r = [](const std::string& t) { return render_chat_template(t, kChat, false, "<s>", "</s>"); };
  EXPECT_EQ(r("{{ messages | length }} {{ messages[-1].content }} {{ messages[1:3] | map(attribute='role') | join(',') }}"),
            "4 What is 2+2? user,assistant");
  EXPECT_EQ(r("{% set ns = namespace(n=0) %}{% for m in messages if m.role == 'user' %}{% set ns.n = ns.n + loop.index %}{% endfor %}{{ ns.n }}"),
            "3");
  EXPECT_EQ(r("{{ {'a': [1, 2.5, none, true], 'b': 'x\"y'} | tojson }}"), R"({"a": [1, 2.5, null, true], "b": "x\"y"})");
  EXPECT_EQ(r("{{ {'a': [1]} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(r("{{ '  hi  ' | trim | upper }}|{{ 'a,b,,c'.split(',') }}|{{ 'abc'[::-1] }}|{{ 7 // 2 }}|{{ -7 % 3 }}|{{ 1 / 4 }}"),
            "HI|['a', 'b', '', 'c']|cba|3|2|0.25");
  EXPECT_EQ(r("{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }}{{ ',' if not loop.last }}{% endfor %}"), "x=1,y=2");
  EXPECT_EQ(r("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(r("{% for x in range(10) %}{% if x == 3 %}{% break %}{% endif %}{% if x is odd %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
            "02");
  EXPECT_EQ(r("{% macro turn(role, text='?') %}[{{ role }}:{{ text }}]{% endmacro %}{{ turn('u', 'hi') }}{{ turn('a') }}"),
            "[u:hi][a:?]");
  EXPECT_EQ(r("{{ undefined_thing is defined }} {{ undefined_thing | default('dflt') }} {{ none }} {{ 'x' ~ 1 ~ none }}"),
            "False dflt None x1None");
  EXPECT_EQ(r("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");  // loop scope
  EXPECT_EQ(r("{{ 'a' if false }}|{{ 'b' if 0 else 'c' }}|{{ [1,2,3] | select('odd') | list }}"), "|c|[1, 3]");
}

TEST(ChatTemplate, ErrorsNameLineAndColumn) {
  const std::string e1 = expect_error("ok\n{% if %}", kChat);
  EXPECT_NE(e1.find("line 2 col"), std::string::npos) << e1;
  const std::string e2 = expect_error("{{ messages | nosuchfilter }}", kChat);
  EXPECT_NE(e2.find("nosuchfilter"), std::string::npos) << e2;
  const std::string e3 = expect_error("line one\n  {{ raise_exception('boom') }}", kChat);
  EXPECT_NE(e3.find("line 2 col 6"), std::string::npos) << e3;
  EXPECT_NE(e3.find("boom"), std::string::npos) << e3;
  EXPECT_NE(expect_error("{% for m in messages %}", kChat).find("endfor"), std::string::npos);
  EXPECT_NE(expect_error("{{ 'abc' + 1 }}", kChat).find("unsupported operand"), std::string::npos);
  EXPECT_NE(expect_error("{{ 'unterminated }}", kChat).find("unterminated"), std::string::npos);
}

// Templates stored in real GGUF files, and template selection.
TEST(ChatTemplate, FromGgufAndResolution) {
  ROCFORGE_REQUIRE_FIXTURE(phi, "vocab/ggml-vocab-phi-3.gguf");
  ROCFORGE_REQUIRE_FIXTURE(qwen, "vocab/ggml-vocab-qwen2.gguf");
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  ROCFORGE_REQUIRE_FIXTURE(gpt2, "vocab/ggml-vocab-gpt-2.gguf");
  auto load = [](const std::filesystem::path& p) {
    auto f = rocforge::gguf::File::open(p.string());
    return rocforge::Tokenizer::from_gguf(*f);
  };
  // phi-3's GGUF template drops the system message and always opens an assistant turn.
  auto tphi = load(phi);
  EXPECT_EQ(rocforge::apply_chat_template(*tphi, "", kChat, true),
            "<s><|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n");
  auto tq = load(qwen);
  EXPECT_EQ(rocforge::apply_chat_template(*tq, "", kChat, true), kWantQwen);
  EXPECT_EQ(rocforge::apply_chat_template(*tq, "", kChatNoSystem, true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" + kWantChatmlTurns);
  // No template in the file: guessed from the special tokens / architecture.
  EXPECT_EQ(rocforge::resolve_chat_template(*load(bpe), ""), *rocforge::builtin_chat_template("llama3"));
  EXPECT_EQ(rocforge::resolve_chat_template(*load(spm), ""), *rocforge::builtin_chat_template("llama2"));
  EXPECT_EQ(rocforge::resolve_chat_template(*load(gpt2), ""), *rocforge::builtin_chat_template("chatml"));
  // Overrides: a built-in name, a file, or an error.
  EXPECT_EQ(rocforge::resolve_chat_template(*tphi, "gemma"), *rocforge::builtin_chat_template("gemma"));
  const auto file = rocforge::test::temp_dir() / "tpl.jinja";
  std::ofstream(file) << "{{ messages[0].content }}";
  EXPECT_EQ(rocforge::apply_chat_template(*tphi, file.string(), kChat, true), "You are a helpful assistant.");
  EXPECT_THROW(rocforge::resolve_chat_template(*tphi, "/no/such/template/file"), rocforge::Error);
}

}  // namespace

namespace {

TEST(ChatTemplate, EncodeChatPromptAddsBosExactlyOnce) {
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  ROCFORGE_REQUIRE_FIXTURE(qwen, "vocab/ggml-vocab-qwen2.gguf");
  auto f = rocforge::gguf::File::open(bpe.string());
  auto tok = rocforge::Tokenizer::from_gguf(*f);
  // The Llama 3 template writes <|begin_of_text|> itself; no second BOS may be added.
  const std::string prompt = rocforge::apply_chat_template(*tok, "", kChat, true);
  const auto ids = rocforge::encode_chat_prompt(*tok, prompt);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 128000);
  EXPECT_NE(ids[1], 128000);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 128009), 4);  // one <|eot_id|> per message
  EXPECT_EQ(tok->decode(ids), prompt);
  // A template without BOS on a model that wants one gets it prepended.
  const auto ids2 = rocforge::encode_chat_prompt(*tok, rocforge::apply_chat_template(*tok, "chatml", kChat, true));
  EXPECT_EQ(ids2[0], 128000);
  // Qwen2 does not add BOS.
  auto fq = rocforge::gguf::File::open(qwen.string());
  auto tq = rocforge::Tokenizer::from_gguf(*fq);
  const auto ids3 = rocforge::encode_chat_prompt(*tq, rocforge::apply_chat_template(*tq, "", kChat, true));
  EXPECT_EQ(ids3[0], 151644);  // <|im_start|>
}

}  // namespace

namespace {

TEST(ChatTemplate, HostileTemplatesFailCleanly) {
  const std::vector<ChatMessage> none;
  auto err = [&](const std::string& t) {
    try {
      render_chat_template(t, none, false, "", "");
    } catch (const rocforge::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}").find("too deep"), std::string::npos);
  EXPECT_NE(err(std::string(5000, '{') + "%").find("chat template"), std::string::npos);
  EXPECT_NE(err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("recursion"), std::string::npos);
  EXPECT_NE(err("{{ 'x' * 1000000000000 }}").find("too large"), std::string::npos);
  EXPECT_NE(err("{% for i in range(3) %}{{ 'x' * 30000000 }}{% endfor %}").find("64 MiB"), std::string::npos);
}

}  // namespace

namespace {

TEST(ChatTemplate, LoopCycleAndNestedLoops) {
  EXPECT_EQ(render_chat_template("{% for m in messages %}{{ loop.cycle('a', 'b') }}{% for c in 'xy' %}{{ loop.index }}{% endfor %}"
                                 "{{ loop.index }}{% endfor %}",
                                 kChat, false, "", ""),
            "a121b122a123b124");
}

}  // namespace
