// executor.h - runs forward steps of a Model on one device (or a CPU/GPU split).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/batch.h"
#include "rocforge/model.h"
#include "rocforge/sampler.h"

namespace rocforge {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string device_name() const = 0;
  // Runs one step. logits receives [b.n_logits(), n_vocab] rows, in the batch's token order.
  // Every slot a token writes must belong to its own sequence's block table.
  virtual void forward(const Batch& b, std::vector<float>& logits) = 0;
  // As forward, handing back a view of the [b.n_logits(), n_vocab] rows instead of filling a vector.
  // The view is the executor's own buffer, valid while view_serial() is unchanged (the next step
  // that lands logits on the host rewrites it). Why: a GPU's view is the page-locked buffer its
  // copy landed in, so a decode step makes no 0.5 MB host copy (~28 us of a 1B token on an H100).
  virtual std::span<const float> forward_view(const Batch& b) {
    forward(b, view_rows_);
    ++view_serial_;
    return view_rows_;
  }
  uint64_t view_serial() const { return view_serial_; }
  virtual const KvConfig& kv_config() const = 0;
  // The tokens a row's penalties count (penalty_counts): the sequence so far, the tokens this step
  // feeds included. Rows without penalties may pass an empty one.
  using History = std::span<const int32_t>;
  // Runs one step whose batch wants exactly one logits row and samples the next token where the
  // logits are (a GPU: only the token id comes back). The chain is the host Sampler's (penalties
  // over `history`, then temperature / top-k / top-p / min-p); u in [0, 1) is the draw. Returns
  // false, having run nothing, when the executor cannot (the CPU executor, a batch with other than
  // one row, or parameters for which the device chain would select other candidates than the host
  // Sampler): the caller then uses forward() and the host Sampler.
  virtual bool forward_sample(const Batch& b, const SamplingParams& p, float u, History history, int32_t* token) {
    (void)b, (void)p, (void)u, (void)history, (void)token;
    return false;
  }
  // As forward_sample for a batch of any number of logits rows: row r (the batch's order) is sampled
  // with *params[r], draw u[r] and histories[r] (histories may be empty where no row has penalties)
  // into tokens[r]. Returns false, having run nothing, where any row cannot be (device_samplable, or
  // penalties without a history) or the executor has no device sampler.
  virtual bool forward_sample_rows(const Batch& b, const std::vector<const SamplingParams*>& params,
                                   const std::vector<float>& u, const std::vector<History>& histories,
                                   std::vector<int32_t>& tokens) {
    (void)b, (void)params, (void)u, (void)histories, (void)tokens;
    return false;
  }
  // Several decode steps of one sequence in one go: step 0 feeds b's one token (at b.pos[0]), step k
  // feeds the token step k - 1 sampled, and step k samples tokens[k] with p and draw u[k] (its
  // penalties counting `history`, which ends with b's token, and the tokens sampled before it): what
  // u.size() calls of forward_sample would give, without the host between the steps. b's block table
  // must cover positions b.pos[0] .. b.pos[0] + u.size() - 1; the caller commits only the steps it
  // keeps (a step past a stop wrote K/V beyond the sequence's end, which nothing reads). Returns the
  // steps run: u.size(), or 0, having run nothing, where the executor cannot (then forward_sample).
  // The most steps forward_sample_steps chains at once here (0: it never does).
  virtual int chain_steps() const { return 0; }
  virtual int forward_sample_steps(const Batch& b, const SamplingParams& p, const std::vector<float>& u,
                                   History history, std::vector<int32_t>& tokens) {
    (void)b, (void)p, (void)u, (void)history, (void)tokens;
    return 0;
  }

 protected:
  std::vector<float> view_rows_;  // forward_view's rows where the executor has no buffer of its own
  uint64_t view_serial_ = 0;      // bumped whenever the memory behind a view is rewritten
};

// Whether a device sampler can run p's chain. The device runs the host Sampler's chain (penalties
// rounded as the host does them, filters on the model's probabilities, temperature on the draw);
// ties at a threshold all stay in there, where the host cuts them by id.
inline bool device_samplable(const SamplingParams& p) { return std::isfinite(p.temperature); }

// Step k of a chain of decode steps (forward_sample_steps): its penalty window covers the last
// `history_keep` tokens of the history the chain started from and the ids the chain sampled from
// `chain_begin` to k - 1 (the window slides over the chain's own tokens as it goes).
struct ChainPenaltyWindow {
  size_t history_keep;
  int chain_begin;
};
inline ChainPenaltyWindow chain_penalty_window(const SamplingParams& p, size_t history, int k) {
  if (p.penalty_last_n < 0) return {history, 0};
  const auto w = static_cast<size_t>(p.penalty_last_n), kk = static_cast<size_t>(k);
  return {std::min(history, w > kk ? w - kk : size_t{0}), static_cast<int>(kk > w ? kk - w : 0)};
}

std::unique_ptr<Executor> make_cpu_executor(const Model& model, const KvConfig& kv, int n_threads);

}  // namespace rocforge
