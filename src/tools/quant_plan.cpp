// quant_plan.cpp - the per-tensor type policy of rocforge quantize / synth (see quant_plan.h).
#include "tools/quant_plan.h"

#include <algorithm>
#include <cctype>

namespace rocforge::tools {
namespace {

// general.file_type values are llama.cpp's `llama_ftype` enum (a published, stable numbering):
// llama.cpp only displays it, but tools print it, so it must name what the file mostly holds.
// Plain K-quant requests map to the "_S" (small: mostly that type) variants.
struct PlanEntry {
  const char* name;
  GgmlType base;
  bool mix;
  uint32_t file_type;
  // Mixes: attn_v / ffn_down(_exps) in a more-bits layer (hi) and elsewhere (lo), attn_output.
  GgmlType hi = GgmlType::F32, lo = GgmlType::F32, attn_out = GgmlType::F32;
};
constexpr PlanEntry kPlans[] = {
    {"q4_0", GgmlType::Q4_0, false, 2},     {"q4_1", GgmlType::Q4_1, false, 3},
    {"q5_0", GgmlType::Q5_0, false, 8},     {"q5_1", GgmlType::Q5_1, false, 9},
    {"q8_0", GgmlType::Q8_0, false, 7},     {"q2_k", GgmlType::Q2_K, false, 10},
    {"q3_k", GgmlType::Q3_K, false, 11},    {"q4_k", GgmlType::Q4_K, false, 14},
    {"q5_k", GgmlType::Q5_K, false, 16},    {"q6_k", GgmlType::Q6_K, false, 18},
    {"iq4_nl", GgmlType::IQ4_NL, false, 25}, {"iq4_xs", GgmlType::IQ4_XS, false, 30},
    {"mxfp4", GgmlType::MXFP4, false, 38},  {"f16", GgmlType::F16, false, 1},
    {"bf16", GgmlType::BF16, false, 32},    {"f32", GgmlType::F32, false, 0},
    {"q4_k_m", GgmlType::Q4_K, true, 15, GgmlType::Q6_K, GgmlType::Q4_K, GgmlType::Q4_K},
    {"q5_k_m", GgmlType::Q5_K, true, 17, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q5_K},
    // 3-bit mixes: the value and FFN down projections and the attention output one or two steps up
    // (Q3_K's rounding error is about twice Q4_K's), so a 3-bit file keeps most of its quality where
    // errors reach the residual stream directly.
    {"q3_k_m", GgmlType::Q3_K, true, 12, GgmlType::Q5_K, GgmlType::Q4_K, GgmlType::Q4_K},
    {"q3_k_l", GgmlType::Q3_K, true, 13, GgmlType::Q5_K, GgmlType::Q5_K, GgmlType::Q5_K},
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_float_type(GgmlType t) {
  switch (t) {
    case GgmlType::I8: case GgmlType::I16: case GgmlType::I32: case GgmlType::I64: return false;
    default: return true;
  }
}

}  // namespace

std::optional<QuantPlan> parse_plan(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& p : kPlans)
    if (lower == p.name)
      return QuantPlan{p.name, p.base, p.mix, p.file_type, p.hi, p.lo, p.attn_out};
  return std::nullopt;
}

const std::vector<std::string>& plan_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& p : kPlans) v.emplace_back(p.name);
    return v;
  }();
  return names;
}

int64_t layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int64_t v = 0;
  size_t k = 4;
  if (k >= name.size() || !std::isdigit(static_cast<unsigned char>(name[k]))) return -1;
  for (; k < name.size() && std::isdigit(static_cast<unsigned char>(name[k])); ++k) v = v * 10 + (name[k] - '0');
  return k < name.size() && name[k] == '.' ? v : -1;
}

bool more_bits_layer(int64_t layer, int64_t n_layer) {
  if (layer < 0 || n_layer <= 0) return false;
  const int64_t edge = std::max<int64_t>(1, n_layer / 8);
  if (layer < edge || layer >= n_layer - edge) return true;
  return (layer - edge) % 3 == 2;
}

GgmlType fallback_type(GgmlType want, uint64_t row_len) {
  const auto& tr = ggml_type_traits(want);
  if (row_len % tr.block_elems == 0) return want;
  GgmlType alt = GgmlType::F16;
  switch (want) {
    // 256-element super-block types: the 32-element type with at least as many bits per weight.
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::IQ4_XS:
      alt = GgmlType::IQ4_NL;  // 4.5 bits
      break;
    case GgmlType::Q5_K: alt = GgmlType::Q5_1; break;  // 6.0 bits
    case GgmlType::Q6_K: alt = GgmlType::Q8_0; break;  // 8.5 bits
    default: break;
  }
  if (row_len % ggml_type_traits(alt).block_elems == 0) return alt;
  return GgmlType::F16;
}

GgmlType choose_type(const QuantPlan& plan, const ModelShape& model, const std::string& name,
                     const std::vector<uint64_t>& shape, GgmlType source) {
  if (!is_float_type(source)) return source;
  // Norms, biases and other vectors are tiny and precision-sensitive.
  if (shape.size() < 2 || !ends_with(name, ".weight")) return GgmlType::F32;
  // The MoE router picks experts from small logit differences; it is tiny, so keep it exact.
  if (name.find("ffn_gate_inp") != std::string::npos) return GgmlType::F32;

  GgmlType want = plan.base;
  if (plan.mix) {
    const bool is_output = name == "output.weight" || (!model.has_output && name == "token_embd.weight");
    const bool sensitive = name.find(".attn_v.") != std::string::npos || name.find(".ffn_down.") != std::string::npos ||
                           name.find(".ffn_down_exps.") != std::string::npos;
    if (is_output) want = GgmlType::Q6_K;
    else if (sensitive) want = more_bits_layer(layer_of(name), model.n_layer) ? plan.mix_hi : plan.mix_lo;
    else if (name.find(".attn_output.") != std::string::npos) want = plan.mix_attn_out;
  }
  return fallback_type(want, shape[0]);
}

}  // namespace rocforge::tools
