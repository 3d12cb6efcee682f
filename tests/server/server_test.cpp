// End-to-end server tests on stories260K: an in-process server on a free port, driven over HTTP.
// Reference outputs come from the engine's single-sequence Generator or from the same request
// run alone on the server.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>

#include "rocforge/engine.h"
#include "server_fixture.h"

namespace rocforge::test {
namespace {

const char* kModel = "models/stories260K/stories260K.gguf";

json completion(const std::string& prompt, int max_tokens, bool stream = false) {
  return json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", stream}};
}

// Distinct story openings (different lengths, so prefill chunks and decode steps interleave).
std::vector<std::string> prompts(int n) {
  const char* subjects[] = {"a little girl", "a big dog", "a small bird", "a brave boy", "an old cat", "a happy frog",
                            "a tiny fish", "a kind bear"};
  const char* places[] = {"in the park", "near the sea", "at school", "in a big house"};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string p = "Once upon a time there was " + std::string(subjects[i % 8]) + " " + places[(i / 8) % 4] + ".";
    for (int k = 0; k < i % 3; ++k) p += " It was a sunny day.";
    out.push_back(p);
  }
  return out;
}

TEST(Server, GreedyCompletionMatchesGenerator) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  LiveServer s(stories_options(model, 2));
  ASSERT_TRUE(s.wait());
  auto c = s.client();
  const std::string prompt = "Once upon a time, there was a little girl";
  const HttpResult r = post(*c, "/v1/completions", completion(prompt, 40).dump());
  ASSERT_EQ(r.status, 200) << r.body;

  // Reference: the same prompt through the single-sequence Generator.
  EngineOptions eo;
  eo.model_path = model.string();
  eo.device = "cpu";  // as the server's (server_fixture.h)
  eo.ctx_size = 256;
  eo.n_threads = 1;
  auto e = Engine::load(eo);
  Generator g(*e, SamplingParams::greedy());
  GenerateOptions go;
  go.max_tokens = 40;
  const auto ids = e->tokenizer().encode(prompt, true, true);
  const GenerateResult ref = g.generate(ids, go);

  EXPECT_EQ(r.j["choices"][0]["text"], ref.text);
  EXPECT_EQ(r.j["choices"][0]["finish_reason"], ref.reason == StopReason::MaxTokens ? "length" : "stop");
  EXPECT_EQ(r.j["usage"]["prompt_tokens"], static_cast<int>(ids.size()));
  EXPECT_EQ(r.j["usage"]["completion_tokens"], static_cast<int>(ref.tokens.size()));
  EXPECT_EQ(r.j["object"], "text_completion");

  // The same request streamed gives the same text, in more than one chunk, ending in [DONE].
  const StreamResult sr = post_stream(*c, "/v1/completions", completion(prompt, 40, true));
  EXPECT_EQ(sr.status, 200);
  EXPECT_TRUE(sr.done);
  EXPECT_EQ(sr.text, ref.text);
  EXPECT_GT(sr.events.size(), 5u);
  EXPECT_EQ(sr.finish_reason, r.j["choices"][0]["finish_reason"]);
}

TEST(Server, ConcurrentStreamsMatchSoloRunsAndFreeEveryBlock) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  constexpr int N = 32;
  LiveServer s(stories_options(model, N, 128));
  ASSERT_TRUE(s.wait());
  const auto ps = prompts(N);
  const int max_tokens = 24;

  std::vector<std::string> solo(N);
  {
    auto c = s.client();
    for (int i = 0; i < N; ++i) {
      const StreamResult r = post_stream(*c, "/v1/completions", completion(ps[i], max_tokens, true));
      ASSERT_EQ(r.status, 200);
      ASSERT_TRUE(r.done);
      solo[i] = r.text;
    }
  }
  const uint64_t steps_before = s.srv->stats().steps;

  std::vector<std::future<StreamResult>> fut;
  for (int i = 0; i < N; ++i)
    fut.push_back(std::async(std::launch::async, [&, i] {
      auto c = s.client();
      return post_stream(*c, "/v1/completions", completion(ps[i], max_tokens, true));
    }));
  int64_t tokens = 0;
  for (int i = 0; i < N; ++i) {
    const StreamResult r = fut[i].get();
    EXPECT_EQ(r.status, 200) << i << " " << r.transport_error;
    EXPECT_TRUE(r.done) << i;
    EXPECT_EQ(r.text, solo[i]) << "request " << i << " differs when batched";
    ASSERT_FALSE(r.events.empty());
    tokens += max_tokens;
  }
  // Batching happened: far fewer forward steps than tokens generated.
  const uint64_t steps = s.srv->stats().steps - steps_before;
  EXPECT_LT(steps, static_cast<uint64_t>(tokens / 4)) << steps << " steps for " << tokens << " tokens";
  EXPECT_TRUE(s.wait_idle()) << s.srv->metrics_text();
}

