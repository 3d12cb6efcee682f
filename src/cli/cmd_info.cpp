// rocforge info FILE.gguf [--json] - architecture, hyper-parameters, tokenizer, tensors, totals.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "rocforge/gguf.h"

namespace rocforge::cli {
namespace {

// Hyper-parameter keys shown in the summary, as "<arch>.<suffix>".
constexpr const char* kHyperKeys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length",
    "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
    "attention.layer_norm_rms_epsilon", "rope.dimension_count", "rope.freq_base", "rope.scaling.type",
    "rope.scaling.factor", "expert_count", "expert_used_count", "vocab_size",
};

nlohmann::json to_json(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::STRING: return v.str;
    case ValueType::BOOL: return v.b;
    case ValueType::FLOAT32: case ValueType::FLOAT64: return v.f;
    case ValueType::ARRAY: {
      auto a = nlohmann::json::array();
      for (const auto& e : v.arr) a.push_back(to_json(e));
      return a;
    }
    default:
      if (v.type == ValueType::UINT64 || v.type == ValueType::UINT32 || v.type == ValueType::UINT16 || v.type == ValueType::UINT8)
        return v.u;
      return v.i;
  }
}

std::string shape_string(const std::vector<uint64_t>& shape) {
  std::string s;
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? " x " : "") + std::to_string(shape[k]);
  return s;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

}  // namespace

int run_info(int argc, char** argv) {
  CLI::App app{"Print a GGUF file's metadata and tensors", "rocforge info"};
  std::string path;
  bool json = false, all_keys = false;
  app.add_option("file", path, "GGUF file")->required();
  app.add_flag("--json", json, "machine-readable output");
  app.add_flag("--all", all_keys, "list every metadata key, not just a summary");
  CLI11_PARSE(app, argc, argv);

  const auto f = gguf::File::open(path);
  const std::string arch = f->get_string("general.architecture").value_or("");
  const std::string tok_model = f->get_string("tokenizer.ggml.model").value_or("");
  const gguf::Value* tokens = f->find("tokenizer.ggml.tokens");
  const size_t n_vocab = tokens && tokens->is_array() ? tokens->arr.size() : 0;

  uint64_t total_bytes = 0, total_params = 0;
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : f->tensors()) {
    total_bytes += t.n_bytes;
    total_params += t.n_elements;
    bytes_by_type[std::string(ggml_type_name(t.type))] += t.n_bytes;
  }

  if (json) {
    nlohmann::json j;
    j["file"] = path;
    j["version"] = f->version();
    j["alignment"] = f->alignment();
    j["architecture"] = arch;
    auto& hp = j["hyperparameters"] = nlohmann::json::object();
    for (const char* k : kHyperKeys)
      if (const auto* v = f->find(arch + "." + k)) hp[k] = to_json(*v);
    j["tokenizer"] = {{"model", tok_model}, {"pre", f->get_string("tokenizer.ggml.pre").value_or("")}, {"n_vocab", n_vocab}};
    auto& md = j["metadata"] = nlohmann::json::object();
    for (const auto& kv : f->metadata()) {
      // Huge arrays (vocab, merges) are summarised by their length.
      if (kv.value.is_array() && kv.value.arr.size() > 64 && !all_keys) md[kv.key] = {{"array_length", kv.value.arr.size()}};
      else md[kv.key] = to_json(kv.value);
    }
    auto& ts = j["tensors"] = nlohmann::json::array();
    for (const auto& t : f->tensors())
      ts.push_back({{"name", t.name}, {"type", ggml_type_name(t.type)}, {"shape", t.shape}, {"bytes", t.n_bytes}, {"offset", t.offset}});
    j["totals"] = {{"tensors", f->tensors().size()}, {"parameters", total_params}, {"bytes", total_bytes}, {"file_bytes", f->file_size()}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }

  std::printf("file:          %s (GGUF v%u, %s)\n", path.c_str(), f->version(), human_bytes(double(f->file_size())).c_str());
  std::printf("architecture:  %s\n", arch.empty() ? "(none)" : arch.c_str());
  if (auto name = f->get_string("general.name")) std::printf("name:          %s\n", name->c_str());
  for (const char* k : kHyperKeys)
    if (const auto* v = f->find(arch + "." + k)) std::printf("  %-34s %s\n", k, gguf::to_string(*v).c_str());
  std::printf("tokenizer:     %s%s%s, %zu tokens\n", tok_model.empty() ? "(none)" : tok_model.c_str(),
              f->has("tokenizer.ggml.pre") ? ", pre=" : "", f->get_string("tokenizer.ggml.pre").value_or("").c_str(), n_vocab);
  if (all_keys) {
    std::printf("\nmetadata (%zu keys):\n", f->metadata().size());
    for (const auto& kv : f->metadata())
      std::printf("  %-44s %-7s %s\n", kv.key.c_str(), std::string(gguf::value_type_name(kv.value.type)).c_str(), gguf::to_string(kv.value).c_str());
  }
  std::printf("\ntensors (%zu):\n  %-40s %-8s %-26s %12s\n", f->tensors().size(), "name", "type", "shape", "bytes");
  for (const auto& t : f->tensors())
    std::printf("  %-40s %-8s %-26s %12llu\n", t.name.c_str(), std::string(ggml_type_name(t.type)).c_str(),
                shape_string(t.shape).c_str(), static_cast<unsigned long long>(t.n_bytes));
  std::printf("\ntotals: %llu parameters, %s of tensor data", static_cast<unsigned long long>(total_params), human_bytes(double(total_bytes)).c_str());
  for (const auto& [type, b] : bytes_by_type) std::printf(", %s %s", type.c_str(), human_bytes(double(b)).c_str());
  std::printf("\n");
  return 0;
}

}  // namespace rocforge::cli
