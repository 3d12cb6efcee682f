// gpu_executor.cpp - the forward pass of cpu_forward.cpp, step for step, as kernel launches on one
// stream: weights uploaded once, K/V in device pools, only token ids / positions / block tables go
// up and the wanted logits come down.
//
// Hybrid: layers [0, n_cpu) run in a CpuForward, whose output hidden state is uploaded; layers
// [n_cpu, L) and the head run here. With n_cpu == 0 the embedding lookup runs on the GPU too.
// This file: layer planning, the step (inputs, graphs, head); the class and its set-up are in
// gpu_executor_impl.h, one decoder layer's launches in gpu_layer.cpp.
#include "model/gpu_executor.h"

#include "model/gpu_executor_impl.h"

namespace rocforge {

using gpu_detail::activation_bytes;
using gpu_detail::kv_bytes_per_layer;
using gpu_detail::layer_weight_bytes;
using gpu_detail::weight_bytes;

GpuPlan plan_gpu_layers(const Model& m, const KvConfig& kv, const device::GpuInfo& gpu, int requested, int max_batch) {
  return plan_gpu_stages(m, kv, {gpu}, false, requested, max_batch);
}

GpuPlan plan_gpu_stages(const Model& m, const KvConfig& kv, const std::vector<device::GpuInfo>& gpus, bool spread,
                        int requested, int max_batch) {
  const auto& c = m.config();
  const uint64_t reserve = 512ull << 20;  // per device: the runtime's own allocations, fragmentation
  const uint64_t act = activation_bytes(c, max_batch);
  const uint64_t head = weight_bytes(m.output()) + weight_bytes(m.output_norm());
  const uint64_t table = weight_bytes(m.token_embd());
  const int want = requested < 0 ? c.n_layer : std::min(requested, c.n_layer);
  const size_t n_dev = gpus.size();
  // A device listed more than once (spread: several stages on one card) shares its memory among them.
  std::vector<uint64_t> avail(n_dev);
  for (size_t d = 0; d < n_dev; ++d) {
    const auto times = std::count_if(gpus.begin(), gpus.end(), [&](const auto& g) { return g.index == gpus[d].index; });
    avail[d] = (gpus[d].free_memory > reserve ? gpus[d].free_memory - reserve : 0) / static_cast<uint64_t>(times);
  }
  // The devices from the one holding the head (and the last layers) backwards through the layers.
  std::vector<size_t> order(n_dev);
  for (size_t d = 0; d < n_dev; ++d) order[d] = spread ? n_dev - 1 - d : d;
  auto layer_need = [&](int l) { return layer_weight_bytes(m.layer(l)) + kv_bytes_per_layer(c, kv); };

  // Layers from the last backwards, each device taking what fits under its cap; a device that takes
  // none is left out. The token table goes with layer 0, unless the head's stage holds both and the
  // output is tied to it (one table then serves both).
  auto place = [&](const std::vector<uint64_t>& cap) {
    GpuPlan p;
    int l = c.n_layer - 1;
    for (size_t o = 0; o < order.size() && p.gpu_layers < want; ++o) {
      const size_t d = order[o];
      const bool is_head = p.stages.empty();
      uint64_t used = act + (is_head ? head : 0);
      GpuStage st{gpus[d].index, l + 1, l + 1, 0};
      while (p.gpu_layers < want && l >= 0) {
        const uint64_t need = layer_need(l) + (l == 0 && !(is_head && c.tied_output) ? table : 0);
        if (used + need > cap[d]) break;
        used += need;
        st.first = l--;
        ++p.gpu_layers;
      }
      if (st.first == st.end) {
        if (is_head) break;  // the head goes with the first device, or nowhere
        continue;
      }
      st.bytes = used;
      p.bytes += used;
      p.stages.insert(p.stages.begin(), st);
    }
    return p;
  };
  GpuPlan p = place(avail);
  if (spread && n_dev > 1 && p.gpu_layers == want) {
    // Each device's room for layers (its free memory beyond its stage's fixed part: activations, the
    // head on the last, the token table on the first) takes that share of the layers' bytes, a layer
    // of slack each so that rounding strands none; kept only where that still places every layer.
    uint64_t layers = 0, slack = 0, room_sum = 0;
    for (int l = c.n_layer - want; l < c.n_layer; ++l) layers += layer_need(l), slack = std::max(slack, layer_need(l));
    std::vector<uint64_t> fixed(n_dev), room(n_dev), cap(n_dev);
    for (size_t d = 0; d < n_dev; ++d) {
      fixed[d] = act + (d == n_dev - 1 ? head : 0) + (d == 0 ? table : 0);
      room[d] = avail[d] > fixed[d] ? avail[d] - fixed[d] : 0;
      room_sum += room[d];
    }
    for (size_t d = 0; d < n_dev; ++d)
      cap[d] = std::min(avail[d], fixed[d] + slack +
                                      static_cast<uint64_t>(static_cast<double>(layers) * static_cast<double>(room[d]) /
                                                            static_cast<double>(std::max<uint64_t>(room_sum, 1))));
    GpuPlan even = place(cap);
    if (even.gpu_layers == want) p = std::move(even);
  }
  if (p.gpu_layers < want) {
    std::string mem;
    for (const auto& g : gpus) mem += (mem.empty() ? "" : " + ") + std::to_string(g.free_memory >> 20);
    p.reason = "only " + std::to_string(p.gpu_layers) + " of " + std::to_string(c.n_layer) + " layers fit in " + mem +
               " MiB of free GPU memory";
  }
  return p;
}

namespace gpu_detail {

// The bucket is a power of two >= 256 in whole KV blocks: split blocks past a sequence's real end
// add nothing, and one graph serves every length up to it.
void GpuExecutor::set_graph_bucket(int len) {
  int bucket = 256;
  while (bucket < len) bucket *= 2;
  max_seq_len_ = (bucket + kv_.block_size - 1) / kv_.block_size * kv_.block_size;
  max_blocks_ = max_seq_len_ / kv_.block_size;
}

void GpuExecutor::reserve_inputs(size_t n_in) {
  if (in_ints_ < n_in) {
    clear_graphs();  // they captured the old buffer
    in_ints_ = n_in * 2;
    in_ = DevBuf(be_, in_ints_ * sizeof(int32_t));
    in_pinned_ = pinned_inputs_ ? HostBuf(be_, in_ints_ * sizeof(int32_t)) : HostBuf();
  }
  in_host_.assign(n_in, 0);
}

// The page-locked copy is free to rewrite: every step ends in a stream sync (step_to_host,
// forward_sample_rows, forward_sample_steps), so the previous step's upload has landed.
void GpuExecutor::upload_inputs(size_t n_in) {
  const void* src = in_host_.data();
  if (void* p = in_pinned_.get()) {
    std::memcpy(p, in_host_.data(), n_in * sizeof(int32_t));
    src = p;
  }
  be_->check(api_.memcpy_h2d(in_.get(), src, n_in * sizeof(int32_t), stream_), "step inputs");
}

void GpuExecutor::reserve_attn_workspace(int n_seq) {
  const size_t ws = api_.attn_decode_workspace(n_seq, c_.n_head, c_.head_dim, max_seq_len_);
  if (workspace_.bytes() < ws) {
    clear_graphs();  // they captured the old one
    workspace_ = DevBuf(be_, ws * 2);
  }
}

int GpuExecutor::run_step(const Batch& b, bool to_host) {
  const int T = b.size();
  reserve_scratch(T);
  head_to_host_ = to_host && logits_host_dev_ && b.n_logits() <= pinned_rows_ && head_stores_to_host_;
  head_out_ = head_to_host_ ? logits_host_dev_ : logits_.get<float>();
  const int n_seq = static_cast<int>(b.block_tables.size());

  // Sequence layout. The engine lays each sequence's tokens out contiguously, in order.
  seq_begin_.assign(n_seq, -1);
  seq_ntok_.assign(n_seq, 0);
  for (int t = 0; t < T; ++t) {
    const int s = b.seq[t];
    if (s < 0 || s >= n_seq) throw Error("batch: token " + std::to_string(t) + " has no sequence");
    if (seq_begin_[s] < 0) seq_begin_[s] = t;
    else if (seq_begin_[s] + seq_ntok_[s] != t || b.pos[t] != b.pos[t - 1] + 1)
      throw Error("batch: the GPU executor needs each sequence's tokens contiguous and in order");
    ++seq_ntok_[s];
  }
  // Decode attention indexes q by sequence: it needs token s to be sequence s's only token.
  all_decode_ = n_seq == T;
  for (int s = 0; s < n_seq && all_decode_; ++s) all_decode_ = seq_ntok_[s] == 1 && seq_begin_[s] == s;
  bool all_rows_out = true;
  for (int t = 0; t < T; ++t) all_rows_out = all_rows_out && b.logits[t];

  std::vector<int32_t> lens(n_seq, 0);
  max_seq_len_ = 1;
  for (int s = 0; s < n_seq; ++s) {
    const auto& tbl = b.block_tables[s];
    for (int32_t blk : tbl)
      if (blk < 0 || blk >= kv_.n_blocks) throw Error("batch: KV block " + std::to_string(blk) + " out of range");
    if (seq_ntok_[s] > 0) {
      const int last_pos = b.pos[seq_begin_[s] + seq_ntok_[s] - 1];
      if (last_pos / kv_.block_size >= static_cast<int>(tbl.size()))
        throw Error("batch: position " + std::to_string(last_pos) + " is beyond its sequence's KV blocks");
      lens[s] = last_pos + 1;
      max_seq_len_ = std::max(max_seq_len_, lens[s]);
    }
  }

  // A graph replays fixed launch shapes: attention is sized for a length bucket (a power of two
  // >= 256; split blocks past a sequence's real end add nothing) and the tables get that stride.
  const bool graphed = use_graphs_ && n_cpu_ == 0 && all_decode_ && all_rows_out;
  if (graphed) {
    set_graph_bucket(max_seq_len_);
  } else {
    max_blocks_ = 1;
    for (const auto& tbl : b.block_tables) max_blocks_ = std::max<int32_t>(max_blocks_, static_cast<int32_t>(tbl.size()));
  }

  // Inputs, staged into one upload.
  const size_t n_in = 3 * size_t(cap_) + size_t(n_seq) * max_blocks_;
  reserve_inputs(n_in);
  if (first_ == 0)
    for (int t = 0; t < T; ++t) {
      if (b.token[t] < 0 || b.token[t] >= c_.n_vocab) throw Error("token id " + std::to_string(b.token[t]) + " out of range");
      in_host_[t] = b.token[t];
    }
  std::copy(b.pos.begin(), b.pos.end(), in_host_.begin() + cap_);
  std::copy(lens.begin(), lens.end(), in_host_.begin() + 2 * cap_);
  for (int s = 0; s < n_seq; ++s) {
    const auto& tbl = b.block_tables[s];
    const size_t n = std::min<size_t>(tbl.size(), size_t(max_blocks_));
    std::copy(tbl.begin(), tbl.begin() + n, in_host_.begin() + 3 * cap_ + size_t(s) * max_blocks_);
  }
  upload_inputs(n_in);
  if (all_decode_) reserve_attn_workspace(n_seq);

  // Hidden state in from the CPU layers (hybrid), or from the stage before on its GPU (a split
  // model: this stream waits for that stage's layers on the device, then copies their output);
  // the stage holding layer 0 embeds on the device.
  if (n_cpu_ > 0) {
    host_x_.resize(size_t(T) * c_.n_embd);
    cpu_->embed(b, host_x_.data());
    cpu_->layers(b, host_x_.data());
    be_->check(api_.memcpy_h2d(x_.get(), host_x_.data(), host_x_.size() * sizeof(float), stream_), "hidden state");
  } else if (upstream_) {
    const float* up = upstream_->run_stage(b);
    use_device();
    int rc = api_.stream_wait_event(stream_, upstream_->done_);
    if (rc == 0) rc = api_.memcpy_peer(x_.get(), dev_, up, upstream_->dev_, size_t(T) * c_.n_embd * sizeof(float), stream_);
    if (rc) be_->check(rc, "hidden state from GPU " + std::to_string(upstream_->dev_) + " to GPU " + std::to_string(dev_));
  }

  if (graphed) {
    const rf_graph g = graph_for({n_seq, max_seq_len_, head_to_host_}, "the decode step",
                                 [&] { launch_step(b, T, n_seq, true); });
    be_->check(api_.graph_launch(g, stream_), "decode step (graph)");
    return T;
  }
  launch_step(b, T, n_seq, all_rows_out);
  return b.n_logits();
}

void GpuExecutor::launch_step(const Batch& b, int T, int n_seq, bool all_rows_out) {
  // A projection's L2 hand-off (prefetch_next) waits on this thread for the next int8 launch to take
  // it; one a launch did not take (a path without it) is dropped here: it may name another stage's
  // or another executor's memory, on another device.
  api_.matvec_prefetch_next(nullptr, 0);
  resid_ = x_.get<float>();
  if (first_ == 0) {
    const WeightRef& e = m_.token_embd();
    be_->check(api_.embed(dev_type(e), token_embd_.buf.get(), e.row_bytes, c_.n_embd, in_tokens(), T, resid_, stream_),
               "embedding");
  }
  pending_ = false;
  for (int l = first_; l < end_; ++l) layer(l, b, T);
  if (!head_) {
    // The next stage copies the residual stream from x_: the pending branch added, or the stream
    // moved there from x2_ (where a fused norm may have left it).
    if (pending_) be_->check(api_.add(resid_, h_.get<float>(), x_.get<float>(), size_t(T) * c_.n_embd, stream_), "residual");
    else if (resid_ != x_.get<float>())
      be_->check(api_.memcpy_d2d(x_.get(), resid_, size_t(T) * c_.n_embd * sizeof(float), stream_), "residual");
    pending_ = false;
    resid_ = x_.get<float>();
    return;
  }

  // Head: the rows that want logits (all of them: straight from x), norm, project.
  int n_out = 0;
  const float* hx = resid_;
  if (!all_rows_out) {
    if (pending_) {
      be_->check(api_.add(resid_, h_.get<float>(), resid_, size_t(T) * c_.n_embd, stream_), "residual");
      pending_ = false;
    }
    for (int t = 0; t < T; ++t) {
      if (!b.logits[t]) continue;
      be_->check(api_.memcpy_d2d(h_.get<float>() + int64_t(n_out) * c_.n_embd, resid_ + int64_t(t) * c_.n_embd,
                                 sizeof(float) * c_.n_embd, stream_), "gather");
      ++n_out;
    }
    hx = h_.get<float>();
  } else {
    n_out = T;
  }
  (void)n_seq;
  if (pending_ && n_out == 1 && all_rows_out) {
    // Decode: the last residual add, the output norm and the int8 input of the head in one launch.
    void* xq = c_.n_embd % 32 == 0 ? xq_.get() : nullptr;
    be_->check(api_.rmsnorm_q8(resid_, h_.get<float>(), output_norm_.buf.get<float>(), h_.get<float>(), xq,
                               c_.n_embd, c_.rms_eps, stream_), "output norm");
    bool ready = xq != nullptr;
    proj(output_weight(), h_.get<float>(), head_out_, 1, &ready);
  } else if (pending_ && all_rows_out) {
    // Decode of a few sequences (the layers left the residual pending): the same, a row each.
    be_->check(api_.rmsnorm_q8_rows(resid_, h_.get<float>(), output_norm_.buf.get<float>(), h_.get<float>(),
                                    xq_.get(), c_.n_embd, n_out, c_.rms_eps, stream_),
               "output norm");
    bool ready = true;
    proj(output_weight(), h_.get<float>(), head_out_, n_out, &ready);
  } else if (n_out > 0) {
    if (pending_) be_->check(api_.add(resid_, h_.get<float>(), resid_, size_t(T) * c_.n_embd, stream_), "residual");
    be_->check(api_.rmsnorm(hx, output_norm_.buf.get<float>(), h_.get<float>(), c_.n_embd, n_out, c_.rms_eps, stream_), "output norm");
    proj(output_weight(), h_.get<float>(), head_out_, n_out);
  }
}

std::span<const float> GpuExecutor::step_to_host(const Batch& b, std::vector<float>& spill) {
  if (b.size() == 0) {
    spill.clear();
    return {};
  }
  use_device();
  const int n_out = run_step(b, /*to_host=*/true);
  const size_t n = size_t(n_out) * c_.n_vocab;
  // Rows that fit land in the page-locked buffer (written there by the head, else one DMA); more
  // rows (a prompt wanting every position's logits) go straight into `spill`.
  const bool pinned = n_out <= pinned_rows_;
  if (!pinned) spill.resize(n);
  float* dst = pinned ? logits_host_.floats() : spill.data();
  if (!head_to_host_ && !skip(kSkipLogitsCopy))
    be_->check(api_.memcpy_d2h(dst, logits_.get(), n * sizeof(float), stream_), "logits");
  be_->check(api_.stream_sync(stream_), "forward step");
  if (pinned || &spill == &view_rows_) ++view_serial_;  // the memory behind views was rewritten
  return {dst, n};
}

std::span<const float> GpuExecutor::forward_view(const Batch& b) { return step_to_host(b, view_rows_); }

void GpuExecutor::forward(const Batch& b, std::vector<float>& logits) {
  const std::span<const float> rows = step_to_host(b, logits);
  if (rows.data() == logits.data()) return;
  if (skip(kSkipLogitsHostCopy)) logits.resize(rows.size());
  else logits.assign(rows.begin(), rows.end());
}

// The device sampler's parameters for one row (or chain step: `what` i), checked as the kernels need.
rf_sample_row GpuExecutor::sample_row(const SamplingParams& p, float u, const char* what, int i) {
  if (!(u >= 0.f && u < 1.f) || !(p.top_p > 0.f) || p.min_p > 1.f)
    throw Error(std::string("sampling: ") + what + " " + std::to_string(i) + " has parameters out of range (u " +
                std::to_string(u) + ", top_p " + std::to_string(p.top_p) + ", min_p " + std::to_string(p.min_p) + ")");
  return {p.temperature, p.top_k, p.top_p, p.min_p, u};
}

// The sampler's workspace (per row: partials and candidate slots, ~8 bytes a vocabulary entry) grows
// to the most rows sampled at once; zeroed once, the kernels leave it so.
void GpuExecutor::reserve_sample_workspace(size_t bytes) {
  if (sample_ws_.bytes() >= bytes) return;
  sample_ws_ = DevBuf(be_, bytes);
  be_->check(api_.memset(sample_ws_.get(), 0, bytes, stream_), "sampler workspace");
}

bool GpuExecutor::forward_sample(const Batch& b, const SamplingParams& p, float u, History history, int32_t* token) {
  if (b.n_logits() != 1) return false;
  std::vector<int32_t> tokens;
  if (!forward_sample_rows(b, {&p}, {u}, {history}, tokens)) return false;
  *token = tokens[0];
  return true;
}

void GpuExecutor::upload_penalties(const std::vector<PenaltyRow>& rows) {
  if (rows.size() > static_cast<size_t>(pen_rows_cap_))
    throw Error("penalties: " + std::to_string(rows.size()) + " rows, room for " + std::to_string(pen_rows_cap_));
  size_t pairs = 0;
  for (const PenaltyRow& r : rows) pairs += r.same_as < 0 ? r.counts.size() : 0;
  if (!pen_d_.get() || pairs > pen_pairs_cap_) {
    // The chains of steps recorded the old addresses.
    for (auto it = graphs_.begin(); it != graphs_.end();)
      if (it->first.sampler & kPenaltyLaunch) {
        api_.graph_destroy(it->second);
        it = graphs_.erase(it);
      } else {
        ++it;
      }
    pen_pairs_cap_ = std::max<size_t>({pairs, 2 * pen_pairs_cap_, 1024});
    pen_d_ = DevBuf(be_, pen_rows_cap_ * sizeof(rf_penalty_row) + pen_pairs_cap_ * 2 * sizeof(int32_t));
  }
  constexpr size_t kRowWords = sizeof(rf_penalty_row) / sizeof(int32_t);
  const size_t head = pen_rows_cap_ * kRowWords;
  pen_host_.assign(head + 2 * pairs, 0);
  size_t at = 0;
  std::vector<rf_penalty_row> done(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const PenaltyRow& r = rows[i];
    rf_penalty_row row{1.f, 0.f, 0.f, static_cast<int32_t>(at), static_cast<int32_t>(r.counts.size()), r.chain_begin,
                       r.chain_end, 0};
    if (r.same_as >= 0) row.begin = done.at(r.same_as).begin, row.count = done.at(r.same_as).count;
    if (r.p) row.repeat = r.p->repeat_penalty, row.presence = r.p->presence_penalty, row.frequency = r.p->frequency_penalty;
    std::memcpy(pen_host_.data() + i * kRowWords, &row, sizeof(row));
    done[i] = row;
    if (r.same_as >= 0) continue;
    for (const auto& [id, n] : r.counts) {
      pen_host_[head + 2 * at] = id;
      pen_host_[head + 2 * at + 1] = n;
      ++at;
    }
  }
  be_->check(api_.memcpy_h2d(pen_d_.get(), pen_host_.data(), pen_host_.size() * sizeof(int32_t), stream_), "penalties");
}

bool GpuExecutor::forward_sample_rows(const Batch& b, const std::vector<const SamplingParams*>& params,
                                      const std::vector<float>& u, const std::vector<History>& histories,
                                      std::vector<int32_t>& tokens) {
  const int rows = b.n_logits();
  if (b.size() == 0 || rows == 0 || static_cast<int>(params.size()) != rows || static_cast<int>(u.size()) != rows)
    return false;
  use_device();
  // The kernels run the host Sampler's chain: penalties rounded as the host does them (penalties.hip),
  // filters on the model's probabilities, the temperature on the draw.
  bool penalized = false;
  for (const SamplingParams* p : params) {
    if (!device_samplable(*p)) return false;
    penalized = penalized || has_penalties(*p);
  }
  if (penalized && histories.size() != static_cast<size_t>(rows)) return false;  // nothing to count
  const size_t ws_bytes = api_.sample_workspace(rows, c_.n_vocab);
  if (ws_bytes == 0) return false;  // a vocabulary beyond the device sampler: the host samples
  reserve_sample_workspace(ws_bytes);
  // The rows' parameters, checked before anything runs, go up ahead of the step. (Staging them and
  // the ids through page-locked memory measured no change: H100, rocforge run 1B / 8B, session 13.)
  sample_host_.resize(rows);
  for (int r = 0; r < rows; ++r) sample_host_[r] = sample_row(*params[r], u[r], "row", r);
  be_->check(api_.memcpy_h2d(sample_rows_.get(), sample_host_.data(), rows * sizeof(rf_sample_row), stream_),
             "sampling parameters");
  if (penalized) {
    reserve_scratch(b.size());  // sizes the penalty rows
    std::vector<PenaltyRow> pen(rows);
    for (int r = 0; r < rows; ++r)
      if (has_penalties(*params[r])) pen[r] = {params[r], penalty_counts(*params[r], histories[r])};
    upload_penalties(pen);
  }
  const int n_out = run_step(b);
  if (n_out != rows) throw Error("forward_sample_rows: the step produced " + std::to_string(n_out) + " logits rows, not " +
                                 std::to_string(rows));
  if (penalized)
    be_->check(api_.penalize_rows(logits_.get<float>(), c_.n_vocab, rows, pen_rows(), pen_pairs(), nullptr, stream_),
               "penalties");
  be_->check(api_.sample_rows(logits_.get<float>(), c_.n_vocab, rows, sample_rows_.get<rf_sample_row>(),
                              sample_host_.data(), token_d_.get<int32_t>(), sample_ws_.get(), sample_ws_.bytes(),
                              stream_),
             "sampling");
  tokens.resize(rows);
  be_->check(api_.memcpy_d2h(tokens.data(), token_d_.get(), rows * sizeof(int32_t), stream_), "sampled tokens");
  be_->check(api_.stream_sync(stream_), "forward step");
  return true;
}

// A chain of decode steps as one graph: the steps' inputs go up together (a region each), step k's
// sampler writes its id where step k + 1's embedding reads its token, and the ids come back in one
// copy at the end. Why: between two single steps the device idles while the host syncs, stages
// the next inputs and launches (and a graph's first kernel cannot start under its predecessor's
// tail); measured on an H100 as 13.6 us a 1B token (2.4%) plus the sampler's copies.
int GpuExecutor::forward_sample_steps(const Batch& b, const SamplingParams& p, const std::vector<float>& u,
                                      History history, std::vector<int32_t>& tokens) {
  const int n = static_cast<int>(u.size());
  if (chain_steps() < 2 || n < 2 || n > kMaxChainSteps || b.size() != 1 || b.n_logits() != 1 ||
      b.block_tables.size() != 1 || b.seq[0] != 0 || !device_samplable(p))
    return 0;
  const bool penalized = has_penalties(p);
  if (penalized && (history.empty() || history.back() != b.token[0])) return 0;  // the history must end with b's token
  use_device();
  const size_t ws_bytes = api_.sample_workspace(1, c_.n_vocab);
  if (ws_bytes == 0) return 0;
  sample_host_.resize(n);
  for (int k = 0; k < n; ++k) sample_host_[k] = sample_row(p, u[k], "step", k);  // checked before anything runs
  if (b.token[0] < 0 || b.token[0] >= c_.n_vocab) throw Error("token id " + std::to_string(b.token[0]) + " out of range");
  const auto& tbl = b.block_tables[0];
  const int pos0 = b.pos[0], last = pos0 + n - 1;
  if (pos0 < 0 || last / kv_.block_size >= static_cast<int>(tbl.size()))
    throw Error("batch: positions " + std::to_string(pos0) + " .. " + std::to_string(last) +
                " are beyond the sequence's KV blocks");
  for (int32_t blk : tbl)
    if (blk < 0 || blk >= kv_.n_blocks) throw Error("batch: KV block " + std::to_string(blk) + " out of range");

  reserve_scratch(1);
  reserve_sample_workspace(ws_bytes);
  if (!chain_tok_d_.get()) {
    chain_tok_d_ = DevBuf(be_, kMaxChainSteps * sizeof(int32_t));
    chain_tok_h_ = HostBuf(be_, kMaxChainSteps * sizeof(int32_t));
    if (!chain_tok_h_.get()) throw Error("forward_sample_steps: no page-locked memory for the sampled ids");
  }

  // The layout of a graphed single step (run_step), one region of inputs per step.
  seq_begin_.assign(1, 0);
  seq_ntok_.assign(1, 1);
  all_decode_ = true;
  set_graph_bucket(last + 1);
  const size_t region = 3 * size_t(cap_) + size_t(max_blocks_), n_in = region * n;
  reserve_inputs(n_in);
  for (int k = 0; k < n; ++k) {
    int32_t* r = in_host_.data() + region * k;
    r[0] = k == 0 ? b.token[0] : 0;  // later steps read their token on the device
    r[cap_] = pos0 + k;
    r[2 * cap_] = pos0 + k + 1;
    std::copy(tbl.begin(), tbl.begin() + std::min<size_t>(tbl.size(), size_t(max_blocks_)), r + 3 * cap_);
  }
  upload_inputs(n_in);
  be_->check(api_.memcpy_h2d(sample_rows_.get(), sample_host_.data(), n * sizeof(rf_sample_row), stream_),
             "sampling parameters");
  reserve_attn_workspace(1);
  // Step k's penalties count the window's part of `history` that is still in it after k more
  // tokens, with the chain's ids it holds (sampled on the device) counted by the kernel.
  if (penalized) {
    std::vector<PenaltyRow> pen(n);
    size_t counted_keep = 0;
    int counted = -1;  // the step whose count the later ones share while their part of history is the same
    for (int k = 0; k < n; ++k) {
      const ChainPenaltyWindow w = chain_penalty_window(p, history.size(), k);
      // A window longer than the history keeps all of it for several steps: counted and sent once.
      if (counted >= 0 && w.history_keep == counted_keep) {
        pen[k] = {&p, {}, w.chain_begin, k, counted};
      } else {
        pen[k] = {&p, penalty_counts(p, history.last(w.history_keep)), w.chain_begin, k};
        counted = k, counted_keep = w.history_keep;
      }
    }
    upload_penalties(pen);
  }

  // Few chains are kept: a new one replaces the oldest. (A capture costs ~1 us a launch recorded, so
  // generation asks only for chains of one length.)
  const GraphKey key{1, max_seq_len_, false, n,
                     api_.sample_launches(&sample_host_[0], 1, c_.n_vocab) | (penalized ? kPenaltyLaunch : 0)};
  bool cached = false;
  for (auto& [k, gr] : graphs_) cached = cached || k == key;
  if (!cached) {
    int chains = 0;
    for (auto& [k, gr] : graphs_) chains += k.steps > 0;
    if (chains >= kMaxChainGraphs)
      for (auto it = graphs_.begin(); it != graphs_.end(); ++it)
        if (it->first.steps > 0) {
          api_.graph_destroy(it->second);
          graphs_.erase(it);
          break;
        }
  }
  head_to_host_ = false;
  head_out_ = logits_.get<float>();
  const rf_graph g = graph_for(key, "a chain of decode steps", [&] {
    struct Reset {  // the regions are the capture's alone: later steps use region 0 and their own token
      GpuExecutor& e;
      ~Reset() { e.in_off_ = 0, e.tok_src_ = nullptr; }
    } reset{*this};
    for (int k = 0; k < n; ++k) {
      in_off_ = region * k;
      tok_src_ = k == 0 ? nullptr : chain_tok_d_.get<int32_t>() + (k - 1);
      launch_step(b, 1, 1, true);
      if (penalized)
        be_->check(api_.penalize_rows(logits_.get<float>(), c_.n_vocab, 1, pen_rows() + k, pen_pairs(),
                                      chain_tok_d_.get<int32_t>(), stream_),
                   "penalties");
      be_->check(api_.sample_rows(logits_.get<float>(), c_.n_vocab, 1, sample_rows_.get<rf_sample_row>() + k,
                                  &sample_host_[k], chain_tok_d_.get<int32_t>() + k, sample_ws_.get(),
                                  sample_ws_.bytes(), stream_),
                 "sampling");
    }
    be_->check(api_.memcpy_d2h(chain_tok_h_.get(), chain_tok_d_.get(), n * sizeof(int32_t), stream_), "sampled tokens");
  });
  be_->check(api_.graph_launch(g, stream_), "chain of decode steps (graph)");
  be_->check(api_.stream_sync(stream_), "chain of decode steps");
  const auto* ids = static_cast<const int32_t*>(chain_tok_h_.get());
  tokens.assign(ids, ids + n);
  return n;
}

}  // namespace gpu_detail

std::unique_ptr<Executor> make_gpu_executor(const Model& m, const KvConfig& kv, const device::Selection& sel,
                                            const GpuPlan& plan, int n_threads, int max_batch) {
  if (!sel.backend) throw Error("no GPU backend loaded");
  if (plan.stages.empty()) throw Error("no layer of the model is planned on a GPU");
  // Stage by stage in layer order, each owning the one before it; the head's stage is the executor.
  std::unique_ptr<gpu_detail::GpuExecutor> e;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    try {
      e = std::make_unique<gpu_detail::GpuExecutor>(m, kv, sel, plan, i, n_threads, max_batch, std::move(e));
    } catch (const Error& err) {
      if (plan.stages.size() == 1) throw;
      const GpuStage& st = plan.stages[i];  // which of the GPUs failed (e.g. out of memory on the second)
      throw Error("GPU " + std::to_string(st.device) + " (layers " + std::to_string(st.first) + "-" +
                  std::to_string(st.end - 1) + "): " + err.what());
    }
  }
  return e;
}

}  // namespace rocforge
