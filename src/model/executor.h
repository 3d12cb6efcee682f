// executor.h - runs forward steps of a Model on one device (or a CPU/GPU split).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/batch.h"
#include "rocforge/model.h"

namespace rocforge {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string device_name() const = 0;
  // Runs one step. logits receives [b.n_logits(), n_vocab] rows, in the batch's token order.
  // Every slot a token writes must belong to its own sequence's block table.
  virtual void forward(const Batch& b, std::vector<float>& logits) = 0;
  virtual const KvConfig& kv_config() const = 0;
};

std::unique_ptr<Executor> make_cpu_executor(const Model& model, const KvConfig& kv, int n_threads);

}  // namespace rocforge