TEST(Server, PrefixCacheReusesBlocksWithIdenticalOutput) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  LiveServer s(stories_options(model, 2));
  ASSERT_TRUE(s.wait());
  auto c = s.client();
  const std::string prompt =
      "Once upon a time there was a little girl named Lily. She loved to play outside with her dog. One day";
  const HttpResult a = post(*c, "/v1/completions", completion(prompt, 20).dump());
  const HttpResult b = post(*c, "/v1/completions", completion(prompt, 20).dump());
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(a.j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_GE(b.j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 16);
  EXPECT_EQ(a.j["choices"][0]["text"], b.j["choices"][0]["text"]);
  EXPECT_TRUE(s.wait_idle());
}

TEST(Server, KvExhaustionPreemptsAndResumesWithoutCorruption) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 4, 128);
  o.max_kv_blocks = 12;  // 192 positions for 4 sequences that want ~80 each
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  const auto ps = prompts(4);
  auto req = [&](int i) {
    json j = completion(ps[i], 60);
    j["ignore_eos"] = true;
    return j.dump();
  };
  std::vector<std::string> solo;
  {
    auto c = s.client();
    for (int i = 0; i < 4; ++i) {
      const HttpResult r = post(*c, "/v1/completions", req(i));
      ASSERT_EQ(r.status, 200) << r.body;
      solo.push_back(r.j["choices"][0]["text"]);
    }
  }
  std::vector<std::future<HttpResult>> fut;
  for (int i = 0; i < 4; ++i)
    fut.push_back(std::async(std::launch::async, [&, i] {
      auto c = s.client();
      return post(*c, "/v1/completions", req(i));
    }));
  for (int i = 0; i < 4; ++i) {
    const HttpResult r = fut[i].get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.j["choices"][0]["text"], solo[i]) << i;
    EXPECT_EQ(r.j["usage"]["completion_tokens"], 60);
    EXPECT_EQ(r.j["choices"][0]["finish_reason"], "length");
  }
  EXPECT_GT(s.srv->stats().preemptions, 0u) << s.srv->metrics_text();
  EXPECT_TRUE(s.wait_idle());
}

TEST(Server, MixedLoadUnderKvPressureWithDisconnects) {
  // Streams, waiting, preemption and hang-ups at once: the completed streams still equal their
  // solo runs, the hung-up ones are cancelled, and every block comes back.
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 6, 128);
  o.max_kv_blocks = 20;
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  constexpr int N = 12;
  const auto ps = prompts(N);
  auto body = [&](int i) {
    json j = completion(ps[i], 50, true);
    j["ignore_eos"] = true;
    return j;
  };
  std::vector<std::string> solo(N);
  {
    auto c = s.client();
    for (int i = 0; i < N; ++i) solo[i] = post_stream(*c, "/v1/completions", body(i)).text;
  }
  std::vector<std::future<StreamResult>> fut;
  for (int i = 0; i < N; ++i)
    fut.push_back(std::async(std::launch::async, [&, i] {
      auto c = s.client();
      int seen = 0;
      const bool hang_up = i % 4 == 3;
      return post_stream(*c, "/v1/completions", body(i), [&](const json&) { return !hang_up || ++seen < 3; });
    }));
  for (int i = 0; i < N; ++i) {
    const StreamResult r = fut[i].get();
    if (i % 4 == 3) {
      EXPECT_FALSE(r.done) << i;
    } else {
      EXPECT_TRUE(r.done) << i;
      EXPECT_EQ(r.text, solo[i]) << i;
      EXPECT_EQ(r.finish_reason, "length") << i;
    }
  }
  EXPECT_TRUE(s.wait_idle()) << s.srv->metrics_text();
  EXPECT_GT(s.srv->stats().preemptions, 0u);
}

