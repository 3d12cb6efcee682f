// The OpenAI wire format without a model: request validation, defaults, response shapes.
#include "server/api.h"

#include <gtest/gtest.h>

namespace rocforge::server {
namespace {

using nlohmann::json;

ParsedRequest chat(const json& extra) {
  json body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  body.update(extra);
  return parse_generation_request(body, Endpoint::Chat, 512);
}

TEST(Api, OpenAiDefaultsAndOverrides) {
  const ParsedRequest d = chat(json::object());
  EXPECT_FLOAT_EQ(d.gen.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(d.gen.sampling.top_p, 1.0f);
  EXPECT_EQ(d.gen.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(d.gen.sampling.min_p, 0.0f);
  EXPECT_EQ(d.gen.max_tokens, -1);
  EXPECT_FALSE(d.stream);

  const ParsedRequest o = chat({{"temperature", 0.5}, {"top_p", 0.9}, {"top_k", 7}, {"min_p", 0.1}, {"max_tokens", 12},
                                {"presence_penalty", 0.5}, {"frequency_penalty", -0.5}, {"seed", 99}, {"stop", "END"},
                                {"stream", true}, {"stream_options", {{"include_usage", true}}}});
  EXPECT_FLOAT_EQ(o.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(o.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(o.gen.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(o.gen.sampling.min_p, 0.1f);
  EXPECT_EQ(o.gen.max_tokens, 12);
  EXPECT_FLOAT_EQ(o.gen.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(o.gen.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(o.gen.sampling.seed, 99u);
  EXPECT_EQ(o.gen.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(o.stream);
  EXPECT_TRUE(o.include_usage);
  // max_completion_tokens (the newer name) wins over max_tokens.
  EXPECT_EQ(chat({{"max_tokens", 5}, {"max_completion_tokens", 9}}).gen.max_tokens, 9);
  // top_p 0 means "only the most likely token".
  EXPECT_FLOAT_EQ(chat({{"top_p", 0}}).gen.sampling.temperature, 0.0f);
}

TEST(Api, MessagesAndContentParts) {
  const json body = {{"messages",
                      {{{"role", "developer"}, {"content", "be brief"}},
                       {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
                       {{"role", "assistant"}, {"content", nullptr}}}}};
  const ParsedRequest r = parse_generation_request(body, Endpoint::Chat, 512);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].content, "");
}

TEST(Api, ErrorsNameTheParameter) {
  try {
    chat({{"temperature", "hot"}});
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "temperature");
    const json j = error_json(e);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["param"], "temperature");
  }
  EXPECT_THROW(parse_generation_request({{"prompt", {1, 512}}}, Endpoint::Completion, 512), ApiError);
  EXPECT_NO_THROW(parse_generation_request({{"prompt", {1, 511}}}, Endpoint::Completion, 512));
  EXPECT_THROW(parse_body("{\"a\":1} trailing"), ApiError);
}

TEST(Api, ResponseShapes) {
  ResponseInfo info{"chatcmpl-x", "m", 123, 5, 7, 2};
  const json full = completion_response(Endpoint::Chat, info, "hello", "stop");
  EXPECT_EQ(full["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(full["usage"]["total_tokens"], 12);
  EXPECT_EQ(full["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
  const json first = stream_chunk(Endpoint::Chat, info, "he", "", true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const json last = stream_chunk(Endpoint::Chat, info, "", "length", false);
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const json comp = stream_chunk(Endpoint::Completion, info, "x", "", true);
  EXPECT_EQ(comp["object"], "text_completion");
  EXPECT_EQ(comp["choices"][0]["text"], "x");
  // Invalid UTF-8 never makes serialization throw.
  EXPECT_NO_THROW(dump(json{{"t", std::string("\xff\xfe")}}));
}

TEST(Api, SecureEquals) {
  EXPECT_TRUE(secure_equals("abc", "abc"));
  EXPECT_FALSE(secure_equals("abd", "abc"));
  EXPECT_FALSE(secure_equals("ab", "abc"));
  EXPECT_FALSE(secure_equals("abcd", "abc"));
  EXPECT_FALSE(secure_equals("", "abc"));
  EXPECT_FALSE(secure_equals("", ""));  // an empty expected key never matches
}

}  // namespace
}  // namespace rocforge::server
