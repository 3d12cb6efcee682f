// quantize.cpp - rocforge quantize: copy metadata, re-encode each tensor on the fly.
#include "tools/quantize.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "rocforge/gguf.h"
#include "rocforge/quant.h"
#include "tools/quant_plan.h"
#include "tools/row_convert.h"

namespace rocforge::tools {

QuantizeResult quantize_model(const QuantizeOptions& o) {
  const auto plan = parse_plan(o.type);
  if (!plan) {
    std::string names;
    for (const auto& n : plan_names()) names += (names.empty() ? "" : " ") + n;
    throw Error("quantize: unknown type '" + o.type + "' (types: " + names + ")");
  }
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  const auto src = gguf::File::open(o.in_path);

  gguf::Writer w;
  w.copy_metadata(*src);
  w.set_alignment(static_cast<uint32_t>(src->alignment()));
  w.set_u32("general.file_type", plan->file_type);
  w.set_u32("general.quantization_version", 2);

  ModelShape model;
  const std::string arch = src->get_string("general.architecture").value_or("");
  model.n_layer = src->get_int(arch + ".block_count").value_or(0);
  model.has_output = src->tensor("output.weight") != nullptr;

  QuantizeResult result;
  std::vector<std::string> notes;
  for (const auto& t : src->tensors()) {
    const GgmlType to = choose_type(*plan, model, t.name, t.shape, t.type);
    const std::string from_name(ggml_type_name(t.type)), to_name(ggml_type_name(to));
    notes.push_back(from_name == to_name ? to_name : from_name + " -> " + to_name);
    ++result.n_tensors;
    result.in_bytes += t.n_bytes;
    result.out_bytes += quant::row_bytes(to, static_cast<int64_t>(t.shape[0])) * t.rows();
    if (to == t.type) {  // already in the wanted type: copy the bytes, no second rounding
      w.add_tensor(t.name, t.type, t.shape, t.data);
      continue;
    }
    if (!quant::can_dequantize(t.type))
      throw Error(o.in_path + ": tensor " + t.name + ": cannot convert from type " + from_name + " to " + to_name);
    ++result.n_requantized;
    const GgmlType from = t.type;
    const uint8_t* data = t.data;
    const auto row_len = static_cast<int64_t>(t.shape[0]);
    const size_t src_row_bytes = quant::row_bytes(from, row_len);
    w.add_tensor(t.name, to, t.shape, [=, rows = static_cast<int64_t>(t.rows())](uint8_t* dst, size_t) {
      convert_rows(to, dst, rows, row_len, threads, [=](float* out, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          quant::dequantize_row(from, data + static_cast<size_t>(r) * src_row_bytes, out + (r - r0) * row_len, row_len);
      });
    });
  }
  if (o.progress)
    w.on_progress([&](size_t k, size_t count, const std::string& name) { o.progress(k, count, name, notes[k]); });
  w.write(o.out_path);
  return result;
}

}  // namespace rocforge::tools
