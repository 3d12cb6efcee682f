// generator.cpp - one sequence: prompt in chunks, then sample/decode token by token.
#include <algorithm>
#include <chrono>
#include <random>

#include "engine/kv_pool.h"
#include "model/batch.h"
#include "model/executor.h"
#include "rocforge/engine.h"

namespace rocforge {
namespace {

void check_room(int64_t n_past, size_t n, int64_t ctx) {
  if (n_past + static_cast<int64_t>(n) > ctx)
    throw Error("prompt too long: " + std::to_string(n_past + static_cast<int64_t>(n)) +
                " tokens exceed the context size " + std::to_string(ctx) + " (raise --ctx-size)");
}

}  // namespace

Generator::Generator(Engine& engine, const SamplingParams& params)
    : engine_(engine), sampler_(params), seq_(std::make_unique<KvSequence>()) {}

Generator::~Generator() { seq_->release(engine_.kv_pool()); }

int32_t Generator::n_past() const { return seq_->n_past; }

void Generator::reset() {
  seq_->release(engine_.kv_pool());
  history_.clear();
  logits_ = {};
}

int32_t Generator::rewind(int32_t n) {
  const int32_t kept = seq_->truncate(engine_.kv_pool(), n);
  history_.resize(kept);
  logits_ = {};
  return kept;
}

const std::vector<float>& Generator::feed(const std::vector<int32_t>& tokens) {
  const std::span<const float> rows = feed_view(tokens);
  if (rows.data() != own_logits_.data()) own_logits_.assign(rows.begin(), rows.end());
  logits_ = own_logits_;
  return own_logits_;
}

std::span<const float> Generator::feed_view(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return logits_;
  check_room(seq_->n_past, tokens.size(), engine_.ctx_size());
  const int32_t n_batch = engine_.options().n_batch;
  for (size_t off = 0; off < tokens.size(); off += n_batch) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(n_batch, tokens.size() - off));
    if (!seq_->reserve(engine_.kv_pool(), n)) throw Error("KV cache is full");
    const bool last = off + n == tokens.size();
    logits_ = engine_.step_view({{seq_.get(), tokens.data() + off, n, last}});
    logits_serial_ = engine_.executor().view_serial();
  }
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  return logits_;
}

int32_t Generator::feed_and_sample(const std::vector<int32_t>& tokens, float u) {
  const int32_t n_batch = engine_.options().n_batch;
  const size_t last = (tokens.size() - 1) / n_batch * n_batch;  // the last chunk's offset
  check_room(seq_->n_past, tokens.size(), engine_.ctx_size());
  if (last > 0) feed_view(std::vector<int32_t>(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(last)));
  const std::vector<int32_t> rest(tokens.begin() + static_cast<std::ptrdiff_t>(last), tokens.end());
  const auto n = static_cast<int32_t>(rest.size());
  if (!seq_->reserve(engine_.kv_pool(), n)) throw Error("KV cache is full");
  Batch b;
  b.block_tables.push_back(seq_->blocks);
  for (int32_t i = 0; i < n; ++i) b.add(rest[i], seq_->n_past + i, 0, i == n - 1);
  int32_t out = -1;
  const size_t before = history_.size();
  history_.insert(history_.end(), rest.begin(), rest.end());  // the penalties count the fed tokens too
  bool sampled = false;
  try {
    sampled = engine_.executor().forward_sample(b, sampler_.params(), u, history_, &out);
  } catch (...) {
    history_.resize(before);
    throw;
  }
  if (!sampled) {  // no device sampler: the host's
    history_.resize(before);
    feed_view(rest);
    return -1;
  }
  seq_->commit(engine_.kv_pool(), rest.data(), n);
  logits_ = {};  // the step's logits stayed on the device
  return out;
}

void Generator::feed_all_logits(const std::vector<int32_t>& tokens, std::vector<float>& all) {
  const int32_t V = engine_.n_vocab();
  all.clear();
  std::vector<float> chunk;
  const int32_t n_batch = engine_.options().n_batch;
  if (seq_->n_past + static_cast<int64_t>(tokens.size()) > engine_.ctx_size()) throw Error("too many tokens for the context size");
  for (size_t off = 0; off < tokens.size(); off += n_batch) {
    const int32_t n = static_cast<int32_t>(std::min<size_t>(n_batch, tokens.size() - off));
    if (!seq_->reserve(engine_.kv_pool(), n)) throw Error("KV cache is full");
    // Engine::step yields logits only after a work item's last token; perplexity needs every
    // position's, so the chunk goes to the executor directly with logits on for all tokens.
    Batch b;
    b.block_tables.push_back(seq_->blocks);
    for (int32_t i = 0; i < n; ++i) b.add(tokens[off + i], seq_->n_past + i, 0, true);
    engine_.executor().forward(b, chunk);
    seq_->commit(engine_.kv_pool(), tokens.data() + off, n);
    all.insert(all.end(), chunk.begin(), chunk.end());
  }
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  own_logits_.assign(all.end() - V, all.end());
  logits_ = own_logits_;
}

int32_t Generator::sample() {
  if (logits_.empty()) throw Error("sample() before any token was fed");
  if (logits_.data() != own_logits_.data() && engine_.executor().view_serial() != logits_serial_)
    throw Error("Generator::sample: the last logits were overwritten by another step on this engine");
  scratch_.assign(logits_.begin(), logits_.end());
  return sampler_.sample(scratch_.data(), static_cast<int32_t>(scratch_.size()), history_);
}