TEST(Server, ClientDisconnectMidStreamFreesBlocks) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  LiveServer s(stories_options(model, 2, 2048));
  ASSERT_TRUE(s.wait());
  auto c = s.client();
  json body = completion("Once upon a time", 2000, true);
  body["ignore_eos"] = true;
  int seen = 0;
  const StreamResult r = post_stream(*c, "/v1/completions", body, [&](const json&) { return ++seen < 5; });
  EXPECT_FALSE(r.done);
  EXPECT_TRUE(s.wait_idle()) << s.srv->metrics_text();
  // It was cancelled, not run to the end.
  const std::string m = s.srv->metrics_text();
  EXPECT_NE(m.find("rocforge_requests_cancelled_total 1"), std::string::npos) << m;
}

TEST(Server, ClientGivingUpOnANonStreamedRequestCancelsIt) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 1, 4096);
  o.slow_response_ms = 0;  // heartbeats from the start
  o.heartbeat_ms = 5;
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  {
    // The client hangs up as soon as the first heartbeat byte arrives.
    auto c = s.client();
    json body = completion("Once upon a time", 4000);
    body["ignore_eos"] = true;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    std::string got;
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      got.append(d, n);
      return false;
    };
    c->send(req);
    EXPECT_EQ(got.substr(0, 1), " ");
  }
  EXPECT_TRUE(s.wait_idle()) << s.srv->metrics_text();
  const std::string m = s.srv->metrics_text();
  EXPECT_NE(m.find("rocforge_requests_cancelled_total 1"), std::string::npos) << m;
  // A patient client gets the whole response, heartbeat spaces and all.
  auto c = s.client();
  const HttpResult r = post(*c, "/v1/completions", completion("Once upon a time", 300).dump());
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.j.is_object()) << r.body.substr(0, 200);
  EXPECT_EQ(r.j["object"], "text_completion");
}

TEST(Server, OverloadGets503WithRetryAfterAndNothingIsTruncated) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  auto o = stories_options(model, 1, 2048);
  o.max_queue = 2;
  LiveServer s(o);
  ASSERT_TRUE(s.wait());
  // Long generations, so that all requests arrive while the first is still running.
  json body = completion("Once upon a time", 1000);
  body["ignore_eos"] = true;
  std::string reference;
  {
    auto c = s.client();
    const HttpResult r = post(*c, "/v1/completions", body.dump());
    ASSERT_EQ(r.status, 200);
    reference = r.j["choices"][0]["text"];
  }
  constexpr int N = 12;
  std::vector<std::future<HttpResult>> fut;
  for (int i = 0; i < N; ++i)
    fut.push_back(std::async(std::launch::async, [&] {
      auto c = s.client();
      return post(*c, "/v1/completions", body.dump());
    }));
  int ok = 0, busy = 0;
  std::string statuses;
  for (auto& f : fut) {
    const HttpResult r = f.get();
    statuses += std::to_string(r.status) + " ";
    if (r.status == 200) {
      ++ok;
      EXPECT_EQ(r.j["usage"]["completion_tokens"], 1000);
      EXPECT_EQ(r.j["choices"][0]["text"], reference);
    } else {
      EXPECT_EQ(r.status, 503) << r.body;
      ++busy;
      EXPECT_EQ(r.j["error"]["code"], "overloaded");
      bool retry_after = false;
      for (const auto& [k, v] : r.headers) retry_after |= k == "Retry-After";
      EXPECT_TRUE(retry_after);
    }
  }
  EXPECT_EQ(ok + busy, N);  // every request answered one way or the other
  EXPECT_GE(ok, 3) << statuses << "\n" << s.srv->metrics_text();  // the running one + a full queue
  EXPECT_GE(busy, 1);
  EXPECT_TRUE(s.wait_idle());
}

