// quantize.h - re-encodes a GGUF model's weights (rocforge quantize).
//
// Streams tensor by tensor: each output tensor is dequantized from the memory-mapped input in
// bounded chunks and quantized straight into the writer's buffer for that tensor, so the whole
// model is never held in memory. Types per tensor follow quant_plan.h (documented in docs/tools.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace rocforge::tools {

struct QuantizeOptions {
  std::string in_path;
  std::string out_path;
  std::string type;  // a plan name: q4_k_m, q8_0, f16, ...
  int threads = 0;   // 0: all hardware threads
  // (index, count, tensor name, "from -> to") after each tensor is written.
  std::function<void(size_t, size_t, const std::string&, const std::string&)> progress;
};

struct QuantizeResult {
  size_t n_tensors = 0;
  size_t n_requantized = 0;  // tensors whose type changed
  uint64_t in_bytes = 0;     // tensor data, input
  uint64_t out_bytes = 0;    // tensor data, output
};

QuantizeResult quantize_model(const QuantizeOptions& o);

}  // namespace rocforge::tools
