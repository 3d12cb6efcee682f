// engine.cpp - loading (model, tokenizer, device, KV pool) and the batched step.
#include "rocforge/engine.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "engine/kv_pool.h"
#include "model/executor.h"
#include "model/gpu_executor.h"
#include "rocforge/device.h"

namespace rocforge {

Engine::~Engine() = default;

namespace {

// --device / --gpu-layers: GPUs (all layers on the first, or split over the next ones where they do
// not fit it, or over an explicit list; hybrid when even they cannot hold the model), else the CPU.
std::unique_ptr<Executor> make_executor(const Model& m, const KvConfig& kv, const EngineOptions& o) {
  const device::DeviceSpec spec = device::parse_device_spec(o.device);
  const device::Selection sel = device::select_device(spec);
  if (sel.kind == device::Kind::Cpu || o.gpu_layers == 0) return make_cpu_executor(m, kv, o.n_threads);
  const GpuPlan plan = plan_gpu_stages(m, kv, sel.gpus, sel.spread, o.gpu_layers, o.n_batch);
  if (!plan.reason.empty()) log::warn("{}: running {} layers on the GPU, the rest on the CPU", plan.reason, plan.gpu_layers);
  if (plan.gpu_layers == 0) {
    if (spec.mode == device::DeviceSpec::Mode::Gpu)
      throw Error("--device " + o.device + ": the model does not fit in the GPU's free memory (" +
                  std::to_string(sel.gpu.free_memory >> 20) + " MiB) even with its output head alone");
    log::warn("the model does not fit on {}: running on the CPU", sel.gpu.name);
    return make_cpu_executor(m, kv, o.n_threads);
  }
  if (plan.stages.size() > 1) {
    std::string split;
    for (const GpuStage& st : plan.stages)
      split += fmt::format("{}GPU {}: layers {}-{} ({:.1f} GiB)", split.empty() ? "" : ", ", st.device, st.first,
                           st.end - 1, static_cast<double>(st.bytes) / 1073741824.0);
    log::info("model split over {} GPU stages: {}", plan.stages.size(), split);
  }
  return make_gpu_executor(m, kv, sel, plan, o.n_threads, o.n_batch);
}

}  // namespace

std::unique_ptr<Engine> Engine::load(const EngineOptions& opts_in) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> e(new Engine());
  e->opts_ = opts_in;
  auto& o = e->opts_;
  if (o.n_parallel < 1) throw Error("--parallel must be >= 1");
  if (o.n_batch < 1) throw Error("--batch-size must be >= 1");
  if (o.kv_block_size < 1 || o.kv_block_size > 1024) throw Error("KV block size must be in 1..1024");
  if (o.ctx_size < 0) throw Error("--ctx-size must be >= 0");

  e->model_ = Model::load(o.model_path);
  e->tokenizer_ = Tokenizer::from_gguf(e->model_->file());
  const auto& c = e->model_->config();
  if (e->tokenizer_->n_vocab() != c.n_vocab)
    log::warn("tokenizer has {} tokens, the embedding {} rows", e->tokenizer_->n_vocab(), c.n_vocab);
  if (o.ctx_size == 0) o.ctx_size = std::min(c.n_ctx_train > 0 ? c.n_ctx_train : 4096, 4096);

  check_kv_type_fits(o.kv_type, c.head_dim);
  KvConfig kv;
  kv.block_size = o.kv_block_size;
  kv.type = o.kv_type;
  const int64_t blocks_per_seq = (o.ctx_size + kv.block_size - 1) / kv.block_size;
  kv.n_blocks = static_cast<int32_t>(blocks_per_seq * o.n_parallel);

  e->executor_ = make_executor(*e->model_, kv, o);
  e->pool_ = std::make_unique<KvPool>(kv.n_blocks, kv.block_size);
  e->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t n_params = 0;
  for (const auto& t : e->model_->file().tensors()) n_params += t.n_elements;
  log::info("model {} ({}, {} layers, {:.1f}M parameters), device: {}", o.model_path, c.arch_key, c.n_layer,
            static_cast<double>(n_params) / 1e6, e->executor_->device_name());
  // The executor's own config: the GPU keeps f16 pools where f32 was asked for.
  const KvConfig& ekv = e->executor_->kv_config();
  log::info("KV cache: {}, {} positions, {:.1f} MiB ({} bytes per position)", kv_type_name(ekv.type), ekv.n_slots(),
            static_cast<double>(ekv.bytes(c.n_layer, c.kv_dim())) / (1 << 20),
            2 * c.n_layer * kv_row_bytes(ekv.type, c.kv_dim()));
  return e;
}

Batch Engine::batch_of(const std::vector<Work>& work) const {
  Batch b;
  for (size_t s = 0; s < work.size(); ++s) {
    const Work& w = work[s];
    if (w.seq->n_past + w.n_tokens > opts_.ctx_size)
      throw Error("context full: " + std::to_string(w.seq->n_past + w.n_tokens) + " positions exceed --ctx-size " +
                  std::to_string(opts_.ctx_size));
    b.block_tables.push_back(w.seq->blocks);
    for (int32_t i = 0; i < w.n_tokens; ++i)
      b.add(w.tokens[i], w.seq->n_past + i, static_cast<int32_t>(s), w.want_logits && i == w.n_tokens - 1);
  }
  return b;
}

void Engine::step(const std::vector<Work>& work, std::vector<float>& logits) {
  executor_->forward(batch_of(work), logits);
  for (const Work& w : work) w.seq->commit(*pool_, w.tokens, w.n_tokens);
}

std::span<const float> Engine::step_view(const std::vector<Work>& work) {
  const std::span<const float> rows = executor_->forward_view(batch_of(work));
  for (const Work& w : work) w.seq->commit(*pool_, w.tokens, w.n_tokens);
  return rows;
}

bool Engine::step_sample(const std::vector<Work>& work, const std::vector<const SamplingParams*>& params,
                         const std::vector<float>& u, const std::vector<std::span<const int32_t>>& histories,
                         std::vector<int32_t>& tokens) {
  if (!executor_->forward_sample_rows(batch_of(work), params, u, histories, tokens)) return false;
  for (const Work& w : work) w.seq->commit(*pool_, w.tokens, w.n_tokens);
  return true;
}

int Engine::chain_steps() const { return executor_->chain_steps(); }

bool Engine::step_sample_chain(const Work& w, const SamplingParams& p, const std::vector<float>& u,
                               std::span<const int32_t> history, std::vector<int32_t>& tokens) {
  const int n = static_cast<int>(u.size());
  if (w.n_tokens != 1 || !w.want_logits || n < 2 || w.seq->n_past + n > opts_.ctx_size) return false;
  if (!w.seq->reserve(*pool_, n)) return false;
  if (executor_->forward_sample_steps(batch_of({w}), p, u, history, tokens) != n) return false;
  w.seq->commit(*pool_, w.tokens, 1);
  return true;
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::None: return "none";
    case StopReason::MaxTokens: return "length";
    case StopReason::EndOfGeneration: return "stop";
    case StopReason::StopString: return "stop";
    case StopReason::ContextFull: return "context_full";
    case StopReason::Cancelled: return "cancelled";
  }
  return "?";
}

}  // namespace rocforge
