#include "server/scheduler.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <random>

#include "core/log.h"
#include "engine/kv_pool.h"
#include "model/executor.h"

namespace rocforge::server {

struct Scheduler::Slot {
  std::shared_ptr<RequestState> req;
  KvSequence seq;
  Sampler sampler;
  std::mt19937_64 draw;  // draws of device sampling, seeded like the host sampler (Generator's rule)
  StreamingDetokenizer detok;
  std::vector<int32_t> tokens;  // prompt + generated; positions [0, seq.n_past) are in the cache
  int32_t n_gen = 0;
  std::string held;             // text withheld while it could be the start of a stop string
  size_t max_stop = 0;
  uint64_t order = 0;           // admission order: older requests win when blocks run out
  bool admitted = false;
  bool finished = false;
  bool evicted = false;         // preempted during the current batch build
  bool in_slot = false;         // counted in in_slots_ (else in queued_)
  Clock::time_point t_last{};

  Slot(std::shared_ptr<RequestState> r, const Tokenizer& tok)
      : req(std::move(r)), sampler(req->params.sampling), draw(req->params.sampling.seed), detok(tok),
        tokens(req->prompt) {
    for (const auto& s : req->params.stop) max_stop = std::max(max_stop, s.size());
  }
  int32_t pending() const { return static_cast<int32_t>(tokens.size()) - seq.n_past; }
};

Scheduler::Scheduler(Engine& engine, Metrics& metrics, const SchedulerOptions& opts)
    : engine_(engine), metrics_(metrics), opts_(opts) {
  stats_.kv_blocks_total = engine_.kv_pool().n_blocks();
  stats_.kv_blocks_free = engine_.kv_pool().n_free();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::shutdown() {
  {
    std::lock_guard lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  std::deque<std::shared_ptr<RequestState>> left;
  {
    std::lock_guard lk(m_);
    left.swap(incoming_);
  }
  for (auto& r : left) {
    {
      std::lock_guard lk(r->m);
      r->done = true;
      r->finish_reason = "error";
      r->error = "server shutting down";
    }
    r->cv.notify_all();
  }
  for (auto& s : active_) finish(*s, "error", "server shutting down");
  for (auto& s : waiting_) finish(*s, "error", "server shutting down");
  active_.clear();
  waiting_.clear();
}

int32_t Scheduler::block_limit() const {
  const int32_t n = engine_.kv_pool().n_blocks();
  return opts_.max_kv_blocks > 0 ? std::min(n, opts_.max_kv_blocks) : n;
}

bool Scheduler::submit(const std::shared_ptr<RequestState>& req) {
  {
    std::lock_guard lk(m_);
    if (stop_) return false;
    // Up to max_queue may wait beyond the slots (--parallel); a request that finds a free slot
    // does not count against the queue.
    if (queued_ + in_slots_ >= opts_.max_queue + engine_.options().n_parallel) return false;
    ++queued_;
    incoming_.push_back(req);
  }
  metrics_.add_prompt_tokens(static_cast<int64_t>(req->prompt.size()));
  cv_.notify_all();
  return true;
}

void Scheduler::notify() { cv_.notify_all(); }

void Scheduler::adjust_counts(int64_t d_queued, int64_t d_slots) {
  std::lock_guard lk(m_);
  queued_ += d_queued;
  in_slots_ += d_slots;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(m_);
  SchedulerStats s = stats_;
  s.queue_depth = queued_;
  s.active = in_slots_;  // exact now; the KV figures are as of the last step
  return s;
}

// Whether `n` more positions fit under the block limit.
bool Scheduler::fits(const Slot& s, int32_t n) const {
  const KvPool& pool = engine_.kv_pool();
  const int32_t B = pool.block_size();
  const int32_t need = (s.seq.n_past + n + B - 1) / B - static_cast<int32_t>(s.seq.blocks.size());
  return need <= 0 || pool.n_used() + need <= block_limit();
}

void Scheduler::emit(Slot& s, const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lk(s.req->m);
    s.req->pending.push_back(text);
  }
  s.req->cv.notify_all();
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error) {
  if (s.finished) return;
  s.finished = true;
  // A stop string already cut the text; otherwise release what was held back.
  if (reason != "stop_string" && reason != "cancelled" && reason != "error") {
    s.held += s.detok.flush();
    emit(s, s.held);
  }
  s.held.clear();
  s.seq.release(engine_.kv_pool());
  const auto now = Clock::now();
  metrics_.observe_request(std::chrono::duration<double>(now - s.req->t_submit).count());
  metrics_.count_finished(reason == "stop_string" ? "stop" : reason);
  // The slot (or queue place) is free from this moment, before the thread gets to erase it, so
  // a client that starts its next request on seeing this one finish is not refused. (After the
  // metrics: whoever sees the counts drop sees the request counted as finished.)
  if (s.in_slot) adjust_counts(0, -1);
  else adjust_counts(-1, 0);
  s.in_slot = false;
  {
    std::lock_guard lk(s.req->m);
    s.req->done = true;
    s.req->finish_reason = reason == "stop_string" ? "stop" : reason;
    s.req->error = error;
  }
  s.req->cv.notify_all();
}

void Scheduler::preempt(Slot* s) {
  // Recomputation: drop the blocks, keep the tokens (prompt + generated so far), and requeue at
  // the front. When it is admitted again, adopt_prefix picks up whatever full blocks are still
  // cached, and the remaining positions are prefilled like a prompt.
  s->seq.release(engine_.kv_pool());
  s->evicted = true;
  s->in_slot = false;
  adjust_counts(+1, -1);
  std::lock_guard lk(m_);
  ++stats_.preemptions;
}

void Scheduler::admit() {
  const int n_parallel = engine_.options().n_parallel;
  KvPool& pool = engine_.kv_pool();
  const int32_t B = pool.block_size();
  while (static_cast<int>(active_.size()) < n_parallel && !waiting_.empty()) {
    Slot& s = *waiting_.front();
    // Admit only if its whole current token list (plus one) would fit, unless nothing runs:
    // admitting into a nearly full pool would just preempt it again.
    const int32_t need = (static_cast<int32_t>(s.tokens.size()) + 1 + B - 1) / B;
    if (!active_.empty() && pool.n_used() + need > block_limit()) break;
    const int32_t reused = s.seq.adopt_prefix(pool, s.tokens);
    if (!s.admitted) {
      std::lock_guard lk(s.req->m);
      s.req->n_cached_prompt = reused;
    }
    if (!s.admitted) s.order = admit_counter_++;  // a resumed sequence keeps its seniority
    s.admitted = true;
    s.in_slot = true;
    adjust_counts(-1, +1);
    active_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

bool Scheduler::build_batch(std::vector<Engine::Work>& work, std::vector<Slot*>& order) {
  KvPool& pool = engine_.kv_pool();
  const int32_t B = pool.block_size();
  int32_t budget = engine_.options().n_batch;

  // Decoding sequences (one pending token) first, oldest first; then prompt chunks, oldest first.
  std::vector<Slot*> cand;
  for (auto& s : active_) cand.push_back(s.get());
  std::sort(cand.begin(), cand.end(), [](const Slot* a, const Slot* b) {
    const bool da = a->pending() == 1, db = b->pending() == 1;
    if (da != db) return da;
    return a->order < b->order;
  });
  auto in_batch = [&](const Slot* s) { return std::find(order.begin(), order.end(), s) != order.end(); };
  auto live_count = [&] {
    int n = 0;
    for (auto& s : active_) n += !s->evicted && !s->finished;
    return n;
  };

  for (Slot* s : cand) {
    if (s->evicted || s->finished || budget <= 0) continue;
    const int32_t pending = s->pending();
    if (pending <= 0) continue;
    int32_t n = std::min(pending, budget);
    for (;;) {
      if (pending > 1) {
        // A prompt chunk may be shortened to what the free blocks can hold.
        const int32_t avail_blocks = block_limit() - pool.n_used();
        const int32_t cap = (static_cast<int32_t>(s->seq.blocks.size()) + std::max(avail_blocks, 0)) * B - s->seq.n_past;
        n = std::min(n, cap);
      }
      if (n > 0 && fits(*s, n) && s->seq.reserve(pool, n)) break;
      // Out of blocks: preempt the newest sequence that is younger than this one and not already
      // in the batch.
      Slot* victim = nullptr;
      for (auto& o : active_)
        if (o.get() != s && !o->evicted && !o->finished && o->order > s->order && !in_batch(o.get()) &&
            (!victim || o->order > victim->order))
          victim = o.get();
      if (victim) {
        preempt(victim);
        n = std::min(pending, budget);
        continue;
      }
      if (live_count() == 1 && order.empty()) {
        // Alone and still no room: the request needs more KV than the pool (or limit) holds.
        finish(*s, "length");
      } else if (pending == 1) {
        // A decoding sequence that cannot grow yields to older ones and resumes later.
        preempt(s);
      }
      n = 0;
      break;
    }
    if (n <= 0 || s->evicted || s->finished) continue;
    work.push_back({&s->seq, s->tokens.data() + s->seq.n_past, n, n == pending});
    order.push_back(s);
    budget -= n;
  }

  // Move preempted sequences back to the queue (front, oldest first).
  std::vector<std::unique_ptr<Slot>> evicted;
  for (auto it = active_.begin(); it != active_.end();) {
    if ((*it)->evicted) {
      evicted.push_back(std::move(*it));
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(evicted.begin(), evicted.end(), [](const auto& a, const auto& b) { return a->order > b->order; });
  for (auto& e : evicted) {
    e->evicted = false;
    waiting_.push_front(std::move(e));
  }
  return !work.empty();
}

void Scheduler::on_token(Slot& s, int32_t id, Clock::time_point now) {
  const Tokenizer& tok = engine_.tokenizer();
  const GenParams& p = s.req->params;
  if (!p.ignore_eos && tok.is_end_of_generation(id)) {
    finish(s, "stop");
    return;
  }
  s.tokens.push_back(id);
  ++s.n_gen;
  if (s.n_gen == 1) {
    metrics_.observe_ttft(std::chrono::duration<double>(now - s.req->t_submit).count());
    std::lock_guard lk(s.req->m);
    s.req->t_first_token = now;
  } else {
    metrics_.observe_inter_token(std::chrono::duration<double>(now - s.t_last).count());
  }
  s.t_last = now;
  {
    std::lock_guard lk(s.req->m);
    s.req->n_generated = s.n_gen;
  }

  s.held += s.detok.push(id);
  // Stop strings: cut at the earliest match; otherwise release all but a possible partial match.
  size_t cut_at = std::string::npos;
  for (const auto& stop : p.stop) {
    if (stop.empty()) continue;
    const size_t at = s.held.find(stop);
    if (at != std::string::npos) cut_at = std::min(cut_at, at);
  }
  if (cut_at != std::string::npos) {
    s.held.resize(cut_at);
    emit(s, s.held);
    s.held.clear();
    finish(s, "stop_string");
    return;
  }
  const size_t keep = s.max_stop ? std::min(s.held.size(), s.max_stop - 1) : 0;
  if (s.held.size() > keep) {
    size_t cut = s.held.size() - keep;
    // Never split a UTF-8 sequence when holding back the tail.
    while (cut > 0 && cut < s.held.size() && (static_cast<unsigned char>(s.held[cut]) & 0xC0) == 0x80) --cut;
    emit(s, s.held.substr(0, cut));
    s.held.erase(0, cut);
  }
  if (p.max_tokens >= 0 && s.n_gen >= p.max_tokens) {
    finish(s, "length");
  } else if (static_cast<int32_t>(s.tokens.size()) > engine_.ctx_size()) {
    finish(s, "length");  // the new token has no position left to be fed at
  }
}

int Scheduler::chain_length(const std::vector<Engine::Work>& work, const std::vector<Slot*>& order) {
  // Only a lone decoding stream with nobody waiting: a chain delays other requests' admission and
  // prompt chunks by its length (~5 ms for a 1B, ~20 ms for an 8B on an H100).
  if (!opts_.chain_decode || work.size() != 1 || work[0].n_tokens != 1 || !work[0].want_logits || active_.size() != 1 ||
      !waiting_.empty())
    return 0;
  {
    std::lock_guard lk(m_);
    if (!incoming_.empty()) return 0;
  }
  const Slot& s = *order[0];
  const int n = engine_.chain_steps();
  const int32_t max_tokens = s.req->params.max_tokens;
  // Whole chains only (another length is another graph to capture), within the tokens still wanted,
  // the context and the KV blocks this scheduler may use.
  if (n < 2 || (max_tokens >= 0 && max_tokens - s.n_gen < n) || s.seq.n_past + n > engine_.ctx_size() ||
      !fits(s, n))
    return 0;
  return n;
}

bool Scheduler::chain_step(Slot& s, const Engine::Work& w, int n, float first_u, std::vector<int32_t>& tokens) {
  // Step k draws the k-th u, as single steps do; a declined chain leaves the draws where they were.
  const std::mt19937_64 saved = s.draw;
  std::vector<float> u(n);
  u[0] = first_u;
  for (int k = 1; k < n; ++k) u[k] = static_cast<float>(s.draw() >> 40) * 0x1p-24f;
  if (engine_.step_sample_chain(w, s.req->params.sampling, u, s.tokens, tokens)) return true;
  s.draw = saved;
  tokens.clear();
  return false;
}

void Scheduler::loop() {
  for (;;) {
    std::deque<std::shared_ptr<RequestState>> fresh;
    {
      std::unique_lock lk(m_);
      cv_.wait(lk, [&] { return stop_ || !incoming_.empty() || !active_.empty() || !waiting_.empty(); });
      if (stop_) return;
      fresh.swap(incoming_);
    }
    for (auto& r : fresh) {
      try {
        waiting_.push_back(std::make_unique<Slot>(r, engine_.tokenizer()));
      } catch (const std::exception& e) {  // e.g. sampling parameters the sampler rejects
        {
          std::lock_guard lk(r->m);
          r->done = true;
          r->finish_reason = "error";
          r->error = e.what();
        }
        r->cv.notify_all();
        adjust_counts(-1, 0);
      }
    }

    // 1. Cancellations (client gone): free blocks before anything else runs.
    for (auto& s : active_)
      if (s->req->cancelled.load()) finish(*s, "cancelled");
    for (auto& s : waiting_)
      if (s->req->cancelled.load()) finish(*s, "cancelled");
    std::erase_if(active_, [](const auto& s) { return s->finished; });
    std::erase_if(waiting_, [](const auto& s) { return s->finished; });

    // 2-3. Admission and the batch.
    admit();
    std::vector<Engine::Work> work;
    std::vector<Slot*> order;
    build_batch(work, order);
    if (work.empty() && !active_.empty()) {
      // Cannot happen by construction (the oldest sequence can always preempt the others); guard
      // against a spin anyway.
      log::warn("scheduler: no sequence could be scheduled; failing the oldest");
      finish(*active_.front(), "error", "KV cache exhausted");
    }

    // 4. One forward pass, then a token for every sequence that produced logits.
    if (!work.empty()) {
      if (opts_.on_step) {
        std::vector<std::pair<const RequestState*, int32_t>> items;
        for (size_t i = 0; i < work.size(); ++i) items.emplace_back(order[i]->req.get(), work[i].n_tokens);
        opts_.on_step(items);
      }
      const auto t0 = Clock::now();
      bool ok = true;
      // Where every row's sampling can run on the device (GPU executor), the step
      // returns only the sampled ids: no logits rows to copy back, no host sort over the vocabulary.
      std::vector<const SamplingParams*> params;
      std::vector<std::span<const int32_t>> histories;  // what each row's penalties count
      std::vector<float> draws;
      static const bool device_sampling = [] {  // ROCFORGE_DEVICE_SAMPLING=0: host sampling (A/B runs)
        const char* v = std::getenv("ROCFORGE_DEVICE_SAMPLING");
        return !(v && std::string(v) == "0");
      }();
      bool on_device = device_sampling;
      for (size_t i = 0; i < work.size() && on_device; ++i) {
        if (!work[i].want_logits) continue;
        const SamplingParams& p = order[i]->req->params.sampling;
        on_device = device_samplable(p);
        params.push_back(&p);
        histories.emplace_back(order[i]->tokens);
      }
      if (on_device)
        for (size_t i = 0; i < work.size(); ++i)
          if (work[i].want_logits) draws.push_back(static_cast<float>(order[i]->draw() >> 40) * 0x1p-24f);  // [0, 1)
      std::vector<int32_t> sampled;
      const int chain = on_device && !params.empty() ? chain_length(work, order) : 0;
      try {
        if (chain > 0 && chain_step(*order[0], work[0], chain, draws[0], sampled)) {
          // sampled holds the chain's ids (handled below)
        } else if (!(on_device && !params.empty() && engine_.step_sample(work, params, draws, histories, sampled))) {
          sampled.clear();
          engine_.step(work, logits_);
        }
      } catch (const std::exception& e) {
        log::error("scheduler: step failed: {}", e.what());
        for (Slot* s : order) finish(*s, "error", e.what());
        ok = false;
      }
      const auto now = Clock::now();
      int64_t batch_tokens = 0;
      for (const auto& w : work) batch_tokens += w.n_tokens;
      const bool chained = ok && chain > 0 && static_cast<int>(sampled.size()) == chain;
      metrics_.observe_step(std::chrono::duration<double>(now - t0).count(), chained ? chain : batch_tokens);
      if (chained) {
        // The chain's tokens in order, as single steps would have made them; each one kept but the
        // last was the next step's input, committed now. The chain ran as one: its tokens reach
        // the client together, and the metrics see them spread evenly over its time.
        Slot& s = *order[0];
        const int32_t before = s.n_gen;
        for (int k = 0; k < chain && !s.finished; ++k) {
          try {
            on_token(s, sampled[k], t0 + (now - t0) * (k + 1) / chain);
          } catch (const std::exception& e) {
            log::error("scheduler: request failed: {}", e.what());
            finish(s, "error", e.what());
          }
          if (!s.finished && k + 1 < chain) s.seq.commit(engine_.kv_pool(), &s.tokens.back(), 1);
        }
        if (s.n_gen > before) metrics_.add_generated_tokens(s.n_gen - before, now);
      } else if (ok) {
        const int32_t V = engine_.n_vocab();
        size_t row = 0;
        int64_t produced = 0;
        for (size_t i = 0; i < work.size(); ++i) {
          if (!work[i].want_logits) continue;
          Slot& s = *order[i];
          const size_t r = row++;
          if (s.finished) continue;
          const int32_t before = s.n_gen;
          try {
            const int32_t id = sampled.empty() ? s.sampler.sample(logits_.data() + r * V, V, s.tokens) : sampled[r];
            on_token(s, id, now);
          } catch (const std::exception& e) {  // e.g. a sampled id the tokenizer cannot decode
            log::error("scheduler: request failed: {}", e.what());
            finish(s, "error", e.what());
          }
          produced += s.n_gen - before;
        }
        if (produced) metrics_.add_generated_tokens(produced, now);
      }
    }
    std::erase_if(active_, [](const auto& s) { return s->finished; });

    const KvPool& pool = engine_.kv_pool();
    std::lock_guard lk(m_);
    stats_.active = static_cast<int64_t>(active_.size());
    stats_.kv_blocks_total = pool.n_blocks();
    stats_.kv_blocks_used = pool.n_used();
    stats_.kv_blocks_free = pool.n_free();
    stats_.prefix_cache_hits = pool.prefix_hits();
    if (!work.empty()) ++stats_.steps;
  }
}

}  // namespace rocforge::server
