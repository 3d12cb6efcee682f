// rocforge run - generate text, streaming it as it is produced.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "rocforge/chat_template.h"  // render_chat_template, resolve_chat_template
#include "rocforge/engine.h"

namespace rocforge::cli {
namespace {

std::atomic<int> g_interrupts{0};

void on_sigint(int) {
  // First Ctrl-C stops the current generation; a second one (before it stops) exits.
  if (g_interrupts.fetch_add(1) >= 1) std::_Exit(130);
}

// Renders the conversation with the chat template and tokenizes it (special tokens parsed).
std::vector<int32_t> chat_prompt(const Engine& e, const std::string& tmpl, const std::vector<ChatMessage>& msgs) {
  const Tokenizer& tok = e.tokenizer();
  const std::string bos = tok.bos_id() >= 0 ? tok.token_to_piece(tok.bos_id()) : "";
  const std::string eos = tok.eos_id() >= 0 ? tok.token_to_piece(tok.eos_id()) : "";
  return encode_chat_prompt(tok, render_chat_template(tmpl, msgs, true, bos, eos));
}

void print_timings(const GenerateResult& r, double load_s) {
  std::fprintf(stderr, "\n\n[load %.2f s | prompt %d tokens, %.2f s, %.1f tok/s | generated %zu tokens, %.2f s, %.1f tok/s | stop: %s]\n",
               load_s, r.n_prompt, r.prompt_seconds, r.prompt_seconds > 0 ? r.n_prompt / r.prompt_seconds : 0.0,
               r.tokens.size(), r.gen_seconds, r.gen_seconds > 0 ? r.tokens.size() / r.gen_seconds : 0.0,
               stop_reason_name(r.reason));
}

}  // namespace

int run_run(int argc, char** argv) {
  CLI::App app{"Generate text with a model", "rocforge run"};
  EngineFlags ef;
  SamplingParams sp;
  std::string prompt, system_prompt, chat_template;
  int n_predict = 128;
  bool chat = false, interactive = false, ignore_eos = false, no_timings = false;
  std::vector<std::string> stop;
  add_engine_flags(app, ef, false);
  add_sampling_flags(app, sp);
  app.add_option("-p,--prompt", prompt, "prompt text (default: empty, i.e. BOS alone)");
  app.add_option("-n,--n-predict", n_predict, "tokens to generate (-1 = until end or context full)");
  app.add_flag("--chat", chat, "apply the model's chat template to the prompt");
  app.add_option("--system", system_prompt, "system message (with --chat / -i)");
  app.add_option("--chat-template", chat_template, "override the chat template: a built-in name or a Jinja file");
  app.add_flag("-i,--interactive", interactive, "interactive chat loop");
  app.add_option("--stop", stop, "stop string (repeatable)");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-generation tokens");
  app.add_flag("--no-timings", no_timings, "do not print the timing summary");
  CLI11_PARSE(app, argc, argv);

  auto engine = Engine::load(finish_engine_flags(ef));
  std::signal(SIGINT, on_sigint);
  Generator gen(*engine, sp);
  GenerateOptions go;
  go.max_tokens = n_predict;
  go.stop = stop;
  go.ignore_eos = ignore_eos;
  auto stream = [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    return g_interrupts.load() == 0;
  };
  const Tokenizer& tok = engine->tokenizer();

  if (!interactive) {
    std::vector<int32_t> ids;
    if (chat) {
      std::vector<ChatMessage> msgs;
      if (!system_prompt.empty()) msgs.push_back({"system", system_prompt});
      msgs.push_back({"user", prompt});
      ids = chat_prompt(*engine, resolve_chat_template(tok, chat_template), msgs);
    } else {
      ids = tok.encode(prompt, /*add_special=*/true);
      if (ids.empty()) ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
      std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    }
    const GenerateResult r = gen.generate(ids, go, stream);
    std::fflush(stdout);
    if (!no_timings) print_timings(r, engine->load_seconds());
    else std::printf("\n");
    return 0;
  }

  // Interactive: the whole conversation is re-rendered each turn; the KV cache keeps the common
  // prefix, so only the new turn is computed.
  const std::string tmpl = resolve_chat_template(tok, chat_template);
  std::vector<ChatMessage> msgs;
  if (!system_prompt.empty()) msgs.push_back({"system", system_prompt});
  std::vector<int32_t> fed;  // tokens in the KV cache
  std::fprintf(stderr, "interactive chat: empty line or Ctrl-D to quit, Ctrl-C stops a reply\n");
  for (;;) {
    std::fprintf(stdout, "\n> ");
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line) || line.empty()) break;
    msgs.push_back({"user", line});
    std::vector<int32_t> ids = chat_prompt(*engine, tmpl, msgs);
    // Keep the KV of the longest common prefix; re-feed the rest of the rendered conversation.
    size_t common = 0;
    while (common < fed.size() && common < ids.size() && fed[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // at least one token must be fed to get logits
    common = gen.rewind(static_cast<int32_t>(common));
    g_interrupts = 0;
    const std::vector<int32_t> fresh(ids.begin() + common, ids.end());
    const GenerateResult r = gen.generate(fresh, go, stream);
    fed = gen.history();
    msgs.push_back({"assistant", r.text});
    if (!no_timings) print_timings(r, engine->load_seconds());
  }
  return 0;
}

}  // namespace rocforge::cli