TEST(Server, ChatStopStringsAndSeeds) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  LiveServer s(stories_options(model, 2));
  ASSERT_TRUE(s.wait());
  auto c = s.client();
  const json base = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                     {"max_tokens", 40},
                     {"temperature", 0}};
  const HttpResult full = post(*c, "/v1/chat/completions", base.dump());
  ASSERT_EQ(full.status, 200) << full.body;
  EXPECT_EQ(full.j["object"], "chat.completion");
  EXPECT_EQ(full.j["choices"][0]["message"]["role"], "assistant");
  const std::string text = full.j["choices"][0]["message"]["content"];
  ASSERT_GT(text.size(), 20u);

  // A stop string cuts the text right before its first occurrence.
  const std::string stop = text.substr(10, 4);
  json with_stop = base;
  with_stop["stop"] = json::array({"zzzz-never", stop});
  const HttpResult cut = post(*c, "/v1/chat/completions", with_stop.dump());
  ASSERT_EQ(cut.status, 200);
  EXPECT_EQ(cut.j["choices"][0]["message"]["content"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cut.j["choices"][0]["finish_reason"], "stop");
  // Streaming with the stop string gives the same text.
  json ws = with_stop;
  ws["stream"] = true;
  const StreamResult sr = post_stream(*c, "/v1/chat/completions", ws);
  EXPECT_EQ(sr.text, text.substr(0, text.find(stop)));
  EXPECT_EQ(sr.finish_reason, "stop");

  // Sampling: the same seed gives the same text, another seed (almost surely) another.
  auto sampled = [&](uint64_t seed) {
    json j = base;
    j["temperature"] = 1.0;
    j["seed"] = seed;
    return post(*c, "/v1/chat/completions", j.dump()).j["choices"][0]["message"]["content"].get<std::string>();
  };
  const std::string s1 = sampled(42), s2 = sampled(42), s3 = sampled(4242);
  EXPECT_EQ(s1, s2);
  EXPECT_NE(s1, s3);
}

TEST(Server, TokenizeDetokenizeModelsHealthMetrics) {
  ROCFORGE_REQUIRE_FIXTURE(model, kModel);
  LiveServer s(stories_options(model, 1));
  ASSERT_TRUE(s.wait());
  auto c = s.client();
  const HttpResult t = post(*c, "/tokenize", json{{"content", "Hello world"}}.dump());
  ASSERT_EQ(t.status, 200);
  EngineOptions eo;
  eo.model_path = model.string();
  eo.device = "cpu";  // as the server's (server_fixture.h)
  auto e = Engine::load(eo);
  const auto ids = e->tokenizer().encode("Hello world", false, true);
  EXPECT_EQ(t.j["tokens"].get<std::vector<int32_t>>(), ids);
  const HttpResult d = post(*c, "/detokenize", json{{"tokens", ids}}.dump());
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.j["content"], "Hello world");

  const HttpResult m = get(*c, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.j["data"][0]["id"], "stories260K");
  EXPECT_EQ(get(*c, "/health").status, 200);
  const HttpResult met = get(*c, "/metrics");
  ASSERT_EQ(met.status, 200);
  for (const char* name : {"rocforge_requests_total{endpoint=\"/tokenize\",status=\"200\"} 1", "rocforge_kv_blocks_used 0",
                           "rocforge_queue_depth 0", "rocforge_time_to_first_token_seconds_bucket",
                           "rocforge_inter_token_latency_seconds_count", "rocforge_tokens_per_second"})
    EXPECT_NE(met.body.find(name), std::string::npos) << name;
}

TEST(Server, HealthIs503WhileLoading) {
  // A FIFO as the model file: opening it blocks until a writer appears, so loading hangs for as
  // long as the test wants; then the writer closes it empty and loading fails.
  const auto dir = temp_dir();
  const std::string fifo = (dir / "model.gguf").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  server::ServerOptions o;
  o.engine.model_path = fifo;
  o.port = 0;
  LiveServer s(o);
  // Unblocks the loader (also when an assertion below fails, before ~LiveServer joins it): a
  // non-blocking open for writing succeeds once the loader is waiting in open() for reading.
  struct Unblock {
    std::string path;
    bool done = false;
    void operator()() {
      for (int i = 0; i < 500 && !done; ++i) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) {
          ::close(fd);
          done = true;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    }
    ~Unblock() { (*this)(); }
  } unblock{fifo};
  auto c = s.client(5);
  const HttpResult h = get(*c, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.j["status"], "loading");
  const HttpResult g = post(*c, "/v1/completions", completion("x", 1).dump());
  EXPECT_EQ(g.status, 503);
  EXPECT_EQ(g.j["error"]["code"], "model_loading");
  unblock();  // the loader reads an empty file and fails
  EXPECT_FALSE(s.wait());
  EXPECT_EQ(get(*c, "/health").status, 500);
  EXPECT_EQ(post(*c, "/v1/completions", completion("x", 1).dump()).status, 500);
}

}  // namespace
}  // namespace rocforge::test