GenerateResult Generator::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                   const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.n_prompt = static_cast<int32_t>(prompt.size());
  // Device-side sampling: where the parameters allow it (device_samplable; penalties count the
  // history, handed to the executor) an executor that can sample where the logits are (GPU) runs each step,
  // the prompt's last chunk included, and returns only the next token id.
  // Its draws come from this generation's own generator, seeded like the host sampler: the same seed
  // gives the same tokens on the same device.
  const SamplingParams& sp = sampler_.params();
  const bool device_sampling = device_samplable(sp);
  std::mt19937_64 draw(sp.seed);
  auto next_u = [&] { return static_cast<float>(draw() >> 40) * 0x1p-24f; };  // [0, 1) exactly in float
  int32_t next = -1;  // token sampled on the device with the last step (-1: none)
  // Chained steps (Executor::forward_sample_steps): the ids the device sampled past the current
  // token, ahead[i] fed by ahead[i - 1] (ahead[0] by the token that started the chain). Step k of a
  // chain draws the k-th u from here on, as single steps would: the same tokens either way.
  std::vector<int32_t> ahead;
  size_t ahead_at = 0;  // ahead[ahead_at] is the next token; its input is fed but not committed
  int chain_max = engine_.chain_steps();
  std::vector<float> us, spare_u;  // spare_u: drawn for a chain that did not run, used first
  auto take_u = [&] {
    if (spare_u.empty()) return next_u();
    const float x = spare_u.front();
    spare_u.erase(spare_u.begin());
    return x;
  };
  // Feeds `id` (the last token produced) and returns the device's next token, or -1 (the host samples).
  auto step = [&](int32_t id) -> int32_t {
    if (ahead_at < ahead.size()) {  // that step already ran in the chain: commit its input
      seq_->commit(engine_.kv_pool(), &id, 1);
      history_.push_back(id);
      return ahead[ahead_at++];
    }
    ahead.clear(), ahead_at = 0;
    // A whole chain where the tokens still wanted after id (each step makes one) and the room left
    // in the context allow it, else single steps: a chain of another length is another graph to
    // capture, which costs more than the few single steps at the end.
    const int64_t want = opts.max_tokens >= 0 ? opts.max_tokens - static_cast<int64_t>(r.tokens.size()) : chain_max;
    const int64_t room = engine_.ctx_size() - seq_->n_past;
    const int n = chain_max;
    if (n < 2 || want < n || room < n) return feed_and_sample({id}, take_u());
    us.resize(n);
    for (float& x : us) x = take_u();
    history_.push_back(id);  // the chain's penalties count its first input too
    bool chained = false;
    try {
      chained = engine_.step_sample_chain({seq_.get(), &id, 1, true}, sp, us, history_, ahead);
    } catch (...) {
      history_.pop_back();
      throw;
    }
    if (!chained) {  // one step at a time from here on
      history_.pop_back();
      chain_max = 0;
      ahead.clear();
      spare_u.insert(spare_u.begin(), us.begin() + 1, us.end());
      return feed_and_sample({id}, us[0]);
    }
    logits_ = {};  // the steps' logits stayed on the device
    ahead_at = 1;
    return ahead[0];
  };

  const auto t0 = clock::now();
  if (device_sampling && !prompt.empty()) next = feed_and_sample(prompt, next_u());
  else feed_view(prompt);
  const auto t1 = clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  const Tokenizer& tok = engine_.tokenizer();
  // Text generated after a prompt of special tokens only (e.g. BOS alone, or a fresh chat turn's
  // control tokens) starts the text: SentencePiece's leading space is dropped, as decode() does.
  const bool at_text_start = tok.decode(history_, /*skip_special=*/true).empty();
  StreamingDetokenizer detok(tok, /*skip_special=*/true, at_text_start);
  std::string held;  // text withheld while it could still be the start of a stop string
  auto emit = [&](const std::string& s) -> bool {
    r.text += s;
    return on_text ? on_text(s) : true;
  };
  auto max_stop = size_t{0};
  for (const auto& s : opts.stop) max_stop = std::max(max_stop, s.size());

  for (;;) {
    if (opts.max_tokens >= 0 && static_cast<int32_t>(r.tokens.size()) >= opts.max_tokens) {
      r.reason = StopReason::MaxTokens;
      break;
    }
    const int32_t id = next >= 0 ? next : sample();
    next = -1;
    if (!opts.ignore_eos && tok.is_end_of_generation(id)) {
      r.reason = StopReason::EndOfGeneration;
      break;
    }
    r.tokens.push_back(id);
    held += detok.push(id);
    // Stop strings: cut at the first match; otherwise release all but a possible partial match.
    bool stopped = false;
    for (const auto& s : opts.stop) {
      if (s.empty()) continue;
      const size_t at = held.find(s);
      if (at != std::string::npos) {
        held.resize(at);
        stopped = true;
      }
    }
    if (stopped) {
      emit(held);
      held.clear();
      r.reason = StopReason::StopString;
      break;
    }
    const size_t keep = max_stop ? std::min(held.size(), max_stop - 1) : 0;
    if (held.size() > keep) {
      // Never split a UTF-8 sequence when holding back the tail.
      size_t cut = held.size() - keep;
      while (cut > 0 && cut < held.size() && (static_cast<unsigned char>(held[cut]) & 0xC0) == 0x80) --cut;
      if (!emit(held.substr(0, cut))) {
        r.reason = StopReason::Cancelled;
        held.erase(0, cut);
        break;
      }
      held.erase(0, cut);
    }
    if (seq_->n_past + 1 > engine_.ctx_size()) {
      r.reason = StopReason::ContextFull;
      break;
    }
    // Fed either way; -1 from the device path means the host samples the next token.
    if (device_sampling) next = step(id);
    else feed_view({id});
  }
  if (r.reason != StopReason::StopString) {
    held += detok.flush();
    if (!held.empty()) emit(held);
  }
  r.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace rocforge
