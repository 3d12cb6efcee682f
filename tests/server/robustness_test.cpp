// Hostile and broken input: a malformed-request battery, API keys, body limits and slow clients.
// Every bad request must get its 4xx with an OpenAI error body, and the server must keep serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "server_fixture.h"

namespace rocforge::test {
namespace {

const char* kModel = "models/stories260K/stories260K.gguf";

struct Case {
  const char* path;
  std::string body;
  int status;
};

std::string chat_with(const std::string& extra) {
  return R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4)" + extra + "}";
}

TEST(ServerRobustness, MalformedInputBattery) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 2, 256);
  o.max_body_bytes = 64 * 1024;
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  auto c = s.client(10);

  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "the cat sat. ";
  const std::vector<Case> cases = {
      // Not JSON / not an object / not UTF-8.
      {"/v1/chat/completions", "not json", 400},
      {"/v1/chat/completions", "", 400},
      {"/v1/chat/completions", "[1,2]", 400},
      {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400},
      {"/v1/completions", "{\"prompt\":\"\\udc00\"}", 400},  // lone surrogate escape
      {"/v1/completions", std::string(50000, '['), 400},    // deep nesting
      {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":1e400}", 400},
      // Chat structure.
      {"/v1/chat/completions", "{}", 400},
      {"/v1/chat/completions", R"({"messages":"hi"})", 400},
      {"/v1/chat/completions", R"({"messages":[]})", 400},
      {"/v1/chat/completions", R"({"messages":[1]})", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})", 400},
      {"/v1/chat/completions", R"({"messages":[{"content":"x"}]})", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":123}]})", 400},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})", 400},
      // Parameter types and ranges.
      {"/v1/chat/completions", chat_with(R"(,"model":5)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":"10")"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":-1)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":0)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":1.5)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":1e300)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":99999999999999999999999)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"max_tokens":18446744073709551615)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"temperature":"hot")"), 400},
      {"/v1/chat/completions", chat_with(R"(,"temperature":-1)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"temperature":1e308)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"top_p":2)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"top_k":-3)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"min_p":1.5)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"presence_penalty":3)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"frequency_penalty":[1])"), 400},
      {"/v1/chat/completions", chat_with(R"(,"n":2)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"stop":5)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"stop":["a",1])"), 400},
      {"/v1/chat/completions", chat_with(R"(,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"])"), 400},
      {"/v1/chat/completions", chat_with(R"(,"seed":"x")"), 400},
      {"/v1/chat/completions", chat_with(R"(,"seed":1.5)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"stream":"yes")"), 400},
      {"/v1/chat/completions", chat_with(R"(,"stream_options":3)"), 400},
      {"/v1/chat/completions", chat_with(R"(,"logprobs":true)"), 400},
      // Completion prompts.
      {"/v1/completions", R"({"prompt":5})", 400},
      {"/v1/completions", R"({"prompt":[]})", 400},
      {"/v1/completions", R"({"prompt":["a","b"]})", 400},
      {"/v1/completions", R"({"prompt":[1,99999]})", 400},
      {"/v1/completions", R"({"prompt":[-1]})", 400},
      {"/v1/completions", R"({"prompt":[1.5]})", 400},
      {"/v1/completions", json{{"prompt", long_prompt}}.dump(), 400},  // longer than the context
      // Tokenizer endpoints.
      {"/tokenize", R"({"content":5})", 400},
      {"/tokenize", R"({})", 400},
      {"/detokenize", R"({"tokens":[1,"a"]})", 400},
      {"/detokenize", R"({"tokens":[999999]})", 400},
      {"/detokenize", R"({"tokens":"1"})", 400},
      // Size limit and unknown endpoints.
      {"/v1/completions", json{{"prompt", std::string(100 * 1024, 'a')}}.dump(), 413},
      {"/v1/nope", "{}", 404},
  };
  for (const Case& k : cases) {
    const HttpResult r = post(*c, k.path, k.body);
    const std::string what = std::string(k.path) + " " + k.body.substr(0, 120);
    EXPECT_EQ(r.status, k.status) << what << " -> " << r.body;
    ASSERT_TRUE(r.j.is_object()) << what << " -> " << r.body;
    ASSERT_TRUE(r.j.contains("error")) << what;
    EXPECT_TRUE(r.j["error"]["message"].is_string()) << what;
    EXPECT_TRUE(r.j["error"]["type"].is_string()) << what;
  }
  // The context overflow names its code, as OpenAI does.
  const HttpResult over = post(*c, "/v1/completions", json{{"prompt", long_prompt}}.dump());
  EXPECT_EQ(over.j["error"]["code"], "context_length_exceeded");

  // Odd but valid input is served: NUL, emoji, a token-id prompt, unknown extra fields.
  const HttpResult odd = post(*c, "/v1/completions",
                              json{{"prompt", std::string("a\0b \xF0\x9F\x98\x80", 9)}, {"max_tokens", 5}, {"whatever", 1}}.dump());
  EXPECT_EQ(odd.status, 200) << odd.body;
  const HttpResult ids = post(*c, "/v1/completions", R"({"prompt":[1,400,300],"max_tokens":3,"temperature":0})");
  EXPECT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(ids.j["usage"]["prompt_tokens"], 3);

  // Still healthy, nothing leaked.
  EXPECT_EQ(get(*c, "/health").status, 200);
  EXPECT_EQ(post(*c, "/v1/chat/completions", chat_with("")).status, 200);
  EXPECT_TRUE(s.wait_idle());
}

TEST(ServerRobustness, ApiKeyIsRequiredExceptForHealth) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 1);
  o.api_key = "s3cret-key";
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  auto c = s.client(10);
  const HttpResult none = get(*c, "/v1/models");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.j["error"]["type"], "authentication_error");
  EXPECT_EQ(get(*c, "/v1/models", {{"Authorization", "Bearer s3cret-kex"}}).status, 401);
  EXPECT_EQ(get(*c, "/v1/models", {{"Authorization", "Bearer s3cret-key-longer"}}).status, 401);
  EXPECT_EQ(get(*c, "/v1/models", {{"Authorization", "s3cret-key"}}).status, 401);
  EXPECT_EQ(get(*c, "/metrics").status, 401);
  EXPECT_EQ(post(*c, "/v1/completions", R"({"prompt":"a","max_tokens":2})").status, 401);
  EXPECT_EQ(get(*c, "/v1/models", {{"Authorization", "Bearer s3cret-key"}}).status, 200);
  EXPECT_EQ(post(*c, "/v1/completions", R"({"prompt":"a","max_tokens":2})", {{"Authorization", "Bearer s3cret-key"}}).status,
            200);
  EXPECT_EQ(get(*c, "/health").status, 200);
}

TEST(ServerRobustness, SlowClientIsDroppedAndOthersAreServed) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 1);
  o.timeout_s = 1;
  LiveServer s(o);
  ASSERT_TRUE(s.wait());

  // A client that announces a body and never sends it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"pro";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));

  // Meanwhile others are served.
  auto c = s.client(10);
  EXPECT_EQ(post(*c, "/v1/completions", R"({"prompt":"a","max_tokens":2})").status, 200);

  // The server gives up on the slow one after its read timeout (1 s): a 400, then the
  // connection is closed (keep-alive is capped by the same timeout).
  timeval tv{8, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const auto t0 = std::chrono::steady_clock::now();
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, n);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_EQ(n, 0) << "connection not closed by the server";
  EXPECT_LT(waited, 6.0);
  EXPECT_EQ(get(*c, "/health").status, 200);
}

}  // namespace
}  // namespace rocforge::test
