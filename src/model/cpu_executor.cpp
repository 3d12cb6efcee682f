// cpu_executor.cpp - the all-CPU executor: embed, every layer, head, on one thread pool.
#include "model/cpu_forward.h"
#include "model/executor.h"

namespace rocforge {
namespace {


class CpuExecutor final : public Executor {
 public:
  CpuExecutor(const Model& m, const KvConfig& kv, int n_threads)
      : m_(m), kv_(kv), pool_(n_threads), fwd_(m, kv, pool_, 0, m.config().n_layer) {}

  std::string device_name() const override { return "cpu (" + std::to_string(pool_.size()) + " threads)"; }
  const KvConfig& kv_config() const override { return kv_; }

  void forward(const Batch& b, std::vector<float>& logits) override {
    validate(b);
    x_.resize(static_cast<size_t>(b.size()) * m_.config().n_embd);
    fwd_.embed(b, x_.data());
    fwd_.layers(b, x_.data());
    fwd_.head(b, x_.data(), logits);
  }

 private:
  void validate(const Batch& b) const {
    // Each block table once, then each token's sequence and position.
    for (const auto& table : b.block_tables)
      for (int32_t blk : table)
        if (blk < 0 || blk >= kv_.n_blocks) throw Error("batch: KV block " + std::to_string(blk) + " out of range");
    for (int32_t t = 0; t < b.size(); ++t) {
      const int32_t s = b.seq[t];
      if (s < 0 || s >= static_cast<int32_t>(b.block_tables.size())) throw Error("batch: token " + std::to_string(t) + " has no sequence");
      if (b.pos[t] < 0 || b.pos[t] / kv_.block_size >= static_cast<int32_t>(b.block_tables[s].size()))
        throw Error("batch: position " + std::to_string(b.pos[t]) + " is beyond its sequence's KV blocks");
    }
  }

  const Model& m_;
  KvConfig kv_;
  cpu::ThreadPool pool_;
  CpuForward fwd_;
  std::vector<float> x_;
};

}  // namespace

std::unique_ptr<Executor> make_cpu_executor(const Model& model, const KvConfig& kv, int n_threads) {
  return std::make_unique<CpuExecutor>(model, kv, n_threads);
}

}  // namespace rocforge
