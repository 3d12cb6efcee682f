// quant_plan.h - which ggml type each tensor gets when a model is quantized (rocforge quantize,
// rocforge synth), and the general.file_type value that describes the result.
//
// A plan is a requested type name: a plain type ("q4_0", "q6_k", "f16", ...), applied to every
// weight matrix, or a mix ("q4_k_m", "q5_k_m", "q3_k_m", "q3_k_l") that gives some tensors more
// bits. The full policy, with the reasons, is in docs/tools.md; in short:
//   - 1-D tensors (norms, biases) and the MoE router (ffn_gate_inp) stay F32;
//   - a matrix whose row length does not fit the type's block falls back (fallback_type);
//   - mixes: output.weight (or token_embd when the output is tied to it) gets Q6_K, and attn_v /
//     ffn_down(_exps) get Q6_K in the layers where it matters most (more_bits_layer); the 3-bit
//     mixes give those Q5_K there and Q4_K (q3_k_m) / Q5_K (q3_k_l) elsewhere, and attn_output too.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rocforge/ggml_type.h"

namespace rocforge::tools {

struct QuantPlan {
  std::string name;           // as requested: "q4_k_m", "q8_0", ...
  GgmlType base;              // type of an ordinary weight matrix
  bool mix = false;           // a mix's rules apply (q4_k_m, q5_k_m, q3_k_m, q3_k_l)
  uint32_t file_type = 0;     // general.file_type (llama.cpp's LLAMA_FTYPE numbering)
  // Mixes: attn_v / ffn_down(_exps) in a more-bits layer and in the others, attn_output (set by
  // parse_plan for every mix).
  GgmlType mix_hi = GgmlType::Q6_K, mix_lo = GgmlType::F32, mix_attn_out = GgmlType::F32;
};

// Parses a TYPE argument; nullopt if it is not one of plan_names().
std::optional<QuantPlan> parse_plan(std::string_view name);
// Every accepted TYPE, in the order the help text lists them.
const std::vector<std::string>& plan_names();

// What the planner needs to know about the model as a whole.
struct ModelShape {
  int64_t n_layer = 0;      // <arch>.block_count (0 if unknown: no layer gets extra bits)
  bool has_output = true;   // false when output.weight is absent (tied to token_embd)
};

// The type tensor `name` of `shape` (ggml order, row length first) gets under `plan`. `source` is
// the tensor's current type: non-float source types (I8..I64) are returned unchanged (copied).
GgmlType choose_type(const QuantPlan& plan, const ModelShape& model, const std::string& name,
                     const std::vector<uint64_t>& shape, GgmlType source = GgmlType::F32);

// A type that fits a row of `row_len` elements: `want` itself when row_len is a multiple of its
// block size, else the 32-element-block type of at least as many bits, else F16.
GgmlType fallback_type(GgmlType want, uint64_t row_len);

// Layer `layer` of `n_layer` gets the mix's higher type for attn_v / ffn_down: the first and last
// eighth of the layers (at least one each) and every third layer in between.
bool more_bits_layer(int64_t layer, int64_t n_layer);

// "blk.12.attn_v.weight" -> 12; -1 for tensors outside the blocks.
int64_t layer_of(std::string_view name);

}  // namespace rocforge::tools
